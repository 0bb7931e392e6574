"""Distances and travel times without a road network.

Model (every constant a field of ``TravelModel``, so it can be calibrated):

* great-circle distance ``g`` (haversine, mean Earth radius 6371.0088 km);
* road distance ``r = circuity * g`` (default 1.3: Chinese road networks measure 1.2-1.4 times
  the straight line; the factor is higher in cities and in mountains);
* speed by area type of each end: urban 25 km/h, suburban 40 km/h, rural 60 km/h. A trip runs its
  first ``highway_after_km`` (30 km) at the harmonic mean of the two ends' local speeds (half the
  distance in each area) and the rest at ``highway_kmh`` (80 km/h: expressway plus access);
* long legs go by public transport when that is faster (``long_haul``): high-speed rail at 2 h
  fixed (to and from stations, waiting) plus the road distance at 200 km/h, air at 4 h plus
  700 km/h. Rail takes over from driving at about 220 road km, air from rail at about 560 km; a
  rep in Urumqi reaches Kashgar (1,470 road km) in about 6 h, as reps there do (by plane), not
  in two days' drive;
* area type from local population density (persons/km^2): urban at or above 1,500, suburban at
  or above 300, rural below. Density is a kernel estimate from the bundled GeoNames places
  (each place spread as a Gaussian whose width grows with the square root of its population,
  2 km for 50,000 people), rasterised once on a 0.05 degree grid over China; points outside
  the grid are rural.

The time function is increasing and concave in distance, so travel times are subadditive along a
straight line; with mixed area types the triangle inequality may fail by a few minutes, which
routing does not need.

For road-network times, use a ``MatrixProvider`` (``territory.providers``), e.g. OSRM.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from territory.errors import InvalidInputError

__all__ = [
    "EARTH_RADIUS_KM",
    "TravelMatrix",
    "TravelModel",
    "haversine_km",
    "local_projection_km",
    "pairwise_km",
    "population_density",
]

EARTH_RADIUS_KM = 6371.0088
URBAN, SUBURBAN, RURAL = 0, 1, 2
AREA_NAMES = ("urban", "suburban", "rural")

_GRID_DEG = 0.05
_GRID_BOX = (73.0, 17.5, 135.5, 54.0)  # lon0, lat0, lon1, lat1


def haversine_km(lon1: np.ndarray | float, lat1: np.ndarray | float,
                 lon2: np.ndarray | float, lat2: np.ndarray | float) -> np.ndarray:
    """Great-circle distance in km between WGS-84 points (numpy broadcasting)."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float))
                              for v in (lon1, lat1, lon2, lat2))
    a = (np.sin((lat2 - lat1) / 2.0) ** 2
         + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2)
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def pairwise_km(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Dense great-circle distances (km) between rows of ``a`` and of ``b`` (``(n, 2)`` lon/lat)."""
    a = np.asarray(a, dtype=float)
    b = a if b is None else np.asarray(b, dtype=float)
    return haversine_km(a[:, None, 0], a[:, None, 1], b[None, :, 0], b[None, :, 1])


def local_projection_km(lonlat: np.ndarray, origin: tuple[float, float] | None = None
                        ) -> np.ndarray:
    """Planar x/y in km (equirectangular about ``origin``, default the points' centre).

    Accurate to about 1 % over a province; over all of China it distorts east-west distances
    away from the centre latitude, which is why the partitioner projects per region.
    """
    lonlat = np.asarray(lonlat, dtype=float)
    if origin is None:
        origin = (float(np.mean(lonlat[:, 0])), float(np.mean(lonlat[:, 1])))
    k = np.pi / 180.0 * EARTH_RADIUS_KM
    x = (lonlat[:, 0] - origin[0]) * k * np.cos(np.radians(origin[1]))
    y = (lonlat[:, 1] - origin[1]) * k
    return np.column_stack([x, y])


def _to_unit_sphere(lonlat: np.ndarray) -> np.ndarray:
    lon, lat = np.radians(lonlat[:, 0]), np.radians(lonlat[:, 1])
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


class TravelMatrix(NamedTuple):
    """Road km and driving minutes between points; ``km[i, j]`` from ``i`` to ``j``."""

    km: np.ndarray
    minutes: np.ndarray


@functools.lru_cache(maxsize=1)
def _density_grid() -> np.ndarray:
    """Persons per km^2 on the 0.05 degree grid (rows = latitude), from the bundled places."""
    from territory import china

    places = china.cities()
    lon0, lat0, lon1, lat1 = _GRID_BOX
    nx = round((lon1 - lon0) / _GRID_DEG)
    ny = round((lat1 - lat0) / _GRID_DEG)
    grid = np.zeros((ny, nx), dtype=np.float64)
    deg_km = np.pi / 180.0 * EARTH_RADIUS_KM
    pop = places["population"].to_numpy(dtype=float)
    sigma = np.clip(2.0 * np.sqrt(pop / 50_000.0), 1.5, 40.0)
    for x, y, p, s in zip(places["lon"].to_numpy(float), places["lat"].to_numpy(float), pop,
                          sigma, strict=True):
        reach_lat = 3.0 * s / deg_km
        reach_lon = reach_lat / max(np.cos(np.radians(y)), 0.2)
        i0 = max(int((y - reach_lat - lat0) / _GRID_DEG), 0)
        i1 = min(int((y + reach_lat - lat0) / _GRID_DEG) + 1, ny)
        j0 = max(int((x - reach_lon - lon0) / _GRID_DEG), 0)
        j1 = min(int((x + reach_lon - lon0) / _GRID_DEG) + 1, nx)
        if i0 >= i1 or j0 >= j1:
            continue
        cy = lat0 + (np.arange(i0, i1) + 0.5) * _GRID_DEG
        cx = lon0 + (np.arange(j0, j1) + 0.5) * _GRID_DEG
        dy = (cy - y)[:, None] * deg_km
        dx = (cx - x)[None, :] * deg_km * np.cos(np.radians(y))
        grid[i0:i1, j0:j1] += p / (2 * np.pi * s * s) * np.exp(-(dx * dx + dy * dy) / (2 * s * s))
    return grid.astype(np.float32)


def population_density(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Estimated residents per km^2 at WGS-84 points (0 outside the China grid)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    grid = _density_grid()
    lon0, lat0, _, _ = _GRID_BOX
    j = np.floor((lon - lon0) / _GRID_DEG)
    i = np.floor((lat - lat0) / _GRID_DEG)
    inside = (i >= 0) & (i < grid.shape[0]) & (j >= 0) & (j < grid.shape[1])
    out = np.zeros(lon.shape, dtype=float)
    out[inside] = grid[i[inside].astype(np.int64), j[inside].astype(np.int64)]
    return out


@dataclass(frozen=True)
class TravelModel:
    """Road distance and driving time from coordinates (see the module docstring)."""

    circuity: float = 1.3
    urban_kmh: float = 25.0
    suburban_kmh: float = 40.0
    rural_kmh: float = 60.0
    highway_kmh: float = 80.0
    highway_after_km: float = 30.0
    urban_density: float = 1500.0
    suburban_density: float = 300.0
    #: Public transport for long legs, (fixed minutes, km/h on the road distance) per mode:
    #: high-speed rail (to and from stations, waiting: 2 h) and air (4 h). A leg takes the
    #: fastest of driving and these; () drives everywhere.
    long_haul: tuple[tuple[float, float], ...] = ((120.0, 200.0), (240.0, 700.0))

    def __post_init__(self) -> None:
        # InvalidInputError is a ValueError, so callers catching ValueError still work.
        for name in ("circuity", "urban_kmh", "suburban_kmh", "rural_kmh", "highway_kmh"):
            value = getattr(self, name)
            if not (value > 0 and np.isfinite(value)):
                raise InvalidInputError(f"TravelModel.{name}={value!r}; expected a finite "
                                        "number > 0.")
        if self.circuity < 1:
            raise InvalidInputError(f"TravelModel.circuity={self.circuity!r}; expected >= 1 "
                                    "(roads are never shorter than the straight line).")
        if not self.highway_after_km >= 0:
            raise InvalidInputError(f"TravelModel.highway_after_km={self.highway_after_km!r}; "
                                    "expected >= 0.")
        try:
            modes = tuple((float(a), float(b)) for a, b in self.long_haul)
        except (TypeError, ValueError):
            raise InvalidInputError(f"TravelModel.long_haul={self.long_haul!r}; expected pairs "
                                    "(fixed minutes, km/h).") from None
        if any(not (a >= 0 and b > 0 and np.isfinite(a) and np.isfinite(b)) for a, b in modes):
            raise InvalidInputError(f"TravelModel.long_haul={self.long_haul!r}; expected fixed "
                                    "minutes >= 0 and km/h > 0.")
        object.__setattr__(self, "long_haul", modes)
        if not 0 <= self.suburban_density <= self.urban_density:
            raise InvalidInputError(
                f"TravelModel: suburban_density={self.suburban_density!r}, urban_density="
                f"{self.urban_density!r}; expected 0 <= suburban_density <= urban_density.")

    # area types -------------------------------------------------------------------------
    def area_type(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """0 urban, 1 suburban, 2 rural, by population density at each point."""
        d = population_density(lon, lat)
        return np.where(d >= self.urban_density, URBAN,
                        np.where(d >= self.suburban_density, SUBURBAN, RURAL)).astype(np.int8)

    def local_kmh(self, area: np.ndarray) -> np.ndarray:
        """Local driving speed (km/h) for area type codes."""
        speeds = np.array([self.urban_kmh, self.suburban_kmh, self.rural_kmh])
        return speeds[np.asarray(area, dtype=np.int64)]

    def point_kmh(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Local speed at each point."""
        return self.local_kmh(self.area_type(lon, lat))

    # times ------------------------------------------------------------------------------
    def minutes_for(self, road_km: np.ndarray, kmh_a: np.ndarray | float,
                    kmh_b: np.ndarray | float) -> np.ndarray:
        """Driving minutes for road distances between ends with local speeds ``kmh_a/b``."""
        road_km = np.asarray(road_km, dtype=float)
        v_local = 2.0 / (1.0 / np.asarray(kmh_a, dtype=float) + 1.0 / np.asarray(kmh_b,
                                                                                  dtype=float))
        near = np.minimum(road_km, self.highway_after_km)
        far = road_km - near
        minutes = 60.0 * (near / v_local + far / self.highway_kmh)
        # Each mode is increasing in distance, so the fastest of them is too.
        for fixed, kmh in self.long_haul:
            minutes = np.minimum(minutes, fixed + 60.0 * road_km / kmh)
        return minutes

    def road_km(self, lon1: np.ndarray | float, lat1: np.ndarray | float,
                lon2: np.ndarray | float, lat2: np.ndarray | float) -> np.ndarray:
        """Road km between points (broadcasting)."""
        return self.circuity * haversine_km(lon1, lat1, lon2, lat2)

    def _kmh(self, lonlat: np.ndarray, kmh: np.ndarray | float | None, name: str
             ) -> np.ndarray:
        """Local speed per point: from the area types, or ``kmh`` (scalar or per point)."""
        if kmh is None:
            return self.point_kmh(lonlat[:, 0], lonlat[:, 1])
        arr = np.asarray(kmh, dtype=float)
        if arr.ndim > 1 or (arr.ndim == 1 and len(arr) != len(lonlat)):
            raise InvalidInputError(f"TravelModel: {name} has shape {arr.shape}; expected a "
                                    f"scalar or one speed per point ({len(lonlat)},).")
        if not np.all(arr > 0):
            raise InvalidInputError(f"TravelModel: {name} has speeds <= 0 or NaN; expected "
                                    "km/h > 0.")
        return np.broadcast_to(arr, (len(lonlat),))

    def matrix(self, lonlat: np.ndarray, kmh: np.ndarray | float | None = None
               ) -> TravelMatrix:
        """Dense road km and minutes among ``n`` points (use for n up to a few thousand).

        ``kmh`` (local speed per point, or one for all) is computed from the area types when
        not given.
        """
        lonlat = np.asarray(lonlat, dtype=float)
        kmh = self._kmh(lonlat, kmh, "kmh")
        km = self.circuity * pairwise_km(lonlat)
        minutes = self.minutes_for(km, kmh[:, None], kmh[None, :])
        return TravelMatrix(km, minutes)

    def between(self, a: np.ndarray, b: np.ndarray, kmh_a: np.ndarray | float | None = None,
                kmh_b: np.ndarray | float | None = None) -> TravelMatrix:
        """Dense road km and minutes from every row of ``a`` to every row of ``b``."""
        a = np.asarray(a, dtype=float)
        b = np.asarray(b, dtype=float)
        kmh_a = self._kmh(a, kmh_a, "kmh_a")
        kmh_b = self._kmh(b, kmh_b, "kmh_b")
        km = self.circuity * pairwise_km(a, b)
        return TravelMatrix(km, self.minutes_for(km, kmh_a[:, None], kmh_b[None, :]))

    def knn(self, lonlat: np.ndarray, k: int = 10, kmh: np.ndarray | float | None = None
            ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """Sparse ``k``-nearest-neighbour graph: (road km, minutes) as CSR matrices.

        Row ``i`` holds the ``k`` nearest other points of ``i`` (by great-circle distance).
        Duplicate points are each other's neighbours at 0 km, stored as explicit zeros, so
        ``nnz == n * min(k, n - 1)``. Memory is O(n k); use this above a few thousand points.
        """
        if not k >= 0:
            raise InvalidInputError(f"TravelModel.knn: k={k!r}; expected an integer >= 0.")
        lonlat = np.asarray(lonlat, dtype=float)
        n = len(lonlat)
        k = int(min(k, max(n - 1, 0)))
        if k == 0:
            empty = sp.csr_matrix((n, n))
            return empty, empty.copy()
        kmh = self._kmh(lonlat, kmh, "kmh")
        pts = _to_unit_sphere(lonlat)
        tree = cKDTree(pts)
        # Queries in the tree's own point order touch memory in order: half the time at 10^6
        # points (11 s -> 6 s), where queries in input order miss the cache on every point.
        order = tree.indices
        chord = np.empty((n, k + 1))
        idx = np.empty((n, k + 1), dtype=np.int64)
        chord[order], idx[order] = tree.query(pts[order], k=k + 1)
        # With duplicate points the point itself need not come first: drop it wherever it is,
        # else drop the farthest.
        is_self = idx == np.arange(n)[:, None]
        drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
        keep = np.ones_like(idx, dtype=bool)
        keep[np.arange(n), drop] = False
        chord, idx = chord[keep].reshape(n, k), idx[keep].reshape(n, k)
        gc = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))
        km = self.circuity * gc
        rows = np.repeat(np.arange(n), k)
        minutes = self.minutes_for(km.ravel(), kmh[rows], kmh[idx.ravel()])
        km_m = sp.csr_matrix((km.ravel(), (rows, idx.ravel())), shape=(n, n))
        min_m = sp.csr_matrix((minutes, (rows, idx.ravel())), shape=(n, n))
        return km_m, min_m

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a JSON-ready dict."""
        out: dict[str, Any] = {k: float(getattr(self, k)) for k in self.__dataclass_fields__
                               if k != "long_haul"}
        out["long_haul"] = [list(m) for m in self.long_haul]
        return out
