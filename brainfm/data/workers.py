"""Worker processes that die with their parent.

A ProcessPoolExecutor's workers outlive a parent killed with SIGKILL (nothing tells them),
holding ~100 MB each for as long as they like. On Linux the kernel can send a signal to a
process when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing is done.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: ask for SIGKILL when the parent goes, and go now if it already has
    (the parent may die between the fork and this call)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not allowed here (some sandboxes): the worker simply lives on as before
    if os.getppid() != parent_pid:
        os._exit(1)
