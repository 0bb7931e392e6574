"""The HTTP service: the JSON contract (``territory.contract``) as asynchronous jobs.

``territory serve`` runs it (the ``service`` extra: FastAPI and uvicorn). A caller submits a
``plan_request`` or ``partition_request``, polls the job, and fetches the ``plan_result`` or
``partition_result``; the bodies are exactly the contract's messages (``territory/schemas/``)::

    POST   /v1/plan-jobs            202 {job}, Location: /v1/jobs/{id}
    POST   /v1/partition-jobs       202 {job}
    GET    /v1/jobs/{id}            200 {job}: status, progress, timings
    GET    /v1/jobs/{id}/result     200 the result; 409 while not done; the error when failed
    DELETE /v1/jobs/{id}            200 {job} cancelled; 409 when already finished
    GET    /health, /v1/health      200 {status, jobs, workers, limits}
    GET    /openapi.json            the OpenAPI 3.1 document, contract schemas included

Status codes: 422 for every request the contract refuses, whether not JSON or not valid (with
the library's ``error.v1`` body and messages, JSON paths included), 413 a body over the payload
limit, 429 the queue is full (``Retry-After``), 404 an unknown job. Every error body, the
service's own included, is an ``error.v1`` message. A failed job's result is its error with 422
(``code`` 2 or 3: bad input found while solving, no feasible plan, or the job's time limit)
or 500 (``code`` 1, an internal error).

Jobs run in worker processes, not in the server (OR-Tools and the numba search hold the GIL),
so the server answers while they solve, and a job runs to its end whether or not its client is
still connected. Each worker is its own process group, so a job over its time limit is killed
with any routing pool it started, and the worker is replaced. The time limit is also given to
the solver (``time_limit_s``, and for ``plan`` a cap on ``partition_time_s``), so a job
normally ends on its own before it is killed.

Jobs live in memory: a restart forgets them, and one server process must serve every request
(run uvicorn with one worker process; scale with ``max_concurrent_jobs``).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from territory import __version__, contract
from territory.errors import NoSolutionError

__all__ = ["JobManager", "ServiceSettings", "create_app", "openapi_document", "solve_request"]

Kind = Literal["plan", "partition"]
Status = Literal["queued", "running", "done", "failed", "cancelled"]
_FINISHED = ("done", "failed", "cancelled")
#: Share of the job time limit given to the solver; the rest covers parsing, routing after the
#: last partition, and writing the result, so that the kill is a backstop, not the rule.
_SOLVER_SHARE = 0.8
_WORKER_START_S = 300.0  # a cold worker imports OR-Tools, numba and pandas
_POLL_S = 0.05
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    """Limits of the service.

    Attributes
    ----------
    max_payload_bytes:
        Largest request body; a larger one is refused with 413 before it is read.
    max_concurrent_jobs:
        Jobs solving at once, one worker process each.
    max_queued_jobs:
        Jobs waiting for a worker; a submission beyond is refused with 429.
    job_time_limit_s:
        Wall-clock seconds a job may run; its process is killed after that and the job fails.
    result_retention_s:
        Seconds a finished job (and its result) is kept after it ends.
    workers:
        Processes one ``plan`` job may use for its per-rep routing (caps ``options.workers``).
    """

    max_payload_bytes: int = 20 * 2**20
    max_concurrent_jobs: int = 2
    max_queued_jobs: int = 100
    job_time_limit_s: float = 600.0
    result_retention_s: float = 3600.0
    workers: int = 1

    def __post_init__(self) -> None:
        for name in ("max_payload_bytes", "max_concurrent_jobs", "workers"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ServiceSettings.{name}={getattr(self, name)!r}; expected >= 1")
        if self.max_queued_jobs < 0:
            raise ValueError(f"ServiceSettings.max_queued_jobs={self.max_queued_jobs!r}; "
                             "expected >= 0")
        for name in ("job_time_limit_s", "result_retention_s"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"ServiceSettings.{name}={getattr(self, name)!r}; expected > 0")


# ----------------------------------------------------------------------------------------------
# one job, as the CLI runs it


def solve_request(kind: Kind, body: str | bytes | dict[str, Any], *,
                  time_limit_s: float | None = None, workers: int | None = None,
                  progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """A contract request solved: the ``plan_result`` or ``partition_result`` message.

    The path of ``territory plan --json`` / ``partition --json``: ``parse_*_request``, then
    ``plan`` / ``partition`` with the request's options, then ``*_result_to_json``.

    Parameters
    ----------
    kind:
        ``"plan"`` or ``"partition"``.
    time_limit_s:
        Seconds for the solver: caps the request's ``time_limit_s`` (and ``partition_time_s``
        for a plan, whose ``time_limit_s`` is the rebalancing loop's budget).
    workers:
        Caps a plan's ``options.workers`` (processes for the routing).
    progress:
        ``progress(stage, done, total)``, as ``plan`` calls it.

    Raises
    ------
    Whatever the contract and the library raise; ``contract.error_to_json`` turns it into the
    error message.
    """
    from territory.alignment import partition
    from territory.planning import plan

    if kind == "plan":
        scenario, options = contract.parse_plan_request(body)
        if time_limit_s is not None:
            options["time_limit_s"] = min(options.get("time_limit_s") or time_limit_s,
                                          time_limit_s)
            options["partition_time_s"] = min(options.get("partition_time_s", 60.0),
                                              time_limit_s)
        if workers is not None:
            options["workers"] = min(options.get("workers") or workers, workers)
        return contract.plan_result_to_json(plan(scenario, **options, progress=progress))
    if kind == "partition":
        scenario, options = contract.parse_partition_request(body)
        if time_limit_s is not None:
            options["time_limit_s"] = min(options.get("time_limit_s", 60.0), time_limit_s)
        if progress is not None:
            progress("partition", 0, 1)
        message = contract.partition_result_to_json(partition(scenario, **options))
        if progress is not None:
            progress("partition", 1, 1)
        return message
    raise ValueError(f"unknown job kind {kind!r}; expected 'plan' or 'partition'")


def _parse(kind: Kind, body: bytes) -> None:
    """Validation at the door: the contract's parser, for its errors only."""
    if kind == "plan":
        contract.parse_plan_request(body)
    else:
        contract.parse_partition_request(body)


def _worker_main(conn: Connection, solver_time_s: float, workers: int) -> None:
    """A worker process: solve the jobs sent on ``conn`` one after another, until EOF."""
    # Its own process group: a kill on overrun must also take the routing pool it may start.
    os.setpgrp()
    # Below the server's priority: with as many jobs as cores, the server must still answer.
    with contextlib.suppress(OSError):
        os.nice(5)
    # Warm before "ready" (imports, numba's cached kernels, the solvers' first calls: about
    # a second each), so that no job's time limit pays for them.
    with contextlib.suppress(Exception):
        solve_request("partition", {**_EXAMPLE, "options": {"time_limit_s": 0.1}})
        solve_request("plan", {**_EXAMPLE, "options": {
            "partition_time_s": 0.1, "route_time_s": 0.05, "max_rounds": 0}})
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        kind, body = message

        def progress(stage: str, done: int, total: int) -> None:
            conn.send(("progress", str(stage), int(done), int(total)))

        try:
            progress("parse", 0, 1)
            reply = solve_request(kind, body, time_limit_s=solver_time_s, workers=workers,
                                  progress=progress)
            progress("result", 0, 1)
            data = json.dumps(reply, ensure_ascii=False, allow_nan=False).encode("utf-8")
            conn.send(("done", data, int(reply["code"])))
        except Exception as exc:  # the contract: every failure is an error message
            error, _ = contract.error_to_json(exc)
            conn.send(("failed", error))


# ----------------------------------------------------------------------------------------------
# jobs


def _now() -> float:
    return time.time()


@dataclass
class Job:
    """One submitted request and what became of it (guarded by the manager's lock)."""

    id: str
    kind: Kind
    body: bytes | None
    time_limit_s: float
    status: Status = "queued"
    stage: str = "queued"
    done: int = 0
    total: int = 0
    submitted_at: float = field(default_factory=_now)
    started_at: float | None = None
    finished_at: float | None = None
    result: bytes | None = None
    code: int | None = None
    error: dict[str, Any] | None = None

    def snapshot(self) -> dict[str, Any]:
        """The job as the ``JobStatus`` JSON."""
        def iso(t: float | None) -> str | None:
            return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat()

        end = self.finished_at if self.finished_at is not None else _now()
        started = self.started_at
        queued_s = (started if started is not None else end) - self.submitted_at
        return {
            "id": self.id, "kind": self.kind, "status": self.status,
            "progress": {"stage": self.stage, "done": self.done, "total": self.total},
            "timings": {"submitted_at": iso(self.submitted_at), "started_at": iso(started),
                        "finished_at": iso(self.finished_at), "queued_s": round(queued_s, 3),
                        "run_s": None if started is None else round(end - started, 3)},
            "time_limit_s": self.time_limit_s, "code": self.code, "error": self.error,
            "links": {"self": f"/v1/jobs/{self.id}", "result": f"/v1/jobs/{self.id}/result"},
        }


class QueueFullError(Exception):
    """No room for another job: ``max_concurrent_jobs`` run and ``max_queued_jobs`` wait."""


class JobManager:
    """Jobs in memory, run on ``max_concurrent_jobs`` worker processes.

    One thread per worker slot hands the next queued job to its worker, relays progress, and
    kills the worker (its whole process group) when the job is cancelled or over its time
    limit; a killed or dead worker is replaced before the slot takes another job.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._cancelled: set[str] = set()
        self._slots: list[_Slot] = []
        self._closing = False
        #: Workers killed (time limit, cancel) or dead, and replaced.
        self.worker_restarts = 0

    # -- lifecycle

    def start(self) -> None:
        """Start the worker slots (idempotent; submissions also start them)."""
        with self._lock:
            if self._slots or self._closing:
                return
            self._slots = [_Slot(self, i) for i in range(self.settings.max_concurrent_jobs)]
            for slot in self._slots:
                slot.thread.start()
        atexit.register(self.close)

    def close(self) -> None:
        """Stop the slots and kill the workers; jobs still queued or running are failed."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for job in [*self._queue, *(j for j in self._jobs.values() if j.status == "running")]:
                self._finish(job, "failed", error=_error_body(
                    1, "shutdown", "The service stopped before the job ended; submit it again.",
                    "ServiceShutdown"))
            self._queue.clear()
            self._lock.notify_all()
        for slot in self._slots:
            slot.stop_worker()
        for slot in self._slots:
            slot.thread.join(timeout=5)

    # -- requests

    def submit(self, kind: Kind, body: bytes) -> dict[str, Any]:
        """Queue a job (already validated); its snapshot.

        Raises
        ------
        QueueFullError
            When ``max_concurrent_jobs + max_queued_jobs`` jobs are unfinished.
        """
        self.start()
        s = self.settings
        with self._lock:
            self._purge()
            running = sum(1 for j in self._jobs.values() if j.status == "running")
            if running + len(self._queue) >= s.max_concurrent_jobs + s.max_queued_jobs:
                raise QueueFullError(
                    f"The service is busy: {running} jobs running and {len(self._queue)} "
                    f"queued (the limit is {s.max_concurrent_jobs} + {s.max_queued_jobs}). "
                    "Retry later.")
            job = Job(uuid.uuid4().hex, kind, body, s.job_time_limit_s)
            self._jobs[job.id] = job
            self._queue.append(job)
            self._lock.notify()
            return job.snapshot()

    def status(self, job_id: str) -> dict[str, Any] | None:
        """A job's snapshot, or None for an unknown (or expired) id."""
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            return None if job is None else job.snapshot()

    def result(self, job_id: str) -> tuple[dict[str, Any], bytes | None] | None:
        """A job's snapshot and its result bytes (None until done); None for an unknown id."""
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            return None if job is None else (job.snapshot(), job.result)

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued or running job (a running one's worker is killed); its snapshot,
        unchanged when it had already finished; None for an unknown id."""
        with self._lock:
            self._purge()
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.status == "queued":
                self._queue.remove(job)
                self._finish(job, "cancelled")
            elif job.status == "running":
                self._cancelled.add(job.id)  # the slot kills the worker at its next poll
                self._finish(job, "cancelled")
            return job.snapshot()

    def counts(self) -> dict[str, int]:
        """Jobs by status."""
        with self._lock:
            self._purge()
            out = dict.fromkeys(("queued", "running", "done", "failed", "cancelled"), 0)
            for job in self._jobs.values():
                out[job.status] += 1
            return out

    def workers_alive(self) -> int:
        """Worker processes up and ready for a job."""
        return sum(1 for slot in self._slots if slot.ready)

    # -- for the slots (the lock held where noted)

    def _next(self, timeout: float) -> Job | None:
        with self._lock:
            if not self._queue and not self._closing:
                self._lock.wait(timeout)
            if self._closing or not self._queue:
                return None
            job = self._queue.popleft()
            job.status, job.stage, job.started_at = "running", "starting", _now()
            return job

    def _finish(self, job: Job, status: Status, *, result: bytes | None = None,
                code: int | None = None, error: dict[str, Any] | None = None) -> None:
        """Lock held. The first outcome wins: a result after a cancel is dropped."""
        if job.status in _FINISHED:
            return
        job.status, job.finished_at, job.body = status, _now(), None
        job.result, job.error = result, error
        job.code = code if error is None else int(error["error"]["code"])
        job.stage = status
        if status == "done":
            job.total = job.done = max(job.total, 1)

    def _purge(self) -> None:
        """Lock held. Forget jobs finished longer than ``result_retention_s`` ago."""
        horizon = _now() - self.settings.result_retention_s
        for job_id in [i for i, j in self._jobs.items()
                       if j.finished_at is not None and j.finished_at < horizon]:
            del self._jobs[job_id]
            self._cancelled.discard(job_id)


class _Slot:
    """One worker process and the thread that feeds it jobs."""

    def __init__(self, manager: JobManager, index: int) -> None:
        self.manager = manager
        self.proc: Any = None
        self.conn: Connection | None = None
        self.ready = False
        self.thread = threading.Thread(target=self._loop, name=f"territory-job-slot-{index}",
                                       daemon=True)

    def _spawn(self) -> None:
        # spawn, not fork: the server process has threads (uvicorn, these slots) whose locks a
        # forked child would inherit mid-use.
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        s = self.manager.settings
        proc = ctx.Process(target=_worker_main, name="territory-job-worker",
                           args=(child, s.job_time_limit_s * _SOLVER_SHARE, s.workers))
        proc.start()
        child.close()
        self.proc, self.conn = proc, parent
        if parent.poll(_WORKER_START_S):
            with contextlib.suppress(EOFError, OSError):
                if parent.recv()[0] == "ready":
                    self.ready = True
                    return
        self.kill()

    def stop_worker(self) -> None:
        """From another thread: kill the worker's process group; the slot's thread, which
        owns the process and the pipe, sees it die and cleans up."""
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, OSError, ValueError):
                proc.kill()

    def kill(self) -> None:
        """Kill the worker and everything it started (from the slot's own thread)."""
        self.ready = False
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError, OSError):
                proc.kill()
            proc.join(timeout=10)
        if conn is not None:
            conn.close()

    def _loop(self) -> None:
        m = self.manager
        while not m._closing:
            if self.proc is None or not self.proc.is_alive():
                self.kill()
                try:
                    self._spawn()
                except Exception:  # e.g. a __main__ without its guard; keep the slot alive
                    _log.exception("territory service: a job worker could not start")
                    self.kill()
                if not self.ready:
                    time.sleep(1.0)  # a worker that cannot start: do not spin
                    continue
            job = m._next(timeout=1.0)
            if job is not None:
                self._run(job)
        self.kill()

    def _run(self, job: Job) -> None:
        m = self.manager
        assert self.conn is not None and self.proc is not None
        conn, proc = self.conn, self.proc
        deadline = time.monotonic() + job.time_limit_s
        try:
            conn.send((job.kind, job.body))
        except (OSError, ValueError):
            pass  # a dead worker; found below
        while True:
            ready = wait([conn, proc.sentinel], timeout=_POLL_S)
            if conn in ready:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    message = None
                if message is not None:
                    if self._relay(job, message):
                        return
                    continue
            if conn in ready or proc.sentinel in ready:
                code = proc.exitcode
                self.kill()
                if not m._closing:
                    m.worker_restarts += 1
                with m._lock:
                    m._finish(job, "failed", error=_error_body(
                        1, "internal", f"The job's worker process died (exit code {code}; out "
                        "of memory?). Please report it with the request.", "WorkerDied"))
                return
            if job.id in m._cancelled or m._closing:
                self.kill()
                m._cancelled.discard(job.id)
                m.worker_restarts += not m._closing
                return
            if time.monotonic() > deadline:
                self.kill()
                m.worker_restarts += 1
                exc = NoSolutionError(
                    f"The job ran over the service's time limit of {job.time_limit_s:g} s and "
                    "was stopped; there is no result. Give smaller time limits "
                    "(time_limit_s, partition_time_s, route_time_s) or a smaller request.")
                with m._lock:
                    m._finish(job, "failed", error=contract.error_to_json(exc)[0])
                return

    def _relay(self, job: Job, message: tuple[Any, ...]) -> bool:
        """Apply a worker's message to its job; True when the job has ended."""
        m = self.manager
        with m._lock:
            if message[0] == "progress":
                if job.status == "running":
                    job.stage, job.done, job.total = message[1], message[2], message[3]
                return False
            if message[0] == "done":
                m._finish(job, "done", result=message[1], code=message[2])
            else:
                m._finish(job, "failed", error=message[1])
            m._cancelled.discard(job.id)
            return True


# ----------------------------------------------------------------------------------------------
# HTTP


class Progress(BaseModel):
    """Where a job is: a stage and, within it, steps done of total."""

    stage: str = Field(description="queued, starting, parse, partition, 'routes round k', "
                       "result, then the final status.")
    done: int
    total: int


class Timings(BaseModel):
    """When a job was submitted, started and ended (UTC), and how long it waited and ran."""

    submitted_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    queued_s: float = Field(description="Seconds waiting for a worker (so far).")
    run_s: float | None = Field(description="Seconds running (so far).")


class Links(BaseModel):
    self: str
    result: str


class JobStatus(BaseModel):
    """A job: what it is, where it is, and how it ended."""

    id: str
    kind: Kind
    status: Status = Field(description="queued, running, done (the result is ready), failed "
                           "(the error is ready) or cancelled.")
    progress: Progress
    timings: Timings
    time_limit_s: float = Field(description="Wall-clock limit of the job once running.")
    code: int | None = Field(description="When done, the result's code (0 ok, 3 no feasible "
                             "plan, 1 a rep's routing failed); when failed, the error's code.")
    error: dict[str, Any] | None = Field(description="When failed, the error.v1 message.")
    links: Links


class Health(BaseModel):
    """The service is up; its jobs, workers and limits."""

    status: Literal["ok"]
    version: str
    schema_version: str
    jobs: dict[str, int]
    workers: dict[str, int]
    limits: dict[str, float]


class _HTTPError(Exception):
    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers


def _error_body(code: int, kind: str, message: str, exception: str) -> dict[str, Any]:
    """An ``error.v1`` message for the service's own errors (not the library's)."""
    return {"schema_version": contract.SCHEMA_VERSION,
            "error": {"code": code, "type": kind, "message": message,
                      "details": {"exception": exception}}}


def _not_found(job_id: str) -> _HTTPError:
    return _HTTPError(404, _error_body(
        2, "not_found", f"No job {job_id!r}: it never existed or its result was dropped "
        "after the retention time.", "JobNotFound"))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_EXAMPLE: dict[str, Any] = {
    "schema_version": "1.0", "name": "example",
    "accounts": [{"id": "A1", "lon": 121.47, "lat": 31.23, "potential": 120.0},
                 {"id": "A2", "lon": 121.50, "lat": 31.25, "potential": 80.0},
                 {"id": "A3", "lon": 121.44, "lat": 31.20, "potential": 60.0},
                 {"id": "A4", "lon": 121.52, "lat": 31.19, "potential": 90.0}],
    "reps": [{"id": "R1", "home_lon": 121.45, "home_lat": 31.22},
             {"id": "R2", "home_lon": 121.51, "home_lat": 31.24}],
}
_COMPONENTS = {"plan_request": "PlanRequestV1", "plan_result": "PlanResultV1",
               "partition_request": "PartitionRequestV1",
               "partition_result": "PartitionResultV1", "error": "ErrorV1"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": _ref("ErrorV1")}}}


_SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Queued; poll the job at Location.",
          "headers": {"Location": {"description": "/v1/jobs/{id}", "schema": {"type": "string"}}}},
    413: _error_response("The body is over the payload limit."),
    422: _error_response("The contract refuses the request: not JSON, or not valid "
                         "(details.problems name each JSON path); nothing was queued."),
    429: {**_error_response("The queue is full; retry after Retry-After seconds."),
          "headers": {"Retry-After": {"schema": {"type": "string"}}}},
}
_JOB_404: dict[int | str, dict[str, Any]] = {
    404: _error_response("No such job (or its retention time is over).")}


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = _HTTPError(413, _error_body(
        2, "payload_too_large", f"The request body is over the service's limit of {limit:,} "
        "bytes; split the request or ask for a larger limit.", "PayloadTooLarge"))
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _embed_schemas(document: dict[str, Any]) -> None:
    """The contract's JSON Schemas into ``components.schemas``, their ``$defs`` alongside
    (``PlanRequestV1_account``), so that every reference resolves inside the document."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, component in _COMPONENTS.items():
        schema = contract.load_schema(name)
        prefix = "#/$defs/"

        def rewrite(node: Any, component: str = component, prefix: str = prefix) -> Any:
            if isinstance(node, dict):
                out = {k: rewrite(v) for k, v in node.items()}
                ref = out.get("$ref")
                if isinstance(ref, str) and ref.startswith(prefix):
                    out["$ref"] = f"#/components/schemas/{component}_{ref[len(prefix):]}"
                return out
            if isinstance(node, list):
                return [rewrite(v) for v in node]
            return node

        defs = schema.pop("$defs", {})
        schema.pop("$schema", None)
        schema.pop("$id", None)
        schemas[component] = rewrite(schema)
        for key, sub in defs.items():
            schemas[f"{component}_{key}"] = rewrite(sub)


def _drop_validation_422(document: dict[str, Any]) -> None:
    """FastAPI documents a 422 ``HTTPValidationError`` for every path parameter; the job ids
    are plain strings, never refused, and the service's 422 bodies are ``error.v1``."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            schema = responses.get("422", {}).get("content", {}).get("application/json", {})
            if schema.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"):
                del responses["422"]
    schemas = document.get("components", {}).get("schemas", {})
    if "HTTPValidationError" not in json.dumps(document.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)


def openapi_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The service's OpenAPI document (the app's, or a default app's)."""
    return copy.deepcopy((app or create_app()).openapi())


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The FastAPI application, with its own job manager (``app.state.jobs``).

    The worker processes start with the application (its lifespan) or at the first
    submission, and stop with it.
    """
    settings = settings or ServiceSettings()
    jobs = JobManager(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        # The parser imports the library on its first call; pay that before the first request.
        await run_in_threadpool(_parse, "partition", json.dumps(_EXAMPLE).encode())
        try:
            yield
        finally:
            await run_in_threadpool(jobs.close)

    app = FastAPI(
        title="territory-planner",
        version=__version__,
        summary="Balanced sales territories and rep call-cycle routes, as jobs.",
        description=__doc__,
        lifespan=lifespan,
    )
    app.state.jobs = jobs
    app.state.settings = settings

    @app.exception_handler(_HTTPError)
    async def _on_http_error(_: Request, exc: _HTTPError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _on_starlette(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(_error_body(2 if exc.status_code < 500 else 1, "http",
                                        str(exc.detail), f"HTTP{exc.status_code}"),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(_error_body(2, "invalid_input", str(exc.errors()),
                                        "RequestValidationError"), status_code=422)

    async def submit(kind: Kind, request: Request) -> JSONResponse:
        body = await _read_body(request, settings.max_payload_bytes)
        try:
            # In a thread: a national request takes a while to check.
            await run_in_threadpool(_parse, kind, body)
        except Exception as exc:
            error, code = contract.error_to_json(exc)
            raise _HTTPError(422 if code == 2 else 500, error) from None
        try:
            snap = jobs.submit(kind, body)
        except QueueFullError as exc:
            raise _HTTPError(429, _error_body(1, "queue_full", str(exc), "QueueFull"),
                             {"Retry-After": "5"}) from None
        return JSONResponse(snap, status_code=202, headers={"Location": snap["links"]["self"]})

    def request_body(component: str, what: str, options: dict[str, Any]) -> dict[str, Any]:
        example = {**_EXAMPLE, "options": options}
        return {"requestBody": {"required": True, "description": what, "content": {
            "application/json": {"schema": _ref(component), "examples": {
                "shanghai": {"summary": "4 accounts, 2 reps, short time limits",
                             "value": example}}}}}}

    @app.post("/v1/plan-jobs", status_code=202, response_model=JobStatus,
              responses=_SUBMIT_RESPONSES, tags=["jobs"],
              openapi_extra=request_body("PlanRequestV1", "A plan_request.v1 message.", {
                  "partition_time_s": 1, "route_time_s": 0.2, "max_rounds": 0, "seed": 0}))
    async def submit_plan(request: Request) -> JSONResponse:
        """Submit a plan: territories, then every rep's call cycle, balanced on the
        simulated workload (``territory.plan``)."""
        return await submit("plan", request)

    @app.post("/v1/partition-jobs", status_code=202, response_model=JobStatus,
              responses=_SUBMIT_RESPONSES, tags=["jobs"],
              openapi_extra=request_body("PartitionRequestV1", "A partition_request.v1 "
                                         "message.", {"time_limit_s": 1, "seed": 0}))
    async def submit_partition(request: Request) -> JSONResponse:
        """Submit a partition: balanced, compact territories, one per rep
        (``territory.partition``)."""
        return await submit("partition", request)

    @app.get("/v1/jobs/{job_id}", response_model=JobStatus, responses=_JOB_404, tags=["jobs"])
    async def job_status(job_id: str) -> JSONResponse:
        """A job's status, progress and timings."""
        snap = jobs.status(job_id)
        if snap is None:
            raise _not_found(job_id)
        return JSONResponse(snap)

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"], responses={
        200: {"description": "The result: plan_result.v1 or partition_result.v1 (its code 3: "
              "no plan meets every tolerance, the best found is returned in full).",
              "content": {"application/json": {"schema": {
                  "oneOf": [_ref("PlanResultV1"), _ref("PartitionResultV1")]}}}},
        409: _error_response("Not done: queued, running or cancelled."),
        422: _error_response("The job failed on its input, found no feasible plan, or ran "
                             "over its time limit (error.code 2 or 3)."),
        500: _error_response("The job failed on an internal error (error.code 1)."),
        **_JOB_404})
    async def job_result(job_id: str) -> Response:
        """A job's result when done, its error when failed."""
        found = jobs.result(job_id)
        if found is None:
            raise _not_found(job_id)
        snap, result = found
        if snap["status"] == "done" and result is not None:
            return Response(result, media_type="application/json")
        if snap["status"] == "failed":
            error = snap["error"]
            raise _HTTPError(500 if error["error"]["code"] == 1 else 422, error)
        raise _HTTPError(409, _error_body(
            2, "not_done", f"Job {job_id} is {snap['status']} (stage {snap['progress']['stage']})"
            + ("; poll GET /v1/jobs/{id} until it is done." if snap["status"] != "cancelled"
               else "; it has no result."), "JobNotDone"))

    @app.delete("/v1/jobs/{job_id}", response_model=JobStatus, tags=["jobs"], responses={
        409: _error_response("The job had already finished (done or failed)."), **_JOB_404})
    async def cancel_job(job_id: str) -> JSONResponse:
        """Cancel a queued or running job (a running job's worker is killed)."""
        snap = jobs.cancel(job_id)
        if snap is None:
            raise _not_found(job_id)
        if snap["status"] in ("done", "failed"):
            raise _HTTPError(409, _error_body(
                2, "finished", f"Job {job_id} had already finished ({snap['status']}).",
                "JobFinished"))
        return JSONResponse(snap)

    async def health() -> Health:
        """Liveness, job counts, worker processes and limits."""
        return Health(status="ok", version=__version__, schema_version=contract.SCHEMA_VERSION,
                      jobs=jobs.counts(), workers={"ready": jobs.workers_alive(),
                                                   "slots": settings.max_concurrent_jobs,
                                                   "restarts": jobs.worker_restarts},
                      limits={k: float(v) for k, v in asdict(settings).items()})

    app.get("/health", response_model=Health, tags=["service"])(health)
    app.get("/v1/health", response_model=Health, tags=["service"])(health)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                   description=app.description, routes=app.routes,
                                   tags=[{"name": "jobs", "description": "Submit, poll, "
                                          "fetch and cancel jobs."},
                                         {"name": "service", "description": "Health."}])
            _embed_schemas(document)
            _drop_validation_422(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app
