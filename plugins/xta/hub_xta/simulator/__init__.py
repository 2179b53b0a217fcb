"""The XTA 2 simulator: the WSDL's three ports over SOAP 1.2 with MTOM, mailboxes per reader, fault knobs.

Run it with ``aktenhub simulate xta --port 8097``; tests start `make_app` on a loopback test server.
"""

from __future__ import annotations

from .app import OPTIONS, SCHEMA, STATE, EnqueueMetadata, SimulatorOptions, make_app
from .operator import enqueue, get_json, sent_content, set_faults
from .state import Closed, Knobs, StoredContent, StoredMessage, XtaState

__all__ = [
    "OPTIONS",
    "SCHEMA",
    "STATE",
    "Closed",
    "EnqueueMetadata",
    "Knobs",
    "SimulatorOptions",
    "StoredContent",
    "StoredMessage",
    "XtaState",
    "enqueue",
    "get_json",
    "make_app",
    "sent_content",
    "set_faults",
]
