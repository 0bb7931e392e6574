"""The HTTP service (territory.service): jobs over the JSON contract, its limits, its OpenAPI."""

from __future__ import annotations

import copy
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
uvicorn = pytest.importorskip("uvicorn")

import httpx  # noqa: E402
from contract_helpers import validate  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from territory import contract, synth  # noqa: E402
from territory.cli import app as cli_app  # noqa: E402
from territory.hours import format_clock  # noqa: E402
from territory.service import ServiceSettings, create_app  # noqa: E402

FAST_PLAN = {"partition_time_s": 0.2, "route_time_s": 0.1, "max_rounds": 0, "seed": 0}
FAST_PARTITION = {"time_limit_s": 0.2, "seed": 0}
#: An unreachable tolerance: the partition searches until its time limit.
SLOW_PARTITION = {"tolerance": 0.0001, "time_limit_s": 30, "seed": 0}
#: Routing is not capped by the service, only the partition and the loop: 2 reps x 20 s.
OVERRUNNING_PLAN = {"partition_time_s": 0.2, "route_time_s": 20, "max_rounds": 0, "seed": 0}
FINISHED = ("done", "failed", "cancelled")
LIMIT_S = 4.0


@pytest.fixture(scope="module")
def request_body() -> dict[str, Any]:
    """20 accounts around Shanghai and 2 reps."""
    sc = synth.china_scenario(n_accounts=20, n_reps=2, seed=1, provinces=["31"])
    accounts = sc.accounts.frame[["id", "lon", "lat", "potential", "hours"]].to_dict("records")
    reps = [{"id": r["id"], "home_lon": r["home_lon"], "home_lat": r["home_lat"],
             "work_start": format_clock(r["work_start"])} for r in sc.reps.frame.to_dict("records")]
    return {"schema_version": "1.0", "name": "shanghai", "accounts": accounts, "reps": reps}


def with_options(body: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {**copy.deepcopy(body), "options": options}


def wait(client: Any, job_id: str, timeout: float = 60.0,
         until: tuple[str, ...] = FINISHED) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["status"] in until or time.monotonic() > end:
            return status
        time.sleep(0.05)


# ----------------------------------------------------------------------------------------------
# in process (TestClient), generous limits


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = create_app(ServiceSettings(max_payload_bytes=64 * 1024, max_concurrent_jobs=2,
                                     max_queued_jobs=8, job_time_limit_s=60))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(("kind", "options"), [("plan", FAST_PLAN),
                                               ("partition", FAST_PARTITION)])
def test_submit_poll_result_round_trip(client, request_body, kind, options) -> None:
    response = client.post(f"/v1/{kind}-jobs", json=with_options(request_body, options))
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}" == job["links"]["self"]
    assert job["kind"] == kind and job["status"] in ("queued", "running")
    status = wait(client, job["id"])
    assert status["status"] == "done", status
    assert status["timings"]["run_s"] > 0 and status["timings"]["finished_at"]
    assert status["progress"]["done"] == status["progress"]["total"] >= 1
    result = client.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 200
    message = result.json()
    validate(message, f"{kind}_result")
    assert message["kind"] == f"{kind}_result" and message["name"] == "shanghai"
    assert message["code"] == status["code"]
    listed = Counter([a["account_id"] for a in message["assignment"]]
                     + [u["account_id"] for u in message["unassigned"]])
    assert listed == Counter(a["id"] for a in request_body["accounts"])  # each exactly once
    # The service caps the solver's time by the job's: 0.8 x 60 s does not bind here.
    assert message["parameters"]["time_limit_s"] in (0.2, 48.0)


def _bad_bodies(body: dict[str, Any]) -> dict[str, bytes]:
    lon = copy.deepcopy(body)
    lon["accounts"][3]["lon"] = "east"
    version = {**copy.deepcopy(body), "schema_version": "2.0"}
    option = with_options(body, {"time_limit_s": -1})
    no_reps = {k: v for k, v in body.items() if k != "reps"}
    return {"lon": json.dumps(lon).encode(), "version": json.dumps(version).encode(),
            "option": json.dumps(option).encode(), "no_reps": json.dumps(no_reps).encode(),
            "not_json": b'{"schema_version": "1.0",', "not_utf8": b"\xff\xfe{}",
            "array": b"[1, 2]", "empty": b""}


@pytest.mark.parametrize("kind", ["plan", "partition"])
@pytest.mark.parametrize("case", ["lon", "version", "option", "no_reps", "not_json",
                                  "not_utf8", "array", "empty"])
def test_bad_request_is_422_with_the_library_error(client, request_body, kind, case) -> None:
    body = _bad_bodies(request_body)[case]
    parse = contract.parse_plan_request if kind == "plan" else contract.parse_partition_request
    with pytest.raises(Exception) as info:
        parse(body)
    expected, code = contract.error_to_json(info.value)
    assert code == 2
    response = client.post(f"/v1/{kind}-jobs", content=body,
                           headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json() == expected  # the library's message, JSON paths and all
    validate(response.json(), "error")
    if case == "lon":
        assert [p["path"] for p in expected["error"]["details"]["problems"]] == \
            ["accounts[3].lon"]


def test_payload_over_the_limit_is_413(client, request_body) -> None:
    body = json.dumps({**request_body, "name": "x" * 70_000}).encode()
    response = client.post("/v1/plan-jobs", content=body)
    assert response.status_code == 413
    validate(response.json(), "error")
    assert "65,536 bytes" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    response = client.post("/v1/partition-jobs", content=chunks())
    assert response.status_code == 413


def test_unknown_job_is_404(client) -> None:
    for method, path in [("GET", "/v1/jobs/nope"), ("GET", "/v1/jobs/nope/result"),
                         ("DELETE", "/v1/jobs/nope")]:
        response = client.request(method, path)
        assert response.status_code == 404
        validate(response.json(), "error")
        assert response.json()["error"]["type"] == "not_found"


def test_health(client) -> None:
    for path in ("/health", "/v1/health"):
        health = client.get(path).json()
        assert health["status"] == "ok" and health["schema_version"] == contract.SCHEMA_VERSION
        assert health["workers"]["slots"] == 2
        assert health["limits"]["max_payload_bytes"] == 64 * 1024
        assert set(health["jobs"]) == {"queued", "running", "done", "failed", "cancelled"}


def test_openapi_embeds_the_contract(client, tmp_path) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    for name in ("PlanRequestV1", "PlanResultV1", "PartitionRequestV1", "PartitionResultV1",
                 "ErrorV1", "JobStatus", "Health"):
        assert name in schemas
    text = json.dumps(document)
    assert "#/$defs/" not in text and "HTTPValidationError" not in text
    body = document["paths"]["/v1/plan-jobs"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/PlanRequestV1")
    assert {"202", "413", "422", "429"} <= set(document["paths"]["/v1/plan-jobs"]["post"]
                                              ["responses"])
    out = tmp_path / "openapi.json"
    result = CliRunner().invoke(cli_app, ["serve", "--openapi", str(out)])
    assert result.exit_code == 0, result.output
    dumped = json.loads(out.read_text(encoding="utf-8"))
    assert dumped["paths"].keys() == document["paths"].keys()
    assert dumped["components"]["schemas"]["PlanRequestV1"] == schemas["PlanRequestV1"]


# ----------------------------------------------------------------------------------------------
# a real server on loopback, tight limits: one job at a time, one waiting, LIMIT_S per job


class _Server:
    def __init__(self, settings: ServiceSettings) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Server:
        self.thread.start()
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                health = httpx.get(f"{self.url}/health").json()
                if health["workers"]["ready"] == health["workers"]["slots"]:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the service did not start")

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[httpx.Client]:
    with _Server(ServiceSettings(max_concurrent_jobs=1, max_queued_jobs=1,
                                 job_time_limit_s=LIMIT_S)) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        yield c


def test_job_over_its_time_limit_is_killed(server, request_body) -> None:
    restarts = server.get("/health").json()["workers"]["restarts"]
    job = server.post("/v1/plan-jobs", json=with_options(request_body, OVERRUNNING_PLAN)).json()
    status = wait(server, job["id"], timeout=60)
    assert status["status"] == "failed"
    assert LIMIT_S <= status["timings"]["run_s"] < 1.1 * LIMIT_S + 1.0  # killed on time
    error = status["error"]
    validate(error, "error")
    assert error["error"]["code"] == 3 and "time limit of 4 s" in error["error"]["message"]
    result = server.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 422 and result.json() == error
    assert server.get("/health").json()["workers"]["restarts"] == restarts + 1
    # The worker was replaced: the next job runs.
    job = server.post("/v1/partition-jobs",
                      json=with_options(request_body, FAST_PARTITION)).json()
    assert wait(server, job["id"])["status"] == "done"


def test_queue_full_is_429_and_cancel(server, request_body) -> None:
    slow = with_options(request_body, SLOW_PARTITION)
    running = server.post("/v1/partition-jobs", json=slow).json()
    assert wait(server, running["id"], until=("running", *FINISHED))["status"] == "running"
    queued = server.post("/v1/partition-jobs", json=slow)
    assert queued.status_code == 202 and queued.json()["status"] == "queued"
    refused = server.post("/v1/partition-jobs", json=slow)
    assert refused.status_code == 429 and refused.headers["retry-after"]
    validate(refused.json(), "error")
    assert refused.json()["error"]["type"] == "queue_full"
    # Cancel the queued job, then the running one (its worker is killed).
    for job_id in (queued.json()["id"], running["id"]):
        response = server.delete(f"/v1/jobs/{job_id}")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        assert server.get(f"/v1/jobs/{job_id}/result").status_code == 409
        assert server.delete(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
    assert server.get(f"/v1/jobs/{running['id']}").json()["status"] == "cancelled"
    # A finished job cannot be cancelled, and the worker is back for the next one.
    job = server.post("/v1/partition-jobs",
                      json=with_options(request_body, FAST_PARTITION)).json()
    assert wait(server, job["id"])["status"] == "done"
    assert server.delete(f"/v1/jobs/{job['id']}").status_code == 409
    assert server.get(f"/v1/jobs/{job['id']}/result").status_code == 200


def _raw_post(port: int, path: str, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                 f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a client that crashed."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_job_survives_the_client_disconnecting(server, request_body) -> None:
    body = json.dumps(with_options(request_body, {**SLOW_PARTITION, "time_limit_s": 1.5}))
    # The client reads its job id and drops the connection while the job runs.
    sock = _raw_post(int(server.base_url.port), "/v1/partition-jobs", body.encode())
    head = b""
    while b"\r\n\r\n" not in head or not head.rstrip().endswith(b"}"):
        head += sock.recv(65536)
    job_id = json.loads(head.split(b"\r\n\r\n", 1)[1])["id"]
    assert wait(server, job_id, until=("running", *FINISHED))["status"] == "running"
    _reset(sock)
    status = wait(server, job_id)
    assert status["status"] == "done" and status["code"] == 3  # the best plan, infeasible
    validate(server.get(f"/v1/jobs/{job_id}/result").json(), "partition_result")
    # A client that drops the connection before the answer: its job still runs.
    before = server.get("/health").json()["jobs"]
    _reset(_raw_post(int(server.base_url.port), "/v1/partition-jobs",
                     json.dumps(with_options(request_body, FAST_PARTITION)).encode()))
    end = time.monotonic() + 60
    while time.monotonic() < end:
        jobs = server.get("/health").json()["jobs"]
        if jobs["done"] > before["done"]:
            break
        time.sleep(0.1)
    assert jobs["done"] == before["done"] + 1


# ----------------------------------------------------------------------------------------------
# the OpenAPI document against the implementation


schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

_FUZZ_APP = create_app(ServiceSettings(max_payload_bytes=256 * 1024, max_concurrent_jobs=1,
                                       max_queued_jobs=2, job_time_limit_s=3))
# Examples and fuzzing, positive and negative; not the coverage phase, which derives some 1,700
# cases from the request schemas (half a minute to build, more to run).
_schema = schemathesis.openapi.from_asgi("/openapi.json", _FUZZ_APP, config=schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": False}}, "generation": {"max-examples": 15}}))


@pytest.fixture(scope="module", autouse=True)
def _stop_fuzz_workers() -> Iterator[None]:
    yield
    _FUZZ_APP.state.jobs.close()


@_schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_openapi_conformance(case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                   content_type_conformance, response_schema_conformance,
                                   negative_data_rejection])
