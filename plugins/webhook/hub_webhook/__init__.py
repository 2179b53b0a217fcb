"""Aktenhub's generic HTTP intake (`type: webhook`): form servers and portals posting JSON, XML, multipart."""

from __future__ import annotations

__version__ = "0.1.0"
