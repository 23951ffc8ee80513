"""Pool workers end with the scan that started them, even when it is killed (``kill -9``).

A worker left behind would keep reading sources and holding memory for a scan that no longer
exists. On Linux the kernel sends the worker SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a fallback, a thread watches the parent.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
#: How often the fallback watch looks at the parent.
WATCH_SECONDS = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: arrange for this process to end when ``parent_pid`` is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watch below still ends the worker
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    threading.Thread(target=_watch, args=(parent_pid,), name="piiport-parent-watch", daemon=True).start()


def _watch(parent_pid: int) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if os.getppid() != parent_pid:  # re-parented: the scan is gone
            os._exit(1)
