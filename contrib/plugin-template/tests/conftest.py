"""Makes the template importable without installing it (the Makefile installs only plugins/*).

A plugin copied from the template and installed with ``pip install -e`` does not need this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLUGIN_ROOT = str(Path(__file__).resolve().parents[1])
if PLUGIN_ROOT not in sys.path:
    sys.path.insert(0, PLUGIN_ROOT)
