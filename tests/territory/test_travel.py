"""Great-circle distances and the offline travel model."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from territory.errors import InvalidInputError
from territory.travel import (
    EARTH_RADIUS_KM,
    RURAL,
    URBAN,
    TravelMatrix,
    TravelModel,
    haversine_km,
    local_projection_km,
    pairwise_km,
)

lons = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)
lats = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
points = st.tuples(lons, lats)

# City centres (WGS-84) and geodesic distances on the WGS-84 ellipsoid computed for them with
# pyproj.Geod(ellps="WGS84").inv (Karney's algorithm), rounded to 0.1 km.
CITIES = {
    "beijing": (116.4074, 39.9042),
    "shanghai": (121.4737, 31.2304),
    "guangzhou": (113.2644, 23.1291),
    "chengdu": (104.0665, 30.5728),
}
GEODESIC_KM = [
    ("beijing", "shanghai", 1065.8),
    ("beijing", "guangzhou", 1883.5),
    ("shanghai", "chengdu", 1664.0),
    ("beijing", "chengdu", 1524.8),
]

# Same examples every run (the tests must be deterministic); no example database on disk.
DETERMINISTIC = settings(derandomize=True, database=None, deadline=None)


# haversine -----------------------------------------------------------------------------------
@settings(DETERMINISTIC, max_examples=300)
@given(points, points)
def test_haversine_symmetric_and_non_negative(a: tuple[float, float],
                                              b: tuple[float, float]) -> None:
    ab = float(haversine_km(*a, *b))
    ba = float(haversine_km(*b, *a))
    assert ab >= 0.0
    assert ab == pytest.approx(ba, rel=1e-12, abs=1e-9)
    assert ab <= np.pi * EARTH_RADIUS_KM + 1e-6


@settings(DETERMINISTIC, max_examples=200)
@given(points)
def test_haversine_zero_on_the_diagonal(a: tuple[float, float]) -> None:
    assert float(haversine_km(*a, *a)) == 0.0


@settings(DETERMINISTIC, max_examples=300)
@given(points, points, points)
def test_haversine_triangle_inequality(a: tuple[float, float], b: tuple[float, float],
                                       c: tuple[float, float]) -> None:
    ac = float(haversine_km(*a, *c))
    via_b = float(haversine_km(*a, *b)) + float(haversine_km(*b, *c))
    # arcsin(sqrt(.)) loses about sqrt(machine eps) near antipodes: allow 1e-4 km.
    assert ac <= via_b + 1e-4


@pytest.mark.parametrize(("a", "b", "km"), GEODESIC_KM)
def test_known_city_pairs_within_one_percent(a: str, b: str, km: float) -> None:
    got = float(haversine_km(*CITIES[a], *CITIES[b]))
    assert got == pytest.approx(km, rel=0.01)
    # The sphere and the ellipsoid agree within 0.5 % at these latitudes.
    assert got == pytest.approx(km, rel=0.005)


def test_haversine_against_pyproj_geodesic() -> None:
    pyproj = pytest.importorskip("pyproj")
    geod = pyproj.Geod(ellps="WGS84")
    rng = np.random.default_rng(3)
    lon1, lon2 = rng.uniform(74, 134, 500), rng.uniform(74, 134, 500)
    lat1, lat2 = rng.uniform(18, 53, 500), rng.uniform(18, 53, 500)
    ref_km = geod.inv(lon1, lat1, lon2, lat2)[2] / 1000.0
    got = haversine_km(lon1, lat1, lon2, lat2)
    far = ref_km > 10.0
    assert np.all(np.abs(got[far] / ref_km[far] - 1.0) < 0.005)


def test_haversine_broadcasts_and_pairwise_matches() -> None:
    pts = np.array(list(CITIES.values()))
    d = pairwise_km(pts)
    assert d.shape == (4, 4)
    assert_allclose(d[0, 1], haversine_km(*pts[0], *pts[1]))
    d2 = pairwise_km(pts[:2], pts)
    assert d2.shape == (2, 4)
    assert_allclose(d2, d[:2])


def test_one_degree_of_latitude() -> None:
    assert float(haversine_km(110.0, 30.0, 110.0, 31.0)) == pytest.approx(
        np.pi / 180.0 * EARTH_RADIUS_KM, rel=1e-12)


def test_local_projection_preserves_short_distances() -> None:
    rng = np.random.default_rng(5)
    pts = np.column_stack([rng.uniform(113.0, 114.0, 50), rng.uniform(22.5, 23.5, 50)])
    xy = local_projection_km(pts)
    planar = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert_allclose(planar, pairwise_km(pts), rtol=0.01, atol=0.01)


# TravelModel: distances and times (speeds given explicitly: no geography needed) -------------
def test_road_km_is_circuity_times_great_circle() -> None:
    m = TravelModel(circuity=1.37)
    bj, sh = CITIES["beijing"], CITIES["shanghai"]
    assert float(m.road_km(*bj, *sh)) == pytest.approx(1.37 * float(haversine_km(*bj, *sh)),
                                                       rel=1e-12)


@settings(DETERMINISTIC, max_examples=200)
@given(st.floats(0.0, 3000.0), st.floats(0.0, 3000.0),
       st.sampled_from([25.0, 40.0, 60.0]), st.sampled_from([25.0, 40.0, 60.0]))
def test_minutes_increase_with_distance(d1: float, d2: float, va: float, vb: float) -> None:
    m = TravelModel()
    t1, t2 = float(m.minutes_for(d1, va, vb)), float(m.minutes_for(d2, va, vb))
    if d1 <= d2:
        assert t1 <= t2
    if d2 - d1 > 1e-9:
        assert t1 < t2
    assert t1 >= 0.0 and (t1 > 0.0 or d1 < 1e-300)


def test_minutes_by_hand() -> None:
    m = TravelModel()  # 30 km local, then 80 km/h
    # 20 km between two urban ends: 20 / 25 h.
    assert float(m.minutes_for(20.0, 25.0, 25.0)) == pytest.approx(48.0)
    # Urban to rural: harmonic mean 2 / (1/25 + 1/60) = 35.29 km/h.
    assert float(m.minutes_for(10.0, 25.0, 60.0)) == pytest.approx(60.0 * 10.0 / (600.0 / 17.0))
    # 130 km rural: 30 km at 60 km/h, 100 km at 80 km/h = 30 + 75 minutes.
    assert float(m.minutes_for(130.0, 60.0, 60.0)) == pytest.approx(105.0)


def test_highway_speed_beyond_highway_after_km() -> None:
    m = TravelModel(highway_after_km=30.0, highway_kmh=80.0, long_haul=())
    d = np.array([40.0, 100.0, 500.0, 1000.0])
    slope = np.diff(m.minutes_for(d, 25.0, 40.0)) / np.diff(d)
    assert_allclose(slope, 60.0 / 80.0)
    below = np.array([5.0, 10.0, 29.0])
    assert_allclose(np.diff(m.minutes_for(below, 40.0, 40.0)) / np.diff(below), 60.0 / 40.0)


def test_dense_matrix_symmetric_with_zero_diagonal() -> None:
    rng = np.random.default_rng(11)
    pts = np.column_stack([rng.uniform(100, 120, 40), rng.uniform(22, 40, 40)])
    kmh = rng.choice([25.0, 40.0, 60.0], size=40)
    tm = TravelModel().matrix(pts, kmh=kmh)
    assert isinstance(tm, TravelMatrix)
    for a in tm:
        assert a.shape == (40, 40)
        assert_allclose(a, a.T, rtol=0, atol=0)
        assert np.all(np.diag(a) == 0.0)
        assert np.all(a[~np.eye(40, dtype=bool)] > 0.0)
    assert_allclose(tm.km, 1.3 * pairwise_km(pts))


def test_between_matches_matrix_and_accepts_scalar_speeds() -> None:
    pts = np.array(list(CITIES.values()))
    m = TravelModel()
    full = m.matrix(pts, kmh=40.0)
    part = m.between(pts[:2], pts[1:], kmh_a=40.0, kmh_b=np.full(3, 40.0))
    assert part.km.shape == (2, 3)
    assert_allclose(part.km, full.km[:2, 1:])
    assert_allclose(part.minutes, full.minutes[:2, 1:])


def test_speed_arrays_of_the_wrong_length_are_rejected() -> None:
    pts = np.array(list(CITIES.values()))
    with pytest.raises(ValueError, match=r"expected a scalar or one speed per point \(4,\)"):
        TravelModel().matrix(pts, kmh=np.array([40.0, 40.0]))
    with pytest.raises(ValueError, match="speeds <= 0"):
        TravelModel().matrix(pts, kmh=0.0)


# TravelModel: the kNN graph ------------------------------------------------------------------
def _grid(nx: int, ny: int, step: float = 0.01) -> np.ndarray:
    lon, lat = np.meshgrid(110.0 + step * np.arange(nx), 30.0 + step * np.arange(ny))
    return np.column_stack([lon.ravel(), lat.ravel()])


def test_knn_on_a_grid() -> None:
    # At 30 N a 0.01 degree step east is 0.96 km, north 1.11 km: the 2 nearest of an interior
    # point are its east and west neighbours, the next 2 the north and south ones.
    pts = _grid(5, 4)
    km, minutes = TravelModel().knn(pts, k=4, kmh=40.0)
    assert isinstance(km, sp.csr_matrix) and isinstance(minutes, sp.csr_matrix)
    assert km.shape == minutes.shape == (20, 20)
    assert km.nnz == minutes.nnz == 20 * 4
    assert np.all(km.getnnz(axis=1) == 4)
    i = 1 * 5 + 2  # row 1, column 2: interior
    assert set(km[i].indices) == {i - 1, i + 1, i - 5, i + 5}
    east = 1.3 * float(haversine_km(*pts[i], *pts[i + 1]))
    assert km[i, i + 1] == pytest.approx(east, rel=1e-9)
    assert minutes[i, i + 1] == pytest.approx(60.0 * east / 40.0, rel=1e-9)
    k2, _ = TravelModel().knn(pts, k=2, kmh=40.0)
    assert set(k2[i].indices) == {i - 1, i + 1}


def test_knn_matches_brute_force_and_the_dense_matrix() -> None:
    rng = np.random.default_rng(2)
    pts = np.column_stack([rng.uniform(100, 120, 300), rng.uniform(20, 45, 300)])
    kmh = rng.choice([25.0, 40.0, 60.0], size=300)
    m = TravelModel()
    km, minutes = m.knn(pts, k=7, kmh=kmh)
    dense = m.matrix(pts, kmh=kmh)
    order = np.argsort(np.where(np.eye(300, dtype=bool), np.inf, dense.km), axis=1)[:, :7]
    for i in range(300):
        row = km[i]
        assert set(row.indices) == set(order[i])
        assert_allclose(row.data, dense.km[i, row.indices], rtol=1e-9)
        assert_allclose(minutes[i].data, dense.minutes[i, minutes[i].indices], rtol=1e-9)


def test_knn_duplicates_never_list_a_point_as_its_own_neighbour() -> None:
    # Six copies of one point (more than k + 1) plus a few others.
    pts = np.array([[110.0, 30.0]] * 6 + [[110.01, 30.0], [110.0, 30.02], [110.05, 30.05]])
    km, _ = TravelModel().knn(pts, k=3, kmh=40.0)
    coo = km.tocoo()
    assert not np.any(coo.row == coo.col)
    assert km.nnz == len(pts) * 3  # duplicates' 0 km kept as explicit entries
    for i in range(6):
        assert set(km[i].indices) <= set(range(6)) - {i}
        assert np.all(km[i].data == 0.0)


def test_knn_small_inputs() -> None:
    m = TravelModel()
    km, minutes = m.knn(np.array([[110.0, 30.0], [110.1, 30.0]]), k=10, kmh=40.0)
    assert minutes.nnz == 2
    assert km.nnz == 2 and km[0, 1] > 0 and km[1, 0] == km[0, 1]
    km, _ = m.knn(np.array([[110.0, 30.0]]), k=5, kmh=40.0)
    assert km.shape == (1, 1) and km.nnz == 0
    km, _ = m.knn(np.zeros((0, 2)), k=5)
    assert km.shape == (0, 0)
    with pytest.raises(ValueError, match="k=-1"):
        m.knn(np.array([[110.0, 30.0], [110.1, 30.0]]), k=-1, kmh=40.0)


# TravelModel: validation ---------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"circuity": 0.9}, "circuity=0.9; expected >= 1"),
    ({"circuity": 0.0}, "circuity=0.0"),
    ({"urban_kmh": 0.0}, "urban_kmh=0.0"),
    ({"suburban_kmh": -5.0}, "suburban_kmh=-5.0"),
    ({"rural_kmh": float("nan")}, "rural_kmh=nan"),
    ({"highway_kmh": float("inf")}, "highway_kmh=inf"),
    ({"highway_after_km": -1.0}, "highway_after_km=-1.0"),
    ({"suburban_density": 2000.0}, "suburban_density <= urban_density"),
])
def test_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TravelModel(**kwargs)


def test_to_dict_round_trips() -> None:
    m = TravelModel(circuity=1.25, rural_kmh=55.0)
    assert TravelModel(**m.to_dict()) == m


# Area types: need the bundled geography (territory.china) ----------------------------------
@pytest.fixture(scope="module")
def china_model() -> TravelModel:
    pytest.importorskip("territory.china", reason="territory.china (bundled places) not built")
    return TravelModel()


def test_area_types_beijing_urban_taklamakan_rural(china_model: TravelModel) -> None:
    lon = np.array([116.3975, 83.0])  # Tiananmen; the middle of the Taklamakan desert
    lat = np.array([39.9087, 39.0])
    assert list(china_model.area_type(lon, lat)) == [URBAN, RURAL]
    assert_allclose(china_model.point_kmh(lon, lat), [25.0, 60.0])


def test_points_outside_the_grid_are_rural(china_model: TravelModel) -> None:
    assert china_model.area_type(np.array([0.0]), np.array([0.0]))[0] == RURAL


def test_matrix_uses_area_speeds(china_model: TravelModel) -> None:
    pts = np.array([[116.3975, 39.9087], [116.40, 39.91], [83.0, 39.0], [83.01, 39.0]])
    tm = china_model.matrix(pts)
    # Short hops: urban at 25 km/h, desert at 60 km/h.
    assert tm.minutes[0, 1] == pytest.approx(60.0 * tm.km[0, 1] / 25.0, rel=1e-9)
    assert tm.minutes[2, 3] == pytest.approx(60.0 * tm.km[2, 3] / 60.0, rel=1e-9)
    assert_allclose(tm.minutes, tm.minutes.T)


def test_long_legs_take_the_fastest_mode() -> None:
    m = TravelModel()
    drive = TravelModel(long_haul=())
    d = np.array([50.0, 200.0, 400.0, 1500.0, 3000.0])
    t, t_drive = m.minutes_for(d, 60.0, 60.0), drive.minutes_for(d, 60.0, 60.0)
    # Short legs drive; 400 km goes by rail (2 h + 400/200 h); 1,500 km flies (4 h + 1500/700 h).
    assert_allclose(t[:2], t_drive[:2])
    assert float(t[2]) == pytest.approx(120.0 + 60.0 * 400.0 / 200.0)
    assert float(t[3]) == pytest.approx(240.0 + 60.0 * 1500.0 / 700.0)
    assert np.all(np.diff(t) > 0) and np.all(t <= t_drive)
    assert m.to_dict()["long_haul"] == [[120.0, 200.0], [240.0, 700.0]]
    with pytest.raises(InvalidInputError, match="long_haul"):
        TravelModel(long_haul=((60.0, 0.0),))
