"""Helper processes the hub starts (PDF rendition): they end with the hub, however the hub ends.

A clean stop ends the helpers. A SIGKILL gives the hub no chance to, and a helper busy with (or stuck
in) a long rendition would go on alone (each one holding ~120 MB). So every helper process asks the kernel, as
the first thing it does, to kill it when its parent dies (Linux ``PR_SET_PDEATHSIG``), then checks the
parent is still the one that started it: had the parent died before the request was made, no signal
would ever come. Where ``prctl`` does not exist, a thread in the helper watches its parent instead.

``PR_SET_PDEATHSIG`` fires when the *thread* that started the child ends. Render helpers
(`hub.render_helpers`) are started by the hub's event loop thread, which lives as long as the hub.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PARENT_POLL_SECONDS = 1.0


def init_helper(parent_pid: int) -> None:
    """First thing in a helper process: die with `parent_pid`; leave Ctrl-C to the hub."""
    die_with_parent(parent_pid)
    # Ctrl-C reaches the whole process group; the hub stops its helpers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent(parent_pid: int) -> None:
    """Make the kernel (or a watcher thread) end this process when `parent_pid` ends."""
    if not _request_death_signal():
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()
    if os.getppid() != parent_pid:
        # The parent is gone already (this process was re-parented before the request took effect).
        os._exit(1)


def _request_death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)


def _watch_parent(parent_pid: int) -> None:
    stop = threading.Event()
    while not stop.wait(_PARENT_POLL_SECONDS):
        if os.getppid() != parent_pid:
            os._exit(1)
