"""Tasks for the executor tests (module level, so worker processes can import them)."""

from __future__ import annotations

import os
import signal
from pathlib import Path


def square(x: int) -> int:
    return x * x


def fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x


def die_once(arg: tuple[int, str]) -> int:
    """Kill the worker process the first time task 2 runs (a marker file remembers)."""
    x, folder = arg
    marker = Path(folder) / f"died-{x}"
    if x == 2 and not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 100


def pid(_: object) -> int:
    """The worker's process id (which process ran the task)."""
    return os.getpid()
