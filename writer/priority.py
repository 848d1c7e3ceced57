"""The writer's CPU priority: background while it streams, normal once it is asked to stop."""

from __future__ import annotations

import os


def leave_idle() -> None:
    """Back to normal scheduling (this thread) where allowed: stopping is not background
    work, and at SCHED_IDLE a busy machine would starve the exit. Called from signal
    handlers: never raises."""
    if hasattr(os, "SCHED_IDLE") and os.sched_getscheduler(0) == os.SCHED_IDLE:
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass  # an unprivileged user (RLIMIT_NICE 0, as in the container) may not: it
            # stops at its background priority then
