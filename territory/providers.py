"""Travel-matrix providers: where road km and driving minutes come from.

A provider turns ``(n, 2)`` arrays of WGS-84 ``(lon, lat)`` into a dense
``TravelMatrix(km, minutes)`` with ``km[i, j]`` from source ``i`` to destination ``j``:

* ``ModelProvider`` (the default): the offline ``TravelModel`` (circuity and speeds by area
  type), no network;
* ``OSRMProvider``: the ``table`` service of an OSRM server (``osrm-routed``), chunked, retried
  and cached on disk.

``matrix_for`` picks a dense table for small point sets and the model's sparse k-nearest-neighbour
graph for large ones.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import itertools
import json
import math
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from territory.coords import SYSTEMS, convert
from territory.errors import DataQualityWarning, InvalidInputError, Problem, TerritoryError
from territory.travel import TravelMatrix, TravelModel

__all__ = [
    "UNROUTABLE_KM",
    "UNROUTABLE_MIN",
    "HTTPSession",
    "MatrixProvider",
    "ModelProvider",
    "OSRMProvider",
    "RoutingServiceError",
    "UrllibSession",
    "matrix_for",
]

#: Road km reported for a pair the routing service cannot connect. Large enough that no
#: solver uses the pair, small enough that sums of a few thousand stay far from any integer
#: overflow when solvers scale to integers.
UNROUTABLE_KM = 100_000.0
#: Driving minutes reported for an unroutable pair (about 69 days).
UNROUTABLE_MIN = 100_000.0

# HTTP statuses worth retrying: rate limiting and server-side failures (OSRM itself answers
# 400 for every request error, which no retry can fix).
_RETRY_STATUSES = frozenset({408, 425, 429})
_MAX_RETRY_AFTER_S = 60.0
_COORD_DECIMALS = 6  # 0.1 m; also the rounding of the cache key
_CACHE_FORMAT = 1  # bump when the cached arrays change meaning

_HINTS = {
    "TooBig": "Lower max_table_size (it counts coordinates per request) to fit the server's "
              "--max-table-size.",
    "NoSegment": "A point could not be snapped to a road: check that the points lie inside the "
                 "server's map extract and are in the datum it expects (coord_system=).",
    "NoTable": "The server found no route at all for this block.",
    "InvalidQuery": "The request was malformed: check base_url and profile.",
    "InvalidValue": "The request was malformed: check base_url and profile.",
    "InvalidUrl": "The request was malformed: check base_url and profile.",
    "InvalidOptions": "The server rejected an option: is it an OSRM 5.x server recent enough "
                      "for annotations=duration,distance?",
    "InvalidService": "base_url does not serve OSRM's table/v1 service.",
    "InvalidVersion": "base_url does not serve OSRM's table/v1 service.",
    "ConnectionError": "Is the server running and reachable at base_url?",
}


class RoutingServiceError(TerritoryError):
    """A routing service failed permanently (after retries, or with an error no retry fixes).

    Attributes
    ----------
    code:
        The service's error code (OSRM: ``"TooBig"``, ``"InvalidQuery"``, ``"NoSegment"``, ...),
        ``"HTTP <status>"`` when the body had none, or ``"ConnectionError"``.
    status:
        The HTTP status of the last answer, ``None`` when the server was not reached.
    block:
        Which block of the table failed, e.g. ``"block 3/25 (sources 100-149, destinations
        0-49)"``.
    url:
        The last URL requested.
    """

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 block: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.block = block
        self.url = url

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (error code 3: routing, as in VROOM)."""
        return {"code": 3, "error": "routing", "message": str(self), "service_code": self.code,
                "http_status": self.status, "block": self.block}


# ------------------------------------------------------------------------------------------
# The interface and the offline default
# ------------------------------------------------------------------------------------------
@runtime_checkable
class MatrixProvider(Protocol):
    """Anything that turns points into a dense road-km and driving-minutes table."""

    def table(self, sources: np.ndarray, destinations: np.ndarray | None = None
              ) -> TravelMatrix:
        """Road km and minutes from every source to every destination.

        Parameters
        ----------
        sources, destinations:
            ``(n, 2)`` and ``(m, 2)`` WGS-84 ``(lon, lat)`` in degrees; ``destinations=None``
            means the sources themselves (an ``n x n`` table).

        Returns
        -------
        TravelMatrix
            ``km`` and ``minutes`` as float arrays of shape ``(n, m)``.
        """
        ...


def _lonlat(points: object, name: str) -> np.ndarray:
    """Validate an ``(n, 2)`` lon/lat array at the door."""
    arr = np.asarray(points, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InvalidInputError(
            f"{name}: expected an (n, 2) array of (lon, lat) in degrees, got shape {arr.shape}.",
            hint="Stack the columns, e.g. np.column_stack([lon, lat]).")
    problems = []
    for col, field_name, bound in ((0, "lon", 180.0), (1, "lat", 90.0)):
        bad = np.flatnonzero(~(np.abs(arr[:, col]) <= bound))  # catches NaN too
        problems += [Problem(int(i), None, field_name, float(arr[i, col]),
                             f"expected a finite number in [-{bound:g}, {bound:g}].")
                     for i in bad]
    if problems:
        problems.sort(key=lambda p: (p.row, p.field))
        raise InvalidInputError(f"{name}: {len(problems)} invalid coordinate(s).", problems,
                                hint="Coordinates are (lon, lat) in degrees: check for "
                                     "swapped columns and missing geocodes.")
    return arr


@dataclass(frozen=True)
class ModelProvider:
    """The offline provider: ``TravelModel`` road km and minutes (no network).

    Parameters
    ----------
    model:
        The travel model; default ``TravelModel()``.
    """

    model: TravelModel = field(default_factory=TravelModel)

    def table(self, sources: np.ndarray, destinations: np.ndarray | None = None
              ) -> TravelMatrix:
        """Dense road km and minutes (see ``MatrixProvider.table``).

        Raises
        ------
        InvalidInputError
            If the points are not an ``(n, 2)`` array of valid lon/lat.
        """
        src = _lonlat(sources, "sources")
        if destinations is None:
            if len(src) == 0:
                return TravelMatrix(np.zeros((0, 0)), np.zeros((0, 0)))
            return self.model.matrix(src)
        dst = _lonlat(destinations, "destinations")
        if len(src) == 0 or len(dst) == 0:
            return TravelMatrix(np.zeros((len(src), len(dst))), np.zeros((len(src), len(dst))))
        return self.model.between(src, dst)


# ------------------------------------------------------------------------------------------
# HTTP transport
# ------------------------------------------------------------------------------------------
class HTTPSession(Protocol):
    """The transport ``OSRMProvider`` needs: ``requests.Session`` and ``UrllibSession`` fit.

    ``get`` returns an object with ``status_code`` (int), ``content`` (bytes) and optionally
    ``headers`` (a mapping); it raises ``OSError`` (or a subclass) when the server cannot be
    reached, which ``OSRMProvider`` retries.
    """

    def get(self, url: str, timeout: float) -> Any:
        """Perform an HTTP GET."""
        ...


@dataclass(frozen=True)
class _Response:
    status_code: int
    content: bytes
    headers: Any  # email.message.Message: a case-insensitive .get()


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class UrllibSession:
    """A minimal HTTP GET over ``urllib`` (no dependency): the default transport.

    Environment proxies (``http_proxy`` ...) are honoured except for loopback hosts, where a
    proxy would only get in the way of a local ``osrm-routed``.
    """

    def __init__(self, user_agent: str = "territory-planner") -> None:
        self.user_agent = user_agent
        self._proxied = urllib.request.build_opener()
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get(self, url: str, timeout: float) -> _Response:
        """GET ``url``; HTTP error statuses are returned, not raised.

        Raises
        ------
        OSError
            When the server cannot be reached, the connection breaks or ``timeout`` (seconds)
            passes.
        """
        request = urllib.request.Request(
            url, headers={"User-Agent": self.user_agent, "Accept": "application/json"})
        opener = self._direct if _is_loopback(url) else self._proxied
        try:
            with opener.open(request, timeout=timeout) as resp:
                return _Response(resp.status, resp.read(), resp.headers)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read() if exc.fp is not None else b""
                return _Response(exc.code, body, exc.headers)
        except http.client.HTTPException as exc:
            # A half-read or malformed answer is as transient as a dropped connection.
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------------------------------
# OSRM
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Block:
    number: int
    total: int
    rows: slice
    cols: slice
    all_to_all: bool  # one request of the square table, without sources/destinations

    @property
    def label(self) -> str:
        return (f"block {self.number}/{self.total} (sources {self.rows.start}-"
                f"{self.rows.stop - 1}, destinations {self.cols.start}-{self.cols.stop - 1})")


def _bounds(n: int, size: int) -> list[slice]:
    """Cut ``range(n)`` into the fewest near-equal slices of at most ``size``."""
    parts = math.ceil(n / size)
    edges = np.linspace(0, n, parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges.tolist())]


def _plan(n_src: int, n_dst: int, square: bool, limit: int) -> list[_Block]:
    """Blocks of at most ``limit`` coordinates each, with the fewest requests."""
    if n_src == 0 or n_dst == 0:
        return []
    if square and n_src <= limit:
        return [_Block(1, 1, slice(0, n_src), slice(0, n_dst), True)]
    best: tuple[int, int, int, int] | None = None
    for s in range(1, limit):
        s_c, d_c = min(s, n_src), min(limit - s, n_dst)
        count = math.ceil(n_src / s_c) * math.ceil(n_dst / d_c)
        key = (count, abs(s_c - d_c), s_c, d_c)
        if best is None or key < best:
            best = key
    assert best is not None
    rows, cols = _bounds(n_src, best[2]), _bounds(n_dst, best[3])
    total = len(rows) * len(cols)
    return [_Block(i * len(cols) + j + 1, total, r, c, False)
            for i, r in enumerate(rows) for j, c in enumerate(cols)]


class OSRMProvider:
    """Road km and minutes from an OSRM server's ``table`` service.

    Requests ``GET {base_url}/table/v1/{profile}/{lon,lat;...}?sources=..&destinations=..
    &annotations=duration,distance`` and converts seconds to minutes and metres to km.

    * **Chunking**: a table is cut into blocks of at most ``max_table_size`` coordinates per
      request (sources plus destinations), the fewest such blocks. This is the safe reading of
      the limit: ``osrm-routed --max-table-size L`` itself refuses only ``sources x
      destinations > L^2``, so against your own ``osrm-routed`` you may pass twice its value to
      get ``L x L`` blocks. Hosted services that count coordinates need this reading.
    * **Retries**: connection errors, timeouts, HTTP 5xx, 408 and 429 are retried ``retries``
      times with exponential backoff ``backoff_s * 2**attempt`` (or the server's
      ``Retry-After``, capped at 60 s). OSRM's own errors (HTTP 400: ``TooBig``,
      ``InvalidQuery``, ``NoSegment`` ...) are not retried.
    * **Unroutable pairs** (OSRM ``null``) become ``UNROUTABLE_KM`` / ``UNROUTABLE_MIN``, are
      flagged in ``self.unroutable`` (bool, sources x destinations, of the last ``table``
      call) and reported by a ``DataQualityWarning`` naming the pairs.
    * **Cache**: with ``cache_dir``, each block's answer is stored as ``.npz`` under a key
      hashing ``base_url``, ``profile`` and the block's coordinates as sent (rounded to
      1e-6 degrees), so a rerun with the same points and ``max_table_size`` sends nothing.
    * **Datum**: points are sent in WGS-84; ``coord_system="gcj02"`` (or ``"bd09"``) converts
      them first, for servers built on map data in that datum. Results are per input row.

    Parameters
    ----------
    base_url:
        Server root, e.g. ``"http://localhost:5000"``.
    profile:
        OSRM profile name in the URL (``"driving"``; ``osrm-routed`` ignores it).
    max_table_size:
        Coordinates per request, at least 2 (OSRM's default ``--max-table-size`` is 100).
    timeout_s:
        Per-request timeout in seconds.
    retries:
        Retries after the first attempt of each request.
    backoff_s:
        First retry delay in seconds; doubles each retry.
    cache_dir:
        Directory for cached blocks (created on demand); ``None`` disables caching.
    session:
        Transport with ``get(url, timeout=)`` (see ``HTTPSession``); default ``UrllibSession()``.
    coord_system:
        Datum the server expects: ``"wgs84"`` (default), ``"gcj02"`` or ``"bd09"``.

    Raises
    ------
    InvalidInputError
        If a parameter is out of range.
    """

    def __init__(
        self,
        base_url: str = "http://localhost:5000",
        profile: str = "driving",
        max_table_size: int = 100,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        cache_dir: str | Path | None = None,
        session: HTTPSession | None = None,
        coord_system: str = "wgs84",
    ) -> None:
        problems = []
        scheme = urllib.parse.urlsplit(str(base_url)).scheme
        if scheme not in ("http", "https"):
            problems.append(Problem(None, None, "base_url", base_url,
                                    "expected an http:// or https:// URL."))
        if not profile or "/" in profile:
            problems.append(Problem(None, None, "profile", profile,
                                    "expected a profile name such as 'driving'."))
        if not (isinstance(max_table_size, int | np.integer) and max_table_size >= 2):
            problems.append(Problem(None, None, "max_table_size", max_table_size,
                                    "expected an integer >= 2."))
        if not timeout_s > 0:
            problems.append(Problem(None, None, "timeout_s", timeout_s, "expected > 0."))
        if not (isinstance(retries, int | np.integer) and retries >= 0):
            problems.append(Problem(None, None, "retries", retries, "expected an integer >= 0."))
        if not backoff_s >= 0:
            problems.append(Problem(None, None, "backoff_s", backoff_s, "expected >= 0."))
        system = str(coord_system).lower().replace("-", "").replace("_", "")
        if system not in SYSTEMS:
            problems.append(Problem(None, None, "coord_system", coord_system,
                                    f"expected one of {', '.join(SYSTEMS)}."))
        if problems:
            raise InvalidInputError("OSRMProvider: invalid parameter(s).", problems,
                                    kind="OSRMProvider")
        self.base_url = str(base_url).rstrip("/")
        self.profile = profile
        self.max_table_size = int(max_table_size)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.session: HTTPSession = UrllibSession() if session is None else session
        self.coord_system = system
        #: Bool mask (sources x destinations) of pairs without a route in the last table.
        self.unroutable: np.ndarray | None = None

    def __repr__(self) -> str:
        return (f"OSRMProvider(base_url={self.base_url!r}, profile={self.profile!r}, "
                f"max_table_size={self.max_table_size}, coord_system={self.coord_system!r})")

    # public -------------------------------------------------------------------------------
    def table(self, sources: np.ndarray, destinations: np.ndarray | None = None
              ) -> TravelMatrix:
        """Road km and driving minutes from the server (see ``MatrixProvider.table``).

        Raises
        ------
        InvalidInputError
            If the points are not an ``(n, 2)`` array of valid lon/lat.
        RoutingServiceError
            If a block fails permanently; the message names the block and the server's words.

        Warns
        -----
        DataQualityWarning
            When some pairs have no route (see ``unroutable``).
        """
        src = _lonlat(sources, "sources")
        square = destinations is None
        dst = src if square else _lonlat(destinations, "destinations")
        n_src, n_dst = len(src), len(dst)
        send_src = self._to_server(src)
        send_dst = send_src if square else self._to_server(dst)

        duration_s = np.full((n_src, n_dst), np.nan)
        distance_m = np.full((n_src, n_dst), np.nan)
        for block in _plan(n_src, n_dst, square, self.max_table_size):
            dur, dist = self._block(block, send_src, send_dst)
            duration_s[block.rows, block.cols] = dur
            distance_m[block.rows, block.cols] = dist

        unroutable = np.isnan(duration_s) | np.isnan(distance_m)
        self.unroutable = unroutable
        km = np.where(unroutable, UNROUTABLE_KM, distance_m / 1000.0)
        minutes = np.where(unroutable, UNROUTABLE_MIN, duration_s / 60.0)
        if unroutable.any():
            warnings.warn(self._unroutable_message(unroutable), DataQualityWarning,
                          stacklevel=2)
        return TravelMatrix(km, minutes)

    # internals ----------------------------------------------------------------------------
    def _to_server(self, lonlat: np.ndarray) -> np.ndarray:
        if self.coord_system == "wgs84" or len(lonlat) == 0:
            return lonlat
        lon, lat = convert(lonlat[:, 0], lonlat[:, 1], "wgs84", self.coord_system)
        return np.column_stack([lon, lat])

    def _unroutable_message(self, mask: np.ndarray) -> str:
        pairs = np.argwhere(mask)
        shown = ", ".join(f"{i}->{j}" for i, j in pairs[:20])
        more = f" and {len(pairs) - 20} more" if len(pairs) > 20 else ""
        return (f"OSRM found no route for {len(pairs)} of {mask.size} source->destination "
                f"pair(s): {shown}{more}. They are set to {UNROUTABLE_KM:g} km and "
                f"{UNROUTABLE_MIN:g} min so no plan uses them; the mask is in "
                f"OSRMProvider.unroutable. Points on islands or outside the server's map "
                f"extract usually cause this.")

    def _request(self, block: _Block, send_src: np.ndarray, send_dst: np.ndarray
                 ) -> tuple[str, str]:
        """The URL of a block and its cache key."""
        rows = send_src[block.rows]
        coords = rows if block.all_to_all else np.vstack([rows, send_dst[block.cols]])
        fmt = f"{{:.{_COORD_DECIMALS}f}},{{:.{_COORD_DECIMALS}f}}"
        path = ";".join(fmt.format(lon, lat) for lon, lat in coords)
        query = "annotations=duration,distance"
        if not block.all_to_all:
            n_rows = len(rows)
            sources = ";".join(str(i) for i in range(n_rows))
            dests = ";".join(str(n_rows + j) for j in range(len(coords) - n_rows))
            query = f"sources={sources}&destinations={dests}&{query}"
        url = f"{self.base_url}/table/v1/{self.profile}/{path}?{query}"
        key = hashlib.sha256(json.dumps(
            [_CACHE_FORMAT, self.base_url, self.profile, path, query]).encode()).hexdigest()
        return url, key

    def _block(self, block: _Block, send_src: np.ndarray, send_dst: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """Seconds and metres (NaN where no route) for one block, from the cache or server."""
        url, key = self._request(block, send_src, send_dst)
        shape = (block.rows.stop - block.rows.start, block.cols.stop - block.cols.start)
        cached = self._cache_load(key, shape)
        if cached is not None:
            return cached
        payload = self._fetch(url, block)
        dur = self._matrix(payload, "durations", shape, block, url)
        dist = self._matrix(payload, "distances", shape, block, url)
        self._cache_store(key, dur, dist)
        return dur, dist

    def _matrix(self, payload: dict, name: str, shape: tuple[int, int], block: _Block,
                url: str) -> np.ndarray:
        values = payload.get(name)
        try:
            # numpy turns OSRM's null (no route) into NaN under dtype=float.
            arr = np.array(values, dtype=float)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != shape:
            got = "nothing" if values is None else f"shape {getattr(arr, 'shape', '?')}"
            hint = (" The server may be an OSRM too old for distance annotations."
                    if values is None and name == "distances" else "")
            raise RoutingServiceError(
                f"OSRM table {block.label}: expected '{name}' of shape {shape}, got {got}.{hint}",
                code="BadResponse", status=200, block=block.label, url=url)
        return arr

    def _fetch(self, url: str, block: _Block) -> dict:
        """GET with retries; the parsed JSON of an ``Ok`` answer."""
        last: RoutingServiceError | None = None
        for attempt in range(self.retries + 1):
            delay = self.backoff_s * 2.0 ** attempt
            try:
                resp = self.session.get(url, timeout=self.timeout_s)
            except OSError as exc:
                last = self._error(block, url, "ConnectionError", None,
                                   f"{type(exc).__name__}: {exc}")
            else:
                status = int(resp.status_code)
                payload = _json_object(resp.content)
                code = payload.get("code") if payload is not None else None
                if payload is not None and 200 <= status < 300 and code == "Ok":
                    return payload
                message = (payload.get("message") if payload is not None
                           else _excerpt(resp.content)) or ""
                last = self._error(block, url, str(code or f"HTTP {status}"), status,
                                   str(message))
                if not (status >= 500 or status in _RETRY_STATUSES):
                    raise last
                delay = max(delay, _retry_after_s(getattr(resp, "headers", None)))
            if attempt < self.retries:
                time.sleep(delay)
        assert last is not None
        raise RoutingServiceError(f"{last} (gave up after {self.retries + 1} attempts)",
                                  code=last.code, status=last.status, block=last.block, url=url)

    def _error(self, block: _Block, url: str, code: str, status: int | None,
               message: str) -> RoutingServiceError:
        where = f"HTTP {status} " if status is not None and not code.startswith("HTTP") else ""
        text = f"OSRM table {block.label} at {self.base_url} failed: {where}{code}"
        if message:
            text += f": {message}"
        hint = _HINTS.get(code)
        if hint:
            text += f". {hint}"
        return RoutingServiceError(text, code=code, status=status, block=block.label, url=url)

    def _cache_path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"osrm-table-{key[:40]}.npz"

    def _cache_load(self, key: str, shape: tuple[int, int]
                    ) -> tuple[np.ndarray, np.ndarray] | None:
        if self.cache_dir is None:
            return None
        path = self._cache_path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                dur, dist = data["duration_s"], data["distance_m"]
        except (OSError, KeyError, ValueError):
            # Missing or unreadable (e.g. a run killed mid-write elsewhere): ask the server.
            return None
        if dur.shape != shape or dist.shape != shape:
            return None
        return dur, dist

    def _cache_store(self, key: str, dur: np.ndarray, dist: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self._cache_path(key)
        # Write then rename, so a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, duration_s=dur, distance_m=dist)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _json_object(body: bytes) -> dict | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def _excerpt(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after_s(headers: Mapping[str, str] | None) -> float:
    """Seconds from a numeric ``Retry-After`` header (0 when absent or a date)."""
    if not headers:
        return 0.0
    try:
        value = float(headers.get("Retry-After", 0) or 0)
    except (TypeError, ValueError):
        return 0.0
    return min(max(value, 0.0), _MAX_RETRY_AFTER_S)


# ------------------------------------------------------------------------------------------
# Convenience
# ------------------------------------------------------------------------------------------
def matrix_for(points: np.ndarray, provider: MatrixProvider | None = None,
               model: TravelModel | None = None, dense_limit: int = 3000, k: int = 10
               ) -> TravelMatrix:
    """Travel matrix for a point set: dense when small, a sparse kNN graph when large.

    For ``n <= dense_limit`` points, ``provider.table(points)`` (an ``n x n`` dense table).
    Above that a dense table would not fit (``n^2`` cells), so the result is the model's
    ``k``-nearest-neighbour graph as CSR matrices (``TravelModel.knn``). **The provider is used
    only for dense tables**: large sets always get model times (a ``UserWarning`` says so when
    a non-model provider is bypassed).

    Parameters
    ----------
    points:
        ``(n, 2)`` WGS-84 ``(lon, lat)`` in degrees.
    provider:
        Source of dense tables; default ``ModelProvider(model)``.
    model:
        Travel model for the default provider and for the kNN graph; default the provider's
        model when it is a ``ModelProvider``, else ``TravelModel()``.
    dense_limit:
        Largest ``n`` for a dense table.
    k:
        Neighbours per point in the sparse graph.

    Returns
    -------
    TravelMatrix
        ``km`` and ``minutes``: dense ``(n, n)`` arrays, or ``scipy.sparse.csr_matrix`` when
        ``n > dense_limit`` (test with ``scipy.sparse.issparse``).

    Raises
    ------
    InvalidInputError
        If ``points`` are invalid, ``dense_limit < 0`` or ``k < 1``.
    """
    if not dense_limit >= 0 or not k >= 1:
        raise InvalidInputError(
            f"matrix_for: dense_limit={dense_limit!r}, k={k!r}; expected dense_limit >= 0 and "
            "k >= 1.")
    pts = _lonlat(points, "points")
    if model is None:
        model = provider.model if isinstance(provider, ModelProvider) else TravelModel()
    if len(pts) <= dense_limit:
        return (ModelProvider(model) if provider is None else provider).table(pts)
    if provider is not None and not isinstance(provider, ModelProvider):
        warnings.warn(f"matrix_for: {len(pts)} points > dense_limit={dense_limit}; using the "
                      f"travel model's {k}-nearest-neighbour graph instead of {provider!r}.",
                      UserWarning, stacklevel=2)
    km, minutes = model.knn(pts, k=k)
    return TravelMatrix(km, minutes)
