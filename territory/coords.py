"""Conversions between WGS-84 and the Chinese web-map datums GCJ-02 and BD-09.

Chinese map services do not publish WGS-84 coordinates. AMap (Gaode), Tencent and Apple Maps
in China use **GCJ-02** ("Mars coordinates"): WGS-84 plus a smooth, deliberately obfuscating
offset of roughly 100-700 m. Baidu uses **BD-09**, a further distortion of GCJ-02. Geocodes
pasted from those services must be converted before they meet WGS-84 data (OpenStreetMap, GPS,
our bundled geography), or every account is a few hundred metres off.

GCJ-02 (the published reverse-engineered form): with ``x = lon - 105`` and ``y = lat - 35``
(degrees), two polynomial-plus-sine series ``T_lat(x, y)`` and ``T_lon(x, y)`` give offsets in
metres on the Krasovsky 1940 ellipsoid (``a = 6378245.0`` m, ``e^2 = 0.00669342162296594323``),
turned into degrees with the meridian and parallel radii of curvature at ``lat``:

    dlat = T_lat * 180 / (pi * a (1 - e^2) / W^3),   dlon = T_lon * 180 / (pi * a cos(lat) / W)

where ``W = sqrt(1 - e^2 sin^2 lat)``. GCJ-02 = WGS-84 + (dlon, dlat).

**Outside China GCJ-02 equals WGS-84**: the offset applies only inside the conventional
rectangle lon 72.004-137.8347, lat 0.8293-55.8271. The rectangle is rough (it includes
Mongolia, the Korean peninsula, parts of Japan and South-East Asia, where the real services
do not shift), but it is what the services' published clients and every open converter use;
within about 1 km of its edges a round trip may not close.

BD-09 rotates and scales GCJ-02 about the origin with ``x_pi = pi * 3000 / 180`` and shifts it
by (0.0065, 0.006) degrees; it is applied everywhere (only the GCJ-02 step is China-only).

The forward transforms are closed-form; the inverses are not, so they iterate the forward
transform (fixed point, the offset field varies slowly) until the error is below ``tol_deg``
(default 1e-9 degrees, about 0.1 mm), usually in 3-4 steps. All functions take scalars or
numpy arrays (broadcast together) and return ``(lon, lat)`` in degrees, floats for scalars.
"""

from __future__ import annotations

import numpy as np

from territory.errors import InvalidInputError

__all__ = [
    "SYSTEMS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "convert",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china_box",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

#: The coordinate systems ``convert`` knows.
SYSTEMS = ("wgs84", "gcj02", "bd09")

_A = 6378245.0  # Krasovsky 1940 semi-major axis (m), as the GCJ-02 algorithm uses
_EE = 0.00669342162296594323  # Krasovsky 1940 first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON, _BD_DLAT = 0.0065, 0.006

# The conventional "out of China" rectangle (degrees).
_BOX_LON = (72.004, 137.8347)
_BOX_LAT = (0.8293, 55.8271)

_TOL_DEG = 1e-9
_MAX_ITER = 50

ArrayLike = np.ndarray | float


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    # broadcast_arrays returns read-only views; copy so callers never see aliasing.
    return np.array(lon_a), np.array(lat_a)


def _out(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # 0-d results come back as numpy floats (a float subclass), arrays as arrays.
    if lon.ndim == 0:
        return lon[()], lat[()]
    return lon, lat


def in_china_box(lon: ArrayLike, lat: ArrayLike) -> np.ndarray:
    """True where a point lies in the rough rectangle inside which GCJ-02 shifts coordinates.

    Parameters
    ----------
    lon, lat:
        Degrees (any datum: the box is far coarser than the datum offsets).

    Returns
    -------
    numpy.ndarray of bool, broadcast shape of the inputs. NaN coordinates give False.
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    return ((lon_a >= _BOX_LON[0]) & (lon_a <= _BOX_LON[1])
            & (lat_a >= _BOX_LAT[0]) & (lat_a <= _BOX_LAT[1]))


def _t_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The published latitude series (metres) in the shifted coordinates x = lon-105, y = lat-35."""
    base = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    waves = (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)
             + 20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)
             + 160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0))
    return base + waves * (2.0 / 3.0)


def _t_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The published longitude series (metres) in the shifted coordinates."""
    base = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    waves = (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)
             + 20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)
             + 150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0))
    return base + waves * (2.0 / 3.0)


def _gcj_offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS-84 (degrees) at WGS-84 points, ignoring the China box."""
    x, y = lon - 105.0, lat - 35.0
    rad_lat = np.radians(lat)
    w2 = 1.0 - _EE * np.sin(rad_lat) ** 2
    w = np.sqrt(w2)
    # Metres to degrees with the Krasovsky meridian radius a(1-e^2)/W^3 and the parallel
    # radius a cos(lat)/W.
    dlat = _t_lat(x, y) * 180.0 / (np.pi * _A * (1.0 - _EE) / (w2 * w))
    dlon = _t_lon(x, y) * 180.0 / (np.pi * _A / w * np.cos(rad_lat))
    return dlon, dlat


def _invert(forward, lon: np.ndarray, lat: np.ndarray, guess: tuple[np.ndarray, np.ndarray],
            tol_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(p) = (lon, lat)`` for ``p`` by fixed-point iteration from ``guess``.

    The transforms are the identity plus a slowly varying offset, so ``p -= forward(p) - target``
    contracts by a factor of about 1e-3 per step.
    """
    g_lon, g_lat = guess
    for _ in range(_MAX_ITER):
        f_lon, f_lat = forward(g_lon, g_lat)
        e_lon, e_lat = f_lon - lon, f_lat - lat
        g_lon = g_lon - e_lon
        g_lat = g_lat - e_lat
        # NaN errors compare False and so count as converged (NaN in, NaN out).
        if not (np.any(np.abs(e_lon) >= tol_deg) or np.any(np.abs(e_lat) >= tol_deg)):
            break
    return g_lon, g_lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 to GCJ-02 (AMap/Gaode, Tencent).

    Parameters
    ----------
    lon, lat:
        WGS-84 degrees, scalars or arrays (broadcast together).

    Returns
    -------
    (lon, lat):
        GCJ-02 degrees; unchanged outside the China box (see the module docstring).
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    dlon, dlat = _gcj_offset(lon_a, lat_a)
    inside = in_china_box(lon_a, lat_a)
    return _out(np.where(inside, lon_a + dlon, lon_a), np.where(inside, lat_a + dlat, lat_a))


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike, tol_deg: float = _TOL_DEG
                   ) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to WGS-84, exact to ``tol_deg`` (iterates the forward transform).

    Parameters
    ----------
    lon, lat:
        GCJ-02 degrees, scalars or arrays.
    tol_deg:
        Stop when the forward transform of the answer is within this many degrees of the input
        (1e-9 degrees is about 0.1 mm).

    Returns
    -------
    (lon, lat):
        WGS-84 degrees; unchanged outside the China box (tested on the GCJ-02 input).
    """
    lon_a, lat_a = _as_arrays(lon, lat)

    def shifted(p_lon: np.ndarray, p_lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The unmasked transform: points near the box edge must not flip between branches
        # while iterating.
        d_lon, d_lat = _gcj_offset(p_lon, p_lat)
        return p_lon + d_lon, p_lat + d_lat

    dlon, dlat = _gcj_offset(lon_a, lat_a)
    w_lon, w_lat = _invert(shifted, lon_a, lat_a, (lon_a - dlon, lat_a - dlat), tol_deg)
    inside = in_china_box(lon_a, lat_a)
    return _out(np.where(inside, w_lon, lon_a), np.where(inside, w_lat, lat_a))


def _bd_forward(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return r * np.cos(theta) + _BD_DLON, r * np.sin(theta) + _BD_DLAT


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat:
        GCJ-02 degrees, scalars or arrays.

    Returns
    -------
    (lon, lat):
        BD-09 degrees (the transform applies everywhere, not only in China).
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    return _out(*_bd_forward(lon_a, lat_a))


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike, tol_deg: float = _TOL_DEG
                  ) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to GCJ-02, exact to ``tol_deg``.

    The usual closed-form inverse is only good to about a metre (it evaluates the distortion at
    the wrong point); it serves as the first guess of the fixed-point iteration.

    Parameters
    ----------
    lon, lat:
        BD-09 degrees, scalars or arrays.
    tol_deg:
        Convergence tolerance in degrees.

    Returns
    -------
    (lon, lat):
        GCJ-02 degrees.
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    x, y = lon_a - _BD_DLON, lat_a - _BD_DLAT
    r = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    guess = (r * np.cos(theta), r * np.sin(theta))
    return _out(*_invert(_bd_forward, lon_a, lat_a, guess, tol_deg))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 to BD-09 (through GCJ-02; see ``wgs84_to_gcj02`` for the China box)."""
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(g_lon, g_lat)


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike, tol_deg: float = _TOL_DEG
                  ) -> tuple[np.ndarray, np.ndarray]:
    """BD-09 to WGS-84 (through GCJ-02), each inverse exact to ``tol_deg``."""
    g_lon, g_lat = bd09_to_gcj02(lon, lat, tol_deg=tol_deg)
    return gcj02_to_wgs84(g_lon, g_lat, tol_deg=tol_deg)


def _system(name: str, role: str) -> str:
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in SYSTEMS:
        raise InvalidInputError(
            f"convert: {role}={name!r} is not a known coordinate system; expected one of "
            f"{', '.join(SYSTEMS)} (AMap/Gaode and Tencent use gcj02, Baidu bd09, GPS wgs84).")
    return key


_STEPS = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def convert(lon: ArrayLike, lat: ArrayLike, src: str, dst: str
            ) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinates between ``"wgs84"``, ``"gcj02"`` and ``"bd09"``.

    Parameters
    ----------
    lon, lat:
        Degrees in ``src``, scalars or arrays.
    src, dst:
        System names, case-insensitive; ``"WGS-84"``, ``"gcj_02"`` and the like are accepted.

    Returns
    -------
    (lon, lat):
        Degrees in ``dst`` (a copy when ``src == dst``).

    Raises
    ------
    InvalidInputError
        If ``src`` or ``dst`` is not a known system.
    """
    s, d = _system(src, "src"), _system(dst, "dst")
    if s == d:
        return _out(*_as_arrays(lon, lat))
    return _STEPS[(s, d)](lon, lat)
