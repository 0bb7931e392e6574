"""Running independent per-territory tasks: in process, on a local process pool, or on Dask.

One interface, ``map_tasks(fn, tasks, keys=..., progress=...) -> TaskOutcome``: results stream
back as they finish (``progress(done, total)`` after each), a task that raises is retried, a
worker that dies (killed, out of memory) loses only its running tasks, which are retried on a
fresh pool (or on the cluster's other workers), and a task that still fails is reported in
``errors``, never lost. ``make_executor(workers, backend="local"|"dask", address=...)`` picks
one; ``DaskExecutor`` needs the ``distributed`` extra.

OR-Tools and the numba search hold the GIL, so parallelism needs processes, not threads. The
local pool uses the ``forkserver`` start method where available: workers fork from a clean
server process, not from a parent that may hold locks of other libraries' threads.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import traceback
import warnings
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

from territory.errors import InvalidInputError

__all__ = ["DaskExecutor", "Executor", "LocalExecutor", "TaskOutcome", "make_executor",
           "tqdm_progress"]

#: The message of a task whose worker process died, in every backend.
WORKER_DIED = "worker process died (killed or out of memory)"


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
    keep_pool:
        Keep the worker processes between ``map_tasks`` calls until ``close()`` (or the end of
        a ``with`` block). Starting a pool costs about 2.5 s on the 2-core machine (fork from
        the server, imports, numba cache), which dominates a call that routes a few reps, as
        the planning loop's later rounds do. Off by default: each call shuts its pool down.
    """

    workers: int | None = 1
    retries: int = 1
    keep_pool: bool = False
    _kept: ProcessPoolExecutor | None = field(default=None, init=False, repr=False,
                                              compare=False)
    _kept_workers: int = field(default=0, init=False, repr=False, compare=False)

    def close(self) -> None:
        """Shut the kept pool down (nothing to release without ``keep_pool``)."""
        if self._kept is not None:
            self._kept.shutdown(wait=True, cancel_futures=True)
            self._kept = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
            pool = self._open(workers)
            futures: dict[Future[Any], int] = {}
            broken = False
            try:
                for i in pending:
                    attempts[i] += 1
                    futures[pool.submit(fn, tasks[i])] = i
                pending = []
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
                            out.errors[key] = WORKER_DIED
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
                                out.errors[keys[i]] = WORKER_DIED
                                done += 1
                        futures = {}
            finally:
                if broken or not self.keep_pool:
                    # A broken pool is never reused: its retries start a fresh one.
                    if pool is self._kept:
                        self._kept = None
                    pool.shutdown(wait=True, cancel_futures=True)
        return out

    def _open(self, workers: int) -> ProcessPoolExecutor:
        if not self.keep_pool:
            return ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
        if (self._kept is None or self._kept_workers < workers
                or getattr(self._kept, "_broken", False)):
            self.close()
            self._kept = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
            self._kept_workers = workers
        return self._kept


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("The Dask executor needs dask.distributed: pip install "
                          "'territory-planner[distributed]'.") from exc
    return distributed


class DaskExecutor:
    """On a Dask cluster: a ``LocalCluster`` started here, or an existing scheduler.

    Every task is submitted with ``pure=False`` under a key made of the function name, our key,
    a token of the call and the attempt number, so retries and repeated calls never reuse a
    result the scheduler still holds. At most ``max_in_flight`` tasks are on the cluster at a
    time (each carries its rep's travel matrices; thousands at once would sit in the
    scheduler's memory), topped up as results come back.

    A task that raised, or whose worker died more often than the scheduler tolerates
    (``KilledWorker`` after ``distributed.scheduler.allowed-failures`` deaths; until then the
    scheduler re-runs it on another worker by itself), is submitted again by us, up to
    ``retries`` times, and then reported in ``errors``. We resubmit rather than pass
    distributed's own ``retries=`` so that ``attempts`` is exact and the same as the local
    pool's; re-runs the scheduler makes after a worker death are not counted.

    Parameters
    ----------
    client:
        A ``distributed.Client`` (used as is, never closed here), a scheduler address such as
        ``"tcp://10.0.0.5:8786"`` (a client is opened, and closed by ``close()``), or ``None``:
        start a ``LocalCluster`` of ``n_workers`` processes with one thread each (OR-Tools and
        the numba search hold the GIL), closed by ``close()``.
    n_workers:
        Worker processes of the local cluster; ``None`` = the number of CPUs.
    retries:
        Extra attempts for a task that raised or whose worker died.
    max_in_flight:
        Tasks submitted at a time; ``None`` = four per worker thread, at least 32.
    **cluster_kwargs:
        Passed to ``LocalCluster`` (e.g. ``memory_limit``, ``dashboard_address``).

    Raises
    ------
    ImportError
        ``distributed`` is not installed.
    InvalidInputError
        ``n_workers`` or ``cluster_kwargs`` given with a client or an address; ``retries < 0``;
        ``max_in_flight < 1``.

    Examples
    --------
    >>> with DaskExecutor(n_workers=2) as ex:                      # doctest: +SKIP
    ...     routes = plan_routes(plan, time_limit_s=10, executor=ex)
    """

    def __init__(self, client: Any = None, *, n_workers: int | None = None, retries: int = 1,
                 max_in_flight: int | None = None, **cluster_kwargs: Any) -> None:
        distributed = _import_distributed()
        if retries < 0:
            raise InvalidInputError(f"DaskExecutor: retries={retries}; expected >= 0.")
        if max_in_flight is not None and max_in_flight < 1:
            raise InvalidInputError(f"DaskExecutor: max_in_flight={max_in_flight}; expected "
                                    ">= 1.")
        if client is not None and (n_workers is not None or cluster_kwargs):
            raise InvalidInputError("DaskExecutor: n_workers and cluster options apply only to "
                                    "the LocalCluster started when no client or scheduler "
                                    "address is given.")
        self.retries = retries
        self.max_in_flight = max_in_flight
        self._cluster: Any = None
        self._own_client = client is None or isinstance(client, str)
        if client is None:
            if n_workers is not None and n_workers < 1:
                raise InvalidInputError(f"DaskExecutor: n_workers={n_workers}; expected >= 1.")
            options = {"n_workers": n_workers or os.cpu_count() or 1, "threads_per_worker": 1,
                       "processes": True, **cluster_kwargs}
            self._cluster = distributed.LocalCluster(**options)
            try:
                client = distributed.Client(self._cluster)
            except BaseException:
                self._cluster.close()
                raise
        elif isinstance(client, str):
            client = distributed.Client(client)
        elif not isinstance(client, distributed.Client):
            raise InvalidInputError(f"DaskExecutor takes a distributed.Client, a scheduler "
                                    f"address or None; got {type(client).__name__}.")
        self.client: Any = client

    def close(self) -> None:
        """Close the client and the local cluster if this executor opened them."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client!r}, retries={self.retries})"

    def map_tasks(self, fn: Callable[[Any], Any], tasks: Sequence[Any], *,
                  keys: Sequence[Hashable],
                  progress: Callable[[int, int], None] | None = None) -> TaskOutcome:
        """Run ``fn(task)`` for every task on the cluster; see the class docstring."""
        distributed = _import_distributed()
        if len(keys) != len(tasks):
            raise ValueError("one key per task")
        if len(set(keys)) != len(keys):
            raise ValueError("keys must be unique")
        out = TaskOutcome()
        if not tasks:
            return out
        name = getattr(fn, "__name__", "task")
        token = uuid4().hex[:12]
        window = self.max_in_flight or max(32, 4 * sum(self.client.nthreads().values()))
        pending = distributed.as_completed(with_results=False)
        which: dict[str, tuple[int, int]] = {}  # dask key -> (task number, attempt)
        waiting = iter(range(len(tasks)))

        def submit(numbers: list[int], attempt: int) -> None:
            if not numbers:
                return
            futures = self.client.map(
                fn, [tasks[i] for i in numbers], pure=False,
                key=[f"{name}-{str(keys[i])[:40]}-{i}-{token}-{attempt}" for i in numbers])
            for i, fut in zip(numbers, futures, strict=True):
                which[fut.key] = (i, attempt)
                pending.add(fut)

        submit(list(itertools.islice(waiting, window)), 1)
        done = 0
        # Each future is held by `pending` alone, so its result is released once handled.
        for fut in pending:
            i, attempt = which.pop(fut.key)
            key = keys[i]
            out.attempts[key] = attempt
            try:
                out.results[key] = fut.result()
                out.errors.pop(key, None)
            except Exception as exc:
                out.errors[key] = _dask_error(exc, fut, distributed)
                if attempt <= self.retries:
                    submit([i], attempt + 1)
                    continue
            done += 1
            if progress is not None:
                progress(done, len(tasks))
            submit(list(itertools.islice(waiting, 1)), 1)
        return out


def _dask_error(exc: BaseException, fut: Any, distributed: Any) -> str:
    """A task's failure as text: the worker death, or the remote traceback."""
    if isinstance(exc, distributed.KilledWorker):
        return f"{WORKER_DIED}: {exc}"
    if isinstance(exc, distributed.CancelledError):
        return f"the task was cancelled on the cluster (client cut off, cluster closed): {exc!r}"
    tb = None
    try:
        tb = fut.traceback()
    except Exception:
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb, limit=5))


def make_executor(workers: int | None = 1, backend: str = "local", address: str | None = None,
                  *, retries: int = 1) -> LocalExecutor | DaskExecutor:
    """The executor for ``plan(..., executor=)`` and ``plan_routes(..., executor=)``.

    Parameters
    ----------
    workers:
        Processes: the local pool's size, or the workers of the Dask ``LocalCluster`` started
        when no ``address`` is given (``None`` = the number of CPUs).
    backend:
        ``"local"`` (a process pool; ``workers=1`` runs in this process) or ``"dask"``.
    address:
        A Dask scheduler address (``tcp://host:8786``); implies ``backend="dask"``.
    retries:
        Extra attempts for a task that raised or whose worker died.

    Use the result as a context manager (or call ``close()``): a Dask executor holds a client
    and maybe a cluster.

    Raises
    ------
    InvalidInputError
        An unknown backend, ``workers`` < 1, or ``"dask"`` without the ``distributed`` extra.
    """
    if backend not in ("local", "dask"):
        raise InvalidInputError(f"executor backend {backend!r}; expected 'local' or 'dask'.")
    if workers is not None and workers < 1:
        raise InvalidInputError(f"workers={workers}; expected >= 1.")
    if backend == "local" and address is None:
        return LocalExecutor(workers=workers, retries=retries)
    try:
        _import_distributed()
    except ImportError as exc:
        raise InvalidInputError(f"The dask executor is not available: {exc}",
                                hint="Or use the local executor (a process pool).") from exc
    if address is not None:
        return DaskExecutor(address, retries=retries)
    return DaskExecutor(n_workers=workers, retries=retries)


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
