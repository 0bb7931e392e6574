"""WGS-84 / GCJ-02 / BD-09 conversions: published pairs, round trips, the China box."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from territory.coords import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china_box,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from territory.errors import InvalidInputError
from territory.travel import haversine_km

# Published reference pairs (the test vectors that circulate with the open GCJ-02
# implementations), as (wgs lon, wgs lat, gcj lon, gcj lat).
GCJ_PAIRS = [
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
]
# A reference pair quoted with the open BD-09 implementations (near Tiananmen).
BD_PAIR = (116.404, 39.915, 116.41036949371029, 39.92133699351021)

china_lon = st.floats(min_value=73.5, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=18.0, max_value=53.5, allow_nan=False)

# Same examples every run (the tests must be deterministic); no example database on disk.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return 1000.0 * haversine_km(lon1, lat1, lon2, lat2)


@pytest.mark.parametrize(("lon", "lat", "glon", "glat"), GCJ_PAIRS)
def test_known_gcj02_pairs(lon: float, lat: float, glon: float, glat: float) -> None:
    got = wgs84_to_gcj02(lon, lat)
    assert_allclose(got, (glon, glat), atol=1e-9)
    assert_allclose(gcj02_to_wgs84(glon, glat), (lon, lat), atol=1e-8)


def test_brief_beijing_pair_and_direction() -> None:
    glon, glat = wgs84_to_gcj02(116.397, 39.908)
    assert abs(glon - 116.4032) < 1e-4 and abs(glat - 39.9094) < 1e-4
    # In Beijing GCJ-02 lies east and a little north of the truth, a few hundred metres off.
    assert glon > 116.397 and glat > 39.908
    assert 100.0 < metres(116.397, 39.908, glon, glat) < 700.0


def test_known_bd09_pair() -> None:
    lon, lat, blon, blat = BD_PAIR
    assert_allclose(gcj02_to_bd09(lon, lat), (blon, blat), atol=1e-9)
    assert_allclose(bd09_to_gcj02(blon, blat), (lon, lat), atol=1e-9)


def test_offsets_have_the_expected_size_across_china() -> None:
    rng = np.random.default_rng(0)
    lon = rng.uniform(75.0, 134.0, 2000)
    lat = rng.uniform(19.0, 53.0, 2000)
    glon, glat = wgs84_to_gcj02(lon, lat)
    shift_m = metres(lon, lat, glon, glat)
    assert shift_m.min() > 0.0 and shift_m.max() < 1200.0
    assert 100.0 < np.median(shift_m) < 700.0
    blon, blat = gcj02_to_bd09(glon, glat)
    bd_shift_m = metres(glon, glat, blon, blat)
    # BD-09 adds about (0.0065, 0.006) degrees: 0.7-1 km at Chinese latitudes.
    assert 600.0 < bd_shift_m.min() and bd_shift_m.max() < 1100.0


@settings(DETERMINISTIC, max_examples=300)
@given(china_lon, china_lat)
def test_round_trip_wgs_gcj_wgs_within_a_millimetre(lon: float, lat: float) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres(lon, lat, *back) < 1e-3


@settings(DETERMINISTIC, max_examples=300)
@given(china_lon, china_lat)
def test_round_trip_wgs_bd_wgs_within_a_millimetre(lon: float, lat: float) -> None:
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres(lon, lat, *back) < 1e-3


@settings(DETERMINISTIC, max_examples=200)
@given(china_lon, china_lat)
def test_round_trip_from_gcj_side(lon: float, lat: float) -> None:
    assert metres(lon, lat, *wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))) < 1e-3
    assert metres(lon, lat, *gcj02_to_bd09(*bd09_to_gcj02(lon, lat))) < 1e-3


def test_inverse_beats_the_one_step_inverse() -> None:
    # The crude inverse (subtract the offset at the GCJ point) is metres off; ours is not.
    rng = np.random.default_rng(1)
    lon, lat = rng.uniform(100.0, 122.0, 500), rng.uniform(22.0, 42.0, 500)
    glon, glat = wgs84_to_gcj02(lon, lat)
    crude = (2 * glon - wgs84_to_gcj02(glon, glat)[0], 2 * glat - wgs84_to_gcj02(glon, glat)[1])
    assert metres(lon, lat, *crude).max() > 0.05
    assert metres(lon, lat, *gcj02_to_wgs84(glon, glat)).max() < 1e-4


@pytest.mark.parametrize(("lon", "lat"), [
    (-0.1276, 51.5072),  # London
    (-74.006, 40.7128),  # New York
    (151.2093, -33.8688),  # Sydney
    (139.6917, 35.6895),  # Tokyo: east of the box
    (37.6173, 55.7558),  # Moscow
])
def test_identity_outside_china(lon: float, lat: float) -> None:
    assert not in_china_box(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)
    # BD-09 still applies its own shift everywhere.
    assert_allclose(bd09_to_wgs84(*wgs84_to_bd09(lon, lat)), (lon, lat), atol=1e-9)


def test_vectorised_shapes_and_scalars() -> None:
    lon = np.array([[116.4, 121.47], [0.0, 104.07]])
    lat = np.array([[39.9, 31.23], [0.0, 30.57]])
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert glon.shape == glat.shape == (2, 2)
    assert glon[1, 0] == 0.0 and glat[1, 0] == 0.0  # off Africa: unchanged
    for i, j in np.ndindex(2, 2):
        assert_allclose(wgs84_to_gcj02(float(lon[i, j]), float(lat[i, j])),
                        (glon[i, j], glat[i, j]), rtol=0, atol=1e-12)
    scalar = wgs84_to_gcj02(116.4, 39.9)
    assert all(isinstance(v, float) for v in scalar)
    # Broadcasting one latitude against many longitudes.
    assert wgs84_to_gcj02(np.array([110.0, 111.0, 112.0]), 30.0)[1].shape == (3,)


def test_nan_passes_through() -> None:
    lon, lat = gcj02_to_wgs84(np.array([np.nan, 116.4]), np.array([39.9, 39.9]))
    assert np.isnan(lon[0]) and np.isfinite(lon[1]) and np.isfinite(lat[1])


def test_inputs_are_not_modified() -> None:
    lon, lat = np.array([116.4, 121.5]), np.array([39.9, 31.2])
    before = (lon.copy(), lat.copy())
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84, wgs84_to_bd09, bd09_to_wgs84):
        fn(lon, lat)
    assert_allclose(lon, before[0], rtol=0, atol=0)
    assert_allclose(lat, before[1], rtol=0, atol=0)


@pytest.mark.parametrize(("src", "dst", "fn"), [
    ("wgs84", "gcj02", wgs84_to_gcj02),
    ("gcj02", "wgs84", gcj02_to_wgs84),
    ("gcj02", "bd09", gcj02_to_bd09),
    ("bd09", "gcj02", bd09_to_gcj02),
    ("WGS-84", "BD-09", wgs84_to_bd09),
    ("bd_09", "wgs84", bd09_to_wgs84),
])
def test_convert_dispatches(src: str, dst: str, fn) -> None:
    lon, lat = np.array([116.4, 113.26]), np.array([39.9, 23.13])
    assert_allclose(convert(lon, lat, src, dst), fn(lon, lat), rtol=0, atol=0)


def test_convert_same_system_is_a_copy() -> None:
    lon, lat = np.array([116.4]), np.array([39.9])
    out_lon, _ = convert(lon, lat, "gcj02", "GCJ02")
    out_lon[0] = 0.0
    assert lon[0] == 116.4


def test_convert_rejects_unknown_systems() -> None:
    with pytest.raises(InvalidInputError, match=r"'cgcs2000'.*wgs84, gcj02, bd09"):
        convert(116.4, 39.9, "cgcs2000", "wgs84")
    with pytest.raises(ValueError, match="dst='mars'"):
        convert(116.4, 39.9, "wgs84", "mars")
