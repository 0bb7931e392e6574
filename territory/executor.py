"""Running independent per-territory tasks: in process, on a local process pool, or on Dask.

One interface, ``map_tasks(fn, tasks, keys=..., progress=...) -> TaskOutcome``: results stream
back as they finish (``progress(done, total)`` after each), a task that raises is retried, a
worker that dies (killed, out of memory) loses only its running tasks, which are retried on a
fresh pool, and a task that still fails is reported in ``errors``, never lost.

OR-Tools and the numba search hold the GIL, so parallelism needs processes, not threads. The
local pool uses the ``forkserver`` start method where available: workers fork from a clean
server process, not from a parent that may hold locks of other libraries' threads.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
import warnings
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Executor", "LocalExecutor", "TaskOutcome", "tqdm_progress"]


@dataclass
class TaskOutcome:
    """What came back: results and errors by key, and how many attempts each key took."""

    results: dict[Hashable, Any] = field(default_factory=dict)
    errors: dict[Hashable, str] = field(default_factory=dict)
    attempts: dict[Hashable, int] = field(default_factory=dict)


class Executor(Protocol):
    """Anything that can run ``fn`` over tasks and report per key."""

    def map_tasks(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *,
                  keys: Sequence[Hashable],
                  progress: Callable[[int, int], None] | None = None) -> TaskOutcome: ...


def _mp_context() -> mp.context.BaseContext:
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def _ping() -> int:
    return os.getpid()


_POOL_OK: list[bool] = []


def _pool_can_start() -> bool:
    """Whether a worker process starts and runs a task (checked once per process).

    A worker re-imports the parent's ``__main__`` script; without an ``if __name__ ==
    "__main__"`` guard it dies at start-up, and every task would be lost to a broken pool.
    """
    if not _POOL_OK:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=_mp_context())
        try:
            pool.submit(_ping).result(timeout=120)
            _POOL_OK.append(True)
        except Exception:
            _POOL_OK.append(False)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return _POOL_OK[0]


@dataclass
class LocalExecutor:
    """In this process (``workers=1``) or on a local process pool.

    Parameters
    ----------
    workers:
        Processes; ``None`` = the number of CPUs; 1 runs in this process.
    retries:
        Extra attempts for a task that raised or whose worker died.
    """

    workers: int | None = 1
    retries: int = 1

    def map_tasks(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *,
                  keys: Sequence[Hashable],
                  progress: Callable[[int, int], None] | None = None) -> TaskOutcome:
        """Run ``fn(task)`` for every task; see the module docstring."""
        if len(keys) != len(tasks):
            raise ValueError("one key per task")
        workers = self.workers or os.cpu_count() or 1
        if workers <= 1 or len(tasks) <= 1:
            return self._inline(fn, tasks, keys, progress)
        if not _pool_can_start():
            warnings.warn(
                "Worker processes could not start, so the tasks run in this process. The usual "
                "cause: a script that asks for workers > 1 must guard its entry point with "
                "`if __name__ == \"__main__\":` (Python starts workers by re-importing the "
                "script).", RuntimeWarning, stacklevel=3)
            return self._inline(fn, tasks, keys, progress)
        return self._pool(fn, tasks, keys, progress, min(workers, len(tasks)))

    def _inline(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
                keys: Sequence[Hashable], progress: Callable[[int, int], None] | None
                ) -> TaskOutcome:
        out = TaskOutcome()
        for done, (key, task) in enumerate(zip(keys, tasks, strict=True), start=1):
            for attempt in range(1, self.retries + 2):
                out.attempts[key] = attempt
                try:
                    out.results[key] = fn(task)
                    out.errors.pop(key, None)
                    break
                except Exception:
                    out.errors[key] = traceback.format_exc(limit=5)
            if progress is not None:
                progress(done, len(tasks))
        return out

    def _pool(self, fn: Callable[[Any], Any], tasks: Sequence[Any], keys: Sequence[Hashable],
              progress: Callable[[int, int], None] | None, workers: int) -> TaskOutcome:
        out = TaskOutcome()
        pending = list(range(len(tasks)))
        attempts = [0] * len(tasks)
        done = 0
        while pending:
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
            futures: dict[Future[Any], int] = {}
            try:
                for i in pending:
                    attempts[i] += 1
                    futures[pool.submit(fn, tasks[i])] = i
                pending = []
                broken = False
                while futures:
                    finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                    for fut in finished:
                        i = futures.pop(fut)
                        key = keys[i]
                        out.attempts[key] = attempts[i]
                        try:
                            out.results[key] = fut.result()
                            out.errors.pop(key, None)
                        except BrokenProcessPool:
                            # The pool is gone: everything still running must run again.
                            broken = True
                            out.errors[key] = "worker process died (killed or out of memory)"
                            if attempts[i] <= self.retries:
                                pending.append(i)
                                continue
                        except Exception:
                            out.errors[key] = traceback.format_exc(limit=5)
                            if attempts[i] <= self.retries:
                                pending.append(i)
                                continue
                        done += 1
                        if progress is not None:
                            progress(done, len(tasks))
                    if broken:
                        for fut, i in futures.items():
                            fut.cancel()
                            out.attempts[keys[i]] = attempts[i]
                            if attempts[i] <= self.retries:
                                pending.append(i)
                            else:
                                out.errors[keys[i]] = ("worker process died (killed or out of "
                                                       "memory)")
                                done += 1
                        futures = {}
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        return out


def tqdm_progress(total: int, desc: str) -> Callable[[int, int], None]:
    """A ``progress(done, total)`` callback drawing a tqdm bar on a terminal, silent otherwise."""
    import sys

    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, disable=not sys.stderr.isatty(), leave=False)

    def update(done: int, _total: int) -> None:
        bar.update(done - bar.n)
        if done >= _total:
            bar.close()

    return update
