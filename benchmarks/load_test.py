"""Load test of the HTTP service on loopback: many small jobs at once, and a stream of bad requests.

Issue 7: starts ``territory serve`` in a subprocess on a free loopback port, then, with one async
httpx client, fires ``--requests`` small valid jobs (half ``plan``, half ``partition``, 20 accounts
and 2 reps around Shanghai), ``--concurrency`` of them in flight at once, each submitted, polled to
its end and its result fetched; and, alongside, ``--bad`` bad requests in turn: malformed JSON, a
schema violation, a body over the payload limit, and unknown job ids (status and result). Prints
throughput, p50/p99 latency (submit, and submit to result) and responses by status code, and
asserts that no job was lost (every submitted job done and its result complete: each account
once) and that nothing answered 5xx or an unexpected status.

    nice -n 5 python benchmarks/load_test.py                         # 200 jobs, 200 at once
    python benchmarks/load_test.py --requests 50 --concurrency 10 --bad 40 --max-jobs 2

Writes ``benchmarks/results/load_test.csv`` (or ``--out``): one row per stream and kind.
Exit code 0 when every assertion holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from territory import synth  # noqa: E402
from territory.hours import format_clock  # noqa: E402

PLAN_OPTIONS = {"partition_time_s": 0.2, "route_time_s": 0.1, "max_rounds": 0, "seed": 0}
PARTITION_OPTIONS = {"time_limit_s": 0.2, "seed": 0}
PAYLOAD_LIMIT_MB = 1.0
#: Bad requests in turn: what is sent, and the status the service must answer.
BAD_KINDS = {"malformed_json": 422, "schema_violation": 422, "oversize": 413,
             "unknown_job": 404, "unknown_result": 404}


@dataclass
class Stream:
    """What one kind of request met: status codes, latencies and failures."""

    statuses: Counter[int] = field(default_factory=Counter)
    submit_s: list[float] = field(default_factory=list)
    end_to_end_s: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    retries: int = 0


async def get(client: httpx.AsyncClient, url: str, stream: Stream) -> httpx.Response:
    """GET, sent again when a kept-alive connection was closed under it.

    uvicorn closes a connection idle for 5 s; a request that leaves on it at that moment meets
    a closed socket before the server has read it. A GET is safe to repeat; the repeats are
    counted (``retries``), never hidden."""
    for attempt in range(3):
        try:
            return await client.get(url)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if attempt == 2:
                raise
            stream.retries += 1
    raise AssertionError("unreachable")


def small_request() -> dict[str, Any]:
    sc = synth.china_scenario(n_accounts=20, n_reps=2, seed=1, provinces=["31"])
    accounts = sc.accounts.frame[["id", "lon", "lat", "potential", "hours"]].to_dict("records")
    reps = [{"id": r["id"], "home_lon": r["home_lon"], "home_lat": r["home_lat"],
             "work_start": format_clock(r["work_start"])} for r in sc.reps.frame.to_dict("records")]
    return {"schema_version": "1.0", "name": "load", "accounts": accounts, "reps": reps}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "territory.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--max-jobs", str(args.max_jobs),
           "--max-queued", str(max(args.requests, 1)), "--job-time-limit", "60",
           "--max-payload-mb", str(PAYLOAD_LIMIT_MB)]
    return subprocess.Popen(cmd, cwd=HERE.parent, stdout=subprocess.DEVNULL,
                            stderr=None)


async def wait_ready(client: httpx.AsyncClient, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            health = (await client.get("/health")).json()
            if health["workers"]["ready"] == health["workers"]["slots"]:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready within 120 s")


async def good_job(client: httpx.AsyncClient, kind: str, body: bytes, ids: list[str],
                   stream: Stream, gate: asyncio.Semaphore) -> None:
    """Submit, poll to the end, fetch the result and check it."""
    async with gate:
        t0 = time.perf_counter()
        try:
            response = await client.post(f"/v1/{kind}-jobs", content=body,
                                         headers={"content-type": "application/json"})
        except httpx.TransportError as exc:  # not repeated: it might have been queued
            stream.failures.append(f"submit: {type(exc).__name__}: {exc}")
            return
        stream.submit_s.append(time.perf_counter() - t0)
        stream.statuses[response.status_code] += 1
        if response.status_code != 202:
            stream.failures.append(f"submit {response.status_code}: {response.text[:200]}")
            return
        job_id = response.json()["id"]
        try:
            await follow(client, kind, job_id, t0, ids, stream)
        except httpx.TransportError as exc:
            stream.failures.append(f"job {job_id}: {type(exc).__name__}: {exc}")


async def follow(client: httpx.AsyncClient, kind: str, job_id: str, t0: float, ids: list[str],
                 stream: Stream) -> None:
    """Poll a job to its end, fetch its result and check every account is there once."""
    delay, end = 0.1, time.monotonic() + 600
    while True:
        # Backing off to 1 s: 200 pollers must not starve the server they measure.
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 1.5)
        status = await get(client, f"/v1/jobs/{job_id}", stream)
        stream.statuses[status.status_code] += 1
        if status.status_code != 200:
            stream.failures.append(f"status {status.status_code} for {job_id}")
            return
        if status.json()["status"] in ("done", "failed", "cancelled"):
            break
        if time.monotonic() > end:
            stream.failures.append(f"job {job_id} not finished after 600 s")
            return
    result = await get(client, f"/v1/jobs/{job_id}/result", stream)
    stream.statuses[result.status_code] += 1
    stream.end_to_end_s.append(time.perf_counter() - t0)
    if result.status_code != 200:
        stream.failures.append(f"job {job_id} {status.json()['status']}: "
                               f"{result.text[:200]}")
        return
    message = result.json()
    listed = sorted([a["account_id"] for a in message["assignment"]]
                    + [u["account_id"] for u in message["unassigned"]])
    if message["kind"] != f"{kind}_result" or listed != ids:
        stream.failures.append(f"job {job_id}: accounts lost or repeated")


async def bad_request(client: httpx.AsyncClient, kind: str, valid: dict[str, Any],
                      stream: Stream, gate: asyncio.Semaphore) -> None:
    async with gate:
        t0 = time.perf_counter()
        try:
            response = await _send_bad(client, kind, valid, stream)
        except httpx.TransportError as exc:
            stream.failures.append(f"{kind}: {type(exc).__name__}: {exc}")
            return
        stream.submit_s.append(time.perf_counter() - t0)
        stream.statuses[response.status_code] += 1
        if response.status_code != BAD_KINDS[kind]:
            stream.failures.append(f"{kind}: {response.status_code}, expected "
                                   f"{BAD_KINDS[kind]}: {response.text[:200]}")
        elif "error" not in response.json():
            stream.failures.append(f"{kind}: no error.v1 body")


async def _send_bad(client: httpx.AsyncClient, kind: str, valid: dict[str, Any],
                    stream: Stream) -> httpx.Response:
    if kind == "malformed_json":
        return await client.post("/v1/plan-jobs", content=b'{"schema_version": "1.0",')
    if kind == "schema_violation":
        body = json.loads(json.dumps(valid))
        body["accounts"][3]["lon"] = "east"
        body["options"] = {"tolerance": -1}
        return await client.post("/v1/partition-jobs", json=body)
    if kind == "oversize":
        size = int(PAYLOAD_LIMIT_MB * 2**20) + 1024
        return await client.post("/v1/plan-jobs", content=b" " * size,
                                 headers={"content-type": "application/json"})
    if kind == "unknown_job":
        return await get(client, f"/v1/jobs/{os.urandom(16).hex()}", stream)
    return await get(client, f"/v1/jobs/{os.urandom(16).hex()}/result", stream)


def pct(values: list[float], q: float, scale: float) -> float:
    return float(np.percentile(values, q)) * scale if values else float("nan")


async def run(args: argparse.Namespace) -> int:
    valid = small_request()
    ids = sorted(a["id"] for a in valid["accounts"])
    bodies = {"plan": json.dumps({**valid, "options": PLAN_OPTIONS}).encode(),
              "partition": json.dumps({**valid, "options": PARTITION_OPTIONS}).encode()}
    port = free_port()
    proc = start_server(port, args)
    limits = httpx.Limits(max_connections=args.concurrency + 16,
                          max_keepalive_connections=args.concurrency + 16)
    streams: dict[tuple[str, str], Stream] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                     timeout=httpx.Timeout(120.0)) as client:
            await wait_ready(client, proc)
            gate = asyncio.Semaphore(args.concurrency)
            bad_gate = asyncio.Semaphore(8)  # a steady stream, not a burst
            tasks = []
            for i in range(args.requests):
                kind = ("plan", "partition")[i % 2]
                stream = streams.setdefault(("good", kind), Stream())
                tasks.append(good_job(client, kind, bodies[kind], ids, stream, gate))
            kinds = list(BAD_KINDS)
            for i in range(args.bad):
                kind = kinds[i % len(kinds)]
                stream = streams.setdefault(("bad", kind), Stream())
                tasks.append(bad_request(client, kind, json.loads(bodies["partition"]), stream,
                                         bad_gate))
            t0 = time.perf_counter()
            await asyncio.gather(*tasks)
            wall = time.perf_counter() - t0
            health = (await client.get("/health")).json()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()

    rows = []
    for (name, kind), s in sorted(streams.items()):
        n = len(s.submit_s)
        rows.append({
            "stream": name, "kind": kind, "requests": n,
            "statuses": " ".join(f"{k}:{v}" for k, v in sorted(s.statuses.items())),
            "failures": len(s.failures), "get_retries": s.retries,
            "submit_p50_ms": round(pct(s.submit_s, 50, 1e3), 1),
            "submit_p99_ms": round(pct(s.submit_s, 99, 1e3), 1),
            "e2e_p50_s": round(pct(s.end_to_end_s, 50, 1), 2),
            "e2e_p99_s": round(pct(s.end_to_end_s, 99, 1), 2),
            "jobs_per_s": round(len(s.end_to_end_s) / wall, 2) if name == "good" else "",
            "wall_s": round(wall, 1), "concurrency": args.concurrency,
            "max_jobs": args.max_jobs, "cpus": os.cpu_count(),
        })
    all_statuses: Counter[int] = sum((s.statuses for s in streams.values()), Counter())
    done = sum(len(s.end_to_end_s) for (name, _), s in streams.items() if name == "good")
    failures = [f for s in streams.values() for f in s.failures]
    server_errors = sum(v for k, v in all_statuses.items() if k >= 500)

    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print(f"\n{args.requests} jobs ({args.concurrency} in flight), {args.bad} bad requests, "
          f"{args.max_jobs} job workers, {os.cpu_count()} CPUs, {platform.python_version()}")
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in columns))
    print(f"\nwall {wall:.1f} s; {done} jobs done ({done / wall:.2f} jobs/s); "
          f"{sum(all_statuses.values())} HTTP requests ({sum(all_statuses.values()) / wall:.0f}/s); "
          f"statuses {dict(sorted(all_statuses.items()))}; server jobs {health['jobs']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")

    ok = True
    if done != args.requests or health["jobs"]["done"] != args.requests:
        print(f"FAIL: {args.requests} jobs submitted, {done} results fetched, "
              f"server reports {health['jobs']}")
        ok = False
    if server_errors:
        print(f"FAIL: {server_errors} responses with a 5xx status")
        ok = False
    for f in failures[:20]:
        print(f"FAIL: {f}")
    return 0 if ok and not failures else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, default=200, help="valid jobs in flight at once")
    ap.add_argument("--requests", type=int, default=200, help="valid jobs in all")
    ap.add_argument("--bad", type=int, default=200, help="bad requests in all")
    ap.add_argument("--max-jobs", type=int, default=2, help="the server's job workers")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "load_test.csv")
    args = ap.parse_args()
    if min(args.concurrency, args.requests, args.max_jobs) < 1 or args.bad < 0:
        ap.error("--concurrency, --requests and --max-jobs must be >= 1, --bad >= 0")
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
