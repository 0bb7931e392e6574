"""Matrix providers: the offline model and an OSRM client tested against a loopback server."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from territory.coords import wgs84_to_gcj02
from territory.errors import DataQualityWarning, InvalidInputError, TerritoryError
from territory.providers import (
    UNROUTABLE_KM,
    UNROUTABLE_MIN,
    MatrixProvider,
    ModelProvider,
    OSRMProvider,
    RoutingServiceError,
    _plan,
    matrix_for,
)
from territory.travel import TravelMatrix, TravelModel, haversine_km, pairwise_km

SERVER_KMH = 50.0  # the fake server drives the straight line at 50 km/h

# Same examples every run (the tests must be deterministic); no example database on disk.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)


# ---------------------------------------------------------------------------------------------
# A small OSRM look-alike: GET /table/v1/{profile}/{lon,lat;...}?sources=..&destinations=..
# ---------------------------------------------------------------------------------------------
@dataclass
class FakeOSRM:
    """Server-side state and knobs, shared with the handler threads."""

    base_url: str = ""
    requests: list[dict] = field(default_factory=list)
    fail_first: int = 0  # answer the first N requests with fail_status
    fail_status: int = 503
    fail_body: bytes = b'{"code": "Unavailable", "message": "engine restarting"}'
    error: tuple[int, dict] | None = None  # answer every request with this
    max_coords: int | None = None  # refuse larger requests with TooBig
    null_points: set[tuple[float, float]] = field(default_factory=set)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)


def _answer(state: FakeOSRM, raw_path: str) -> tuple[int, dict | bytes]:
    url = urllib.parse.urlsplit(raw_path)
    parts = url.path.split("/")
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    with state.lock:
        state.requests.append({"path": url.path, "query": query,
                               "profile": parts[3] if len(parts) > 3 else None})
        number = len(state.requests)
    if state.delay_s:
        time.sleep(state.delay_s)
    if number <= state.fail_first:
        return state.fail_status, state.fail_body
    if state.error is not None:
        return state.error
    if len(parts) != 5 or parts[1:3] != ["table", "v1"]:
        return 400, {"code": "InvalidUrl", "message": f"URL string malformed: {url.path}"}
    try:
        coords = [tuple(float(v) for v in c.split(",")) for c in parts[4].split(";")]
        if any(len(c) != 2 for c in coords):
            raise ValueError
    except ValueError:
        return 400, {"code": "InvalidQuery", "message": "Query string malformed"}
    with state.lock:
        state.requests[-1]["coords"] = coords
    if state.max_coords is not None and len(coords) > state.max_coords:
        return 400, {"code": "TooBig", "message": "Too many table coordinates"}

    def indices(name: str) -> list[int]:
        value = query.get(name, ["all"])[0]
        return list(range(len(coords))) if value == "all" else [int(v) for v in value.split(";")]

    src, dst = indices("sources"), indices("destinations")
    if query.get("annotations", [""])[0] != "duration,distance":
        return 400, {"code": "InvalidOptions", "message": "annotations missing"}
    durations, distances = [], []
    for i in src:
        drow, mrow = [], []
        for j in dst:
            a, b = coords[i], coords[j]
            if (a in state.null_points) != (b in state.null_points):
                drow.append(None)
                mrow.append(None)
                continue
            metres = 1000.0 * float(haversine_km(a[0], a[1], b[0], b[1]))
            # OSRM rounds to 0.1 s and 0.1 m.
            mrow.append(round(metres, 1))
            drow.append(round(metres / (SERVER_KMH / 3.6), 1))
        durations.append(drow)
        distances.append(mrow)

    def waypoints(ix: list[int]) -> list[dict]:
        return [{"hint": "", "distance": 0.0, "name": "", "location": list(coords[k])}
                for k in ix]

    return 200, {"code": "Ok", "durations": durations, "distances": distances,
                 "sources": waypoints(src), "destinations": waypoints(dst)}


def _handler(state: FakeOSRM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, payload = _answer(state, self.path)
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def osrm() -> Iterator[FakeOSRM]:
    state = FakeOSRM()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def provider(state: FakeOSRM, **kwargs: object) -> OSRMProvider:
    kwargs.setdefault("backoff_s", 0.001)
    kwargs.setdefault("timeout_s", 5.0)
    return OSRMProvider(base_url=state.base_url, **kwargs)  # type: ignore[arg-type]


def china_points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(100.0, 122.0, n), rng.uniform(22.0, 41.0, n)])


def expected(src: np.ndarray, dst: np.ndarray | None = None) -> TravelMatrix:
    km = pairwise_km(src, dst)
    return TravelMatrix(km, 60.0 * km / SERVER_KMH)


def assert_matches(got: TravelMatrix, want: TravelMatrix) -> None:
    # Coordinates travel with 6 decimals (0.1 m) and OSRM rounds to 0.1 m and 0.1 s.
    assert got.km.shape == want.km.shape
    assert_allclose(got.km, want.km, rtol=0, atol=1e-3)
    assert_allclose(got.minutes, want.minutes, rtol=0, atol=1e-2)


# ---------------------------------------------------------------------------------------------
# OSRMProvider against the loopback server
# ---------------------------------------------------------------------------------------------
def test_square_table_equals_direct_computation(osrm: FakeOSRM) -> None:
    pts = china_points(30, seed=1)
    p = provider(osrm)
    got = p.table(pts)
    assert_matches(got, expected(pts))
    assert np.all(np.diag(got.km) == 0.0)
    assert osrm.count == 1
    req = osrm.requests[0]
    assert req["path"].startswith("/table/v1/driving/")
    assert "sources" not in req["query"]  # one all-to-all request
    assert req["query"]["annotations"] == ["duration,distance"]
    assert_allclose(np.array(req["coords"]), pts, rtol=0, atol=5e-7)
    assert p.unroutable is not None and not p.unroutable.any()


def test_rectangular_table_and_profile(osrm: FakeOSRM) -> None:
    src, dst = china_points(7, seed=2), china_points(12, seed=3)
    got = provider(osrm, profile="car").table(src, dst)
    assert_matches(got, expected(src, dst))
    req = osrm.requests[0]
    assert req["profile"] == "car"
    assert req["query"]["sources"] == [";".join(map(str, range(7)))]
    assert req["query"]["destinations"] == [";".join(map(str, range(7, 19)))]


def test_chunking_respects_max_table_size(osrm: FakeOSRM) -> None:
    osrm.max_coords = 100  # the server refuses anything larger with TooBig
    pts = china_points(250, seed=4)
    got = provider(osrm, max_table_size=100).table(pts)
    assert_matches(got, expected(pts))
    # 50 sources + 50 destinations per request: 5 x 5 blocks.
    assert osrm.count == 25
    assert max(len(r["coords"]) for r in osrm.requests) <= 100


def test_chunking_few_destinations_uses_wide_source_blocks(osrm: FakeOSRM) -> None:
    osrm.max_coords = 100
    src, depots = china_points(250, seed=5), china_points(3, seed=6)
    got = provider(osrm, max_table_size=100).table(src, depots)
    assert_matches(got, expected(src, depots))
    assert osrm.count == 3  # 3 blocks of about 84 sources, each with all 3 depots


@settings(DETERMINISTIC, max_examples=150)
@given(st.integers(1, 300), st.integers(1, 300), st.integers(8, 120), st.booleans())
def test_plan_covers_every_cell_once_within_the_limit(n_src: int, n_dst: int, limit: int,
                                                      square: bool) -> None:
    if square:
        n_dst = n_src
    seen = np.zeros((n_src, n_dst), dtype=np.int64)
    blocks = _plan(n_src, n_dst, square, limit)
    for b in blocks:
        rows, cols = b.rows.stop - b.rows.start, b.cols.stop - b.cols.start
        assert rows > 0 and cols > 0
        assert (rows if b.all_to_all else rows + cols) <= limit
        seen[b.rows, b.cols] += 1
        assert b.total == len(blocks)
    assert np.all(seen == 1)
    assert [b.number for b in blocks] == list(range(1, len(blocks) + 1))


def test_plan_smallest_limit() -> None:
    blocks = _plan(3, 4, False, 2)
    assert len(blocks) == 12 and all(not b.all_to_all for b in blocks)
    assert _plan(0, 5, False, 100) == [] and _plan(4, 4, True, 4)[0].all_to_all


def test_retries_transient_failures(osrm: FakeOSRM) -> None:
    osrm.fail_first = 2
    pts = china_points(5, seed=7)
    got = provider(osrm, retries=3).table(pts)
    assert_matches(got, expected(pts))
    assert osrm.count == 3


def test_retries_rate_limiting(osrm: FakeOSRM) -> None:
    osrm.fail_first, osrm.fail_status = 1, 429
    osrm.fail_body = b'{"message": "slow down"}'
    provider(osrm, retries=1).table(china_points(4, seed=8))
    assert osrm.count == 2


def test_permanent_server_failure_names_block_and_message(osrm: FakeOSRM) -> None:
    osrm.fail_first = 10**6
    with pytest.raises(RoutingServiceError) as info:
        provider(osrm, retries=2).table(china_points(5, seed=9))
    err = info.value
    assert osrm.count == 3
    assert isinstance(err, TerritoryError)
    assert err.status == 503 and err.code == "Unavailable"
    assert "engine restarting" in str(err)
    assert "block 1/1 (sources 0-4, destinations 0-4)" in str(err)
    assert "gave up after 3 attempts" in str(err)
    assert err.to_dict()["code"] == 3


def test_non_json_gateway_error_is_reported(osrm: FakeOSRM) -> None:
    osrm.fail_first, osrm.fail_status = 10**6, 502
    osrm.fail_body = b"<html><body>502 Bad Gateway</body></html>"
    with pytest.raises(RoutingServiceError, match=r"HTTP 502.*502 Bad Gateway") as info:
        provider(osrm, retries=1).table(china_points(3, seed=10))
    assert info.value.code == "HTTP 502"
    assert osrm.count == 2


def test_too_big_is_not_retried(osrm: FakeOSRM) -> None:
    osrm.max_coords = 10
    with pytest.raises(RoutingServiceError, match="Too many table coordinates") as info:
        provider(osrm, max_table_size=20, retries=3).table(china_points(15, seed=11))
    assert info.value.code == "TooBig" and info.value.status == 400
    assert "max_table_size" in str(info.value)
    assert osrm.count == 1


def test_invalid_query_is_not_retried(osrm: FakeOSRM) -> None:
    osrm.error = (400, {"code": "InvalidQuery", "message": "Query string malformed close to "
                                                           "position 42"})
    with pytest.raises(RoutingServiceError, match=r"InvalidQuery.*position 42") as info:
        provider(osrm).table(china_points(3, seed=12))
    assert info.value.code == "InvalidQuery"
    assert osrm.count == 1


def test_ok_status_with_error_code_is_an_error(osrm: FakeOSRM) -> None:
    osrm.error = (200, {"code": "NoTable", "message": "No table found"})
    with pytest.raises(RoutingServiceError, match="NoTable"):
        provider(osrm).table(china_points(3, seed=13))
    assert osrm.count == 1


def test_response_of_the_wrong_shape_is_an_error(osrm: FakeOSRM) -> None:
    osrm.error = (200, {"code": "Ok", "durations": [[0.0]], "distances": [[0.0]]})
    with pytest.raises(RoutingServiceError, match=r"expected 'durations' of shape \(3, 3\)"):
        provider(osrm).table(china_points(3, seed=14))


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens on the port now.
    p = OSRMProvider(base_url=f"http://127.0.0.1:{port}", retries=1, backoff_s=0.001,
                     timeout_s=2.0)
    with pytest.raises(RoutingServiceError, match="ConnectionError") as info:
        p.table(china_points(2, seed=15))
    assert info.value.status is None and info.value.code == "ConnectionError"
    assert "gave up after 2 attempts" in str(info.value)


def test_timeout_is_a_connection_error(osrm: FakeOSRM) -> None:
    osrm.delay_s = 1.0
    with pytest.raises(RoutingServiceError, match=r"ConnectionError.*timed out"):
        provider(osrm, timeout_s=0.2, retries=0).table(china_points(2, seed=16))
    assert osrm.count == 1


def test_unroutable_pairs_are_flagged(osrm: FakeOSRM) -> None:
    pts = china_points(6, seed=17)
    island = (round(float(pts[2, 0]), 6), round(float(pts[2, 1]), 6))
    osrm.null_points = {island}
    p = provider(osrm)
    with pytest.warns(DataQualityWarning, match=r"no route for 10 of 36 .*0->2, 1->2"):
        got = p.table(pts)
    mask = np.zeros((6, 6), dtype=bool)
    mask[2, :] = mask[:, 2] = True
    mask[2, 2] = False
    assert p.unroutable is not None
    assert np.array_equal(p.unroutable, mask)
    assert np.all(got.km[mask] == UNROUTABLE_KM) and np.all(got.minutes[mask] == UNROUTABLE_MIN)
    assert np.all(np.isfinite(got.km)) and np.all(np.isfinite(got.minutes))
    want = expected(pts)
    assert_allclose(got.km[~mask], want.km[~mask], atol=1e-3)


def test_cache_makes_reruns_free(osrm: FakeOSRM, tmp_path: Path) -> None:
    pts = china_points(120, seed=18)
    cache = tmp_path / "osrm-cache"
    first = provider(osrm, max_table_size=100, cache_dir=cache).table(pts)
    n_requests = osrm.count
    assert n_requests > 1
    files = sorted(cache.glob("*.npz"))
    assert len(files) == n_requests
    assert not list(cache.glob("*.tmp"))

    again = provider(osrm, max_table_size=100, cache_dir=str(cache)).table(pts)
    assert osrm.count == n_requests  # nothing sent
    assert_allclose(again.km, first.km, rtol=0, atol=0)
    assert_allclose(again.minutes, first.minutes, rtol=0, atol=0)

    # Another server or profile is another key.
    provider(osrm, max_table_size=100, cache_dir=cache, profile="car").table(pts)
    assert osrm.count == 2 * n_requests


def test_cache_moves_with_the_points_and_keeps_unroutable(osrm: FakeOSRM,
                                                          tmp_path: Path) -> None:
    pts = china_points(4, seed=19)
    osrm.null_points = {(round(float(pts[0, 0]), 6), round(float(pts[0, 1]), 6))}
    with pytest.warns(DataQualityWarning):
        provider(osrm, cache_dir=tmp_path).table(pts)
    p = provider(osrm, cache_dir=tmp_path)
    with pytest.warns(DataQualityWarning):
        p.table(pts)
    assert osrm.count == 1 and p.unroutable is not None and p.unroutable.sum() == 6
    moved = pts.copy()
    moved[1, 0] += 0.001
    with pytest.warns(DataQualityWarning):
        provider(osrm, cache_dir=tmp_path).table(moved)
    assert osrm.count == 2


def test_corrupt_cache_file_is_refetched(osrm: FakeOSRM, tmp_path: Path) -> None:
    pts = china_points(3, seed=20)
    provider(osrm, cache_dir=tmp_path).table(pts)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"not a zip file")
    got = provider(osrm, cache_dir=tmp_path).table(pts)
    assert osrm.count == 2
    assert_matches(got, expected(pts))


def test_gcj02_option_converts_coordinates_sent(osrm: FakeOSRM) -> None:
    pts = china_points(5, seed=21)
    provider(osrm, coord_system="gcj02").table(pts)
    sent = np.array(osrm.requests[0]["coords"])
    glon, glat = wgs84_to_gcj02(pts[:, 0], pts[:, 1])
    assert_allclose(sent, np.column_stack([glon, glat]), rtol=0, atol=5e-7)
    assert np.abs(sent - pts).max() > 1e-3  # really shifted, by hundreds of metres


def test_wgs84_is_sent_by_default(osrm: FakeOSRM) -> None:
    src, dst = china_points(3, seed=22), china_points(2, seed=23)
    provider(osrm).table(src, dst)
    assert_allclose(np.array(osrm.requests[0]["coords"]), np.vstack([src, dst]), atol=5e-7)


def test_loopback_bypasses_environment_proxies(osrm: FakeOSRM,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that does not exist: a local osrm-routed must still be reached directly.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    provider(osrm, retries=0).table(china_points(2, seed=24))
    assert osrm.count == 1


def test_empty_inputs_send_nothing(osrm: FakeOSRM) -> None:
    p = provider(osrm)
    assert p.table(np.zeros((0, 2))).km.shape == (0, 0)
    assert p.table(china_points(3, seed=25), np.zeros((0, 2))).minutes.shape == (3, 0)
    assert osrm.count == 0


def test_injected_session() -> None:
    seen: list[str] = []

    class Canned:
        def get(self, url: str, timeout: float) -> SimpleNamespace:
            seen.append(url)
            body = {"code": "Ok", "durations": [[0, 600], [660, 0]],
                    "distances": [[0, 9000], [9500, 0]]}
            return SimpleNamespace(status_code=200, content=json.dumps(body).encode())

    p = OSRMProvider(base_url="http://osrm.invalid:5000/", session=Canned())
    got = p.table(np.array([[116.4, 39.9], [116.5, 39.95]]))
    assert_allclose(got.km, [[0, 9.0], [9.5, 0]])
    assert_allclose(got.minutes, [[0, 10.0], [11.0, 0]])
    assert seen == ["http://osrm.invalid:5000/table/v1/driving/116.400000,39.900000;"
                    "116.500000,39.950000?annotations=duration,distance"]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("points", [
    np.array([116.4, 39.9]),
    np.zeros((3, 3)),
    [[116.4, 39.9, 0.0]],
])
def test_table_rejects_bad_shapes(points: object) -> None:
    with pytest.raises(InvalidInputError, match=r"expected an \(n, 2\) array"):
        ModelProvider().table(points)  # type: ignore[arg-type]


def test_table_rejects_bad_coordinates_naming_rows() -> None:
    pts = np.array([[116.4, 39.9], [np.nan, 30.0], [39.9, 116.4]])
    with pytest.raises(InvalidInputError) as info:
        OSRMProvider(session=object()).table(pts)  # type: ignore[arg-type]
    text = str(info.value)
    assert "row 1: lon=nan" in text and "row 2: lat=116.4" in text
    assert "swapped" in text


@pytest.mark.parametrize(("kwargs", "field_name"), [
    ({"base_url": "localhost:5000"}, "base_url"),
    ({"max_table_size": 1}, "max_table_size"),
    ({"max_table_size": 10.5}, "max_table_size"),
    ({"retries": -1}, "retries"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"backoff_s": -0.1}, "backoff_s"),
    ({"coord_system": "mars"}, "coord_system"),
    ({"profile": "a/b"}, "profile"),
])
def test_osrm_parameters_are_validated(kwargs: dict[str, object], field_name: str) -> None:
    with pytest.raises(InvalidInputError, match=f"{field_name}="):
        OSRMProvider(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# ModelProvider and matrix_for (area speeds come from territory.china)
# ---------------------------------------------------------------------------------------------
def test_providers_satisfy_the_protocol() -> None:
    assert isinstance(ModelProvider(), MatrixProvider)
    assert isinstance(OSRMProvider(), MatrixProvider)


def test_model_provider_wraps_the_model() -> None:
    model = TravelModel(circuity=1.2)
    src, dst = china_points(20, seed=26), china_points(5, seed=27)
    p = ModelProvider(model)
    square = p.table(src)
    assert_allclose(square.km, model.matrix(src).km)
    assert_allclose(square.minutes, model.matrix(src).minutes)
    rect = p.table(src, dst)
    assert rect.km.shape == (20, 5)
    assert_allclose(rect.minutes, model.between(src, dst).minutes)
    assert p.table(np.zeros((0, 2))).km.shape == (0, 0)


def test_matrix_for_dense_then_sparse() -> None:
    pts = china_points(60, seed=28)
    dense = matrix_for(pts)
    assert isinstance(dense.km, np.ndarray) and dense.km.shape == (60, 60)
    assert_allclose(dense.minutes, TravelModel().matrix(pts).minutes)
    model = TravelModel(circuity=1.5)
    sparse = matrix_for(pts, model=model, dense_limit=50, k=4)
    assert sp.issparse(sparse.km) and sp.issparse(sparse.minutes)
    assert sparse.km.nnz == 60 * 4
    ref = model.matrix(pts)
    rows, cols = sparse.km.nonzero()
    assert_allclose(np.asarray(sparse.km[rows, cols]).ravel(), ref.km[rows, cols], rtol=1e-9)


def test_matrix_for_uses_the_provider_only_for_dense_tables(osrm: FakeOSRM) -> None:
    pts = china_points(20, seed=29)
    p = provider(osrm)
    dense = matrix_for(pts, provider=p)
    assert osrm.count == 1
    assert_matches(dense, expected(pts))
    with pytest.warns(UserWarning, match="dense_limit=10"):
        sparse = matrix_for(pts, provider=p, dense_limit=10, k=3)
    assert osrm.count == 1 and sp.issparse(sparse.km)


def test_matrix_for_takes_the_model_of_a_model_provider() -> None:
    pts = china_points(30, seed=30)
    model = TravelModel(circuity=1.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "provider bypassed" warning for a model
        sparse = matrix_for(pts, provider=ModelProvider(model), dense_limit=5, k=2)
    rows, cols = sparse.km.nonzero()
    assert_allclose(np.asarray(sparse.km[rows, cols]).ravel(),
                    model.matrix(pts).km[rows, cols], rtol=1e-9)


def test_matrix_for_validates() -> None:
    with pytest.raises(InvalidInputError, match="k=0"):
        matrix_for(china_points(3, seed=31), k=0)
