"""Tests of the bundled China geography (``data/provinces``) and ``territory.china``.

Everything except the build-determinism test uses only the bundled files.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from territory import china
from territory.errors import InvalidInputError

REPO = Path(__file__).resolve().parents[2]

MAINLAND = ("11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36",
            "37", "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62",
            "63", "64", "65")
ALL_CODES = (*MAINLAND, "81", "82")
BUILT_FILES = ("provinces.geojson", "cities.csv", "province_stats.csv", "regions.csv",
               "adjacency.csv")


# ---------------------------------------------------------------------------------------------
# Files and tables


def test_data_dir_finds_the_checkout_folder() -> None:
    folder = china.data_dir()
    assert folder == REPO / "data" / "provinces"
    for name in (*BUILT_FILES, "README.md", "ATTRIBUTION.md"):
        assert (folder / name).is_file(), name


def test_data_dir_prefers_the_packaged_copy(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    packaged = tmp_path / "territory" / "_data" / "provinces"
    packaged.mkdir(parents=True)
    (packaged / "provinces.geojson").write_text("{}")
    monkeypatch.setattr(china.importlib.resources, "files",
                        lambda _pkg: tmp_path / "territory")
    assert china.data_dir() == packaged


def test_data_dir_missing_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(china.importlib.resources, "files", lambda _pkg: tmp_path / "pkg")
    monkeypatch.setattr(china, "__file__", str(tmp_path / "src" / "territory" / "china.py"))
    with pytest.raises(FileNotFoundError, match=r"build_provinces\.py"):
        china.data_dir()


def test_provinces_are_33_valid_unique() -> None:
    prov = china.provinces()
    assert len(prov) == 33
    assert tuple(prov["code"]) == ALL_CODES
    assert prov["code"].is_unique and prov["adcode"].is_unique
    assert (prov["adcode"] == prov["code"] + "0000").all()
    assert prov.crs.to_epsg() == 4326
    assert prov.geometry.is_valid.all()
    assert not prov.geometry.is_empty.any()
    assert shapely.coverage_is_valid(prov.geometry.to_numpy())
    assert "71" not in set(prov["code"])  # Taiwan is not in the data
    # Natural Earth's de facto outline: about 9.38 million km^2 in total.
    assert prov["area_km2"].sum() == pytest.approx(9.38e6, rel=0.01)
    assert prov.set_index("code").loc["11", "area_km2"] == pytest.approx(16_410, rel=0.03)
    assert china.province_codes() == ALL_CODES


def test_regions_cover_all_provinces_once() -> None:
    reg = china.regions()
    assert list(reg["region_zh"]) == ["华北", "东北", "华东", "华中", "华南", "西南", "西北"]
    codes = [c for cell in reg["province_codes"] for c in cell.split(";")]
    assert sorted(codes) == sorted(ALL_CODES)
    assert reg["province_count"].sum() == 33
    mapping = china.region_of_province()
    assert mapping["81"] == mapping["82"] == mapping["44"] == "华南"
    assert mapping["11"] == "华北" and mapping["65"] == "西北"
    prov = china.provinces().set_index("code")
    for row in reg.itertuples():
        assert (prov.loc[row.province_codes.split(";"), "region_zh"] == row.region_zh).all()
    gdf = china.regions_gdf()
    assert len(gdf) == 7 and gdf.geometry.is_valid.all()
    assert gdf["area_km2"].sum() == pytest.approx(prov["area_km2"].sum())


def test_cities_columns_and_capitals() -> None:
    places = china.cities()
    assert list(places.columns[:9]) == ["geonameid", "name", "name_ascii", "lon", "lat",
                                        "population", "province_code", "region_zh",
                                        "is_capital"]
    assert len(places) == 3151 and places["geonameid"].is_unique
    assert places["province_code"].map(type).eq(str).all()
    assert set(places["province_code"]) == set(ALL_CODES)
    assert places["is_capital"].dtype == bool and places["is_capital"].sum() == 33
    mapping = china.region_of_province()
    assert (places["province_code"].map(mapping) == places["region_zh"]).all()
    capitals = places[places["is_capital"]].set_index("province_code")
    assert capitals.loc["11", "name"] == "Beijing" and capitals.loc["65", "name"] == "Ürümqi"
    # GeoNames files four Macao parishes under Guangdong; the build moves them to Macao.
    assert (places.loc[places["name_ascii"] == "Santo Antonio", "province_code"] == "82").all()


def test_province_stats_model_columns() -> None:
    stats = china.province_stats()
    assert tuple(stats["code"]) == ALL_CODES
    model = stats[["pop_2023_10k_model", "gdp_2023_100m_cny_model", "gdp_per_capita_cny_model"]]
    assert model.notna().all().all() and (model > 0).all().all()
    per_capita = stats["gdp_2023_100m_cny_model"] / stats["pop_2023_10k_model"] * 1e4
    np.testing.assert_allclose(stats["gdp_per_capita_cny_model"], per_capita, atol=0.5)
    # Source figures are kept verbatim; every filled gap is flagged as unverified.
    by_code = stats.set_index("code")
    assert by_code.loc["11", "pop_2023_10k"] == 2186
    assert np.isnan(by_code.loc["44", "pop_2023_10k"])
    assert by_code.loc["44", "pop_2023_10k_model"] == 12706
    assert by_code.loc["14", "gdp_2023_100m_cny_model"] == pytest.approx(25698.18)
    gap = stats["pop_2023_10k"].isna() | stats["gdp_2023_100m_cny"].isna()
    assert gap.sum() == 29  # 27 mainland rows with a blank figure, plus HK and Macao
    assert stats.loc[gap, "model_note"].str.contains(
        "single-source, not verified offline; replace with NBS data portal figures").all()
    assert not stats.loc[~gap, "model_note"].str.contains("not verified").any()


def test_loaders_hand_out_copies() -> None:
    prov = china.provinces()
    prov.loc[0, "code"] = "99"
    places = china.cities()
    places["province_code"] = "00"
    graph = china.adjacency()
    graph.remove_node("11")
    mapping = china.region_of_province()
    mapping["11"] = "nowhere"
    assert china.provinces().loc[0, "code"] == "11"
    assert (china.cities()["province_code"] != "00").all()
    assert "11" in china.adjacency()
    assert china.region_of_province()["11"] == "华北"


# ---------------------------------------------------------------------------------------------
# Adjacency


@pytest.mark.parametrize(("a", "b", "adjacent"), [
    ("11", "13", True), ("11", "12", True), ("12", "13", True), ("11", "31", False),
    ("44", "81", True), ("44", "82", True), ("81", "82", False), ("15", "23", True),
    ("61", "15", True), ("50", "51", True), ("44", "46", False), ("65", "54", True),
    ("31", "32", True), ("31", "37", False),
])
def test_land_adjacency_known_pairs(a: str, b: str, adjacent: bool) -> None:
    assert china.adjacency().has_edge(a, b) is adjacent


def test_adjacency_attributes() -> None:
    graph = china.adjacency()
    assert set(graph.nodes) == set(ALL_CODES)
    assert graph.nodes["44"]["name_zh"] == "广东省"
    assert all(d["kind"] == "land" for *_, d in graph.edges(data=True))
    assert graph.edges["11", "13"]["border_km"] > graph.edges["11", "12"]["border_km"] > 0
    # Macao's real land border is not drawn by the simplified polygons: no length measured.
    assert np.isnan(graph.edges["44", "82"]["border_km"])
    measured = [d["border_km"] for u, v, d in graph.edges(data=True) if {u, v} != {"44", "82"}]
    assert min(measured) > 0


def test_hainan_is_an_island_with_a_sea_link() -> None:
    assert china.adjacency().degree("46") == 0
    sea = china.adjacency(include_sea=True)
    assert sea.has_edge("46", "44") and sea.edges["46", "44"]["kind"] == "sea"
    assert sea.edges["46", "44"]["gap_km"] == pytest.approx(20, abs=5)


def test_land_graph_connected_except_hainan() -> None:
    components = sorted(nx.connected_components(china.adjacency()), key=len)
    assert [sorted(c) for c in components[:-1]] == [["46"]]
    assert components[-1] == set(ALL_CODES) - {"46"}
    assert nx.is_connected(china.adjacency(include_sea=True))


# ---------------------------------------------------------------------------------------------
# Point queries

INSIDE = {
    "Beijing": (116.397, 39.908), "Urumqi": (87.617, 43.793), "Haikou": (110.342, 20.046),
    "Hong Kong": (114.175, 22.278), "Lhasa": (91.172, 29.650), "Harbin": (126.650, 45.750),
}
OUTSIDE = {
    "Tokyo": (139.692, 35.690), "Seoul": (126.978, 37.566), "Hanoi": (105.834, 21.028),
    "Ulaanbaatar": (106.917, 47.918), "null island": (0.0, 0.0), "Taipei": (121.565, 25.033),
}


@pytest.mark.parametrize("name", sorted(INSIDE))
def test_contains_inside(name: str) -> None:
    lon, lat = INSIDE[name]
    assert china.contains(lon, lat)
    assert china.contains([lon], [lat], buffer_km=0.0)[0]


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_contains_outside(name: str) -> None:
    lon, lat = OUTSIDE[name]
    assert not china.contains(lon, lat)
    assert china.province_of(lon, lat) == ""


def test_contains_buffer_grows_the_area() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(73, 136, 20_000)
    lat = rng.uniform(17, 54, 20_000)
    exact = china.contains(lon, lat, buffer_km=0)
    buffered = china.contains(lon, lat, buffer_km=25)
    assert (buffered >= exact).all() and buffered.sum() > exact.sum()
    # In the Qiongzhou Strait, about 9 km off Haikou's shore: only a large enough buffer admits
    # it, and the nearest province is Hainan.
    assert not china.contains(110.342, 20.15, buffer_km=0)
    assert not china.contains(110.342, 20.15, buffer_km=5)
    assert china.contains(110.342, 20.15)
    assert china.province_of(110.342, 20.15).item() == "46"
    # Every GeoNames place passes with the default buffer.
    places = china.cities()
    assert china.contains(places["lon"], places["lat"]).all()


def test_point_queries_shapes_and_errors() -> None:
    assert china.contains(116.4, 39.9).shape == ()
    grid = china.contains(np.full((2, 3), 116.4), np.full((2, 3), 39.9))
    assert grid.shape == (2, 3) and grid.all()
    assert china.province_of(np.full((2, 2), 113.3), np.full((2, 2), 23.1)).tolist() == [
        ["44", "44"], ["44", "44"]]
    assert not china.contains([np.nan], [39.9])[0]
    assert china.province_of([np.nan, 116.4], [39.9, np.nan]).tolist() == ["", ""]
    assert china.contains([], []).shape == (0,)
    with pytest.raises(InvalidInputError, match="same shape"):
        china.contains([1.0, 2.0], [1.0])
    with pytest.raises(InvalidInputError, match="buffer_km"):
        china.contains(116.4, 39.9, buffer_km=-1)
    with pytest.raises(InvalidInputError, match="max_km"):
        china.province_of(116.4, 39.9, max_km=float("nan"))


def test_province_of_capitals() -> None:
    places = china.cities()
    capitals = places[places["is_capital"]]
    assert len(capitals) == 33
    mainland = capitals[capitals["province_code"].isin(MAINLAND)]
    assert len(mainland) == 31
    got = china.province_of(capitals["lon"].to_numpy(), capitals["lat"].to_numpy())
    assert got.tolist() == capitals["province_code"].tolist()


def test_province_of_outside_polygons_uses_the_nearest() -> None:
    places = china.cities()
    hong_kong = places[places["province_code"] == "81"]
    lon, lat = hong_kong["lon"].to_numpy(), hong_kong["lat"].to_numpy()
    offshore = ~china.contains(lon, lat, buffer_km=0)
    assert offshore.sum() > 10  # islands the simplified polygon leaves out
    assert (china.province_of(lon[offshore], lat[offshore]) == "81").all()
    assert (china.province_of(lon[offshore], lat[offshore], max_km=0) == "").all()
    # About 40 km off the tip of Shandong: within 50 km, not within 10 km.
    assert china.province_of(123.0, 37.0).item() == "37"
    assert china.province_of(123.0, 37.0, max_km=10).item() == ""


def test_province_of_agrees_with_geonames() -> None:
    places = china.cities()
    got = china.province_of(places["lon"].to_numpy(), places["lat"].to_numpy())
    # GeoNames points on borders and coarse polygons disagree for about 0.7 %.
    assert (got == places["province_code"].to_numpy()).mean() > 0.99


# ---------------------------------------------------------------------------------------------
# Codes and names


@pytest.mark.parametrize(("value", "code"), [
    ("44", "44"), (44, "44"), (np.int64(44), "44"), (44.0, "44"), ("44.0", "44"),
    ("440000", "44"), (440000, "44"), ("440100", "44"), ("440106", "44"), ("4401", "44"),
    ("440106000000", "44"), ("广东", "44"), ("广东省", "44"), ("Guangdong", "44"),
    ("guangdong", "44"), (" GUANGDONG province ", "44"), ("Guǎngdōng", "44"), ("４４", "44"),
    ("CN-GD", "44"), ("CN-44", "44"),
    ("Inner Mongolia", "15"), ("内蒙古", "15"), ("内蒙古自治区", "15"), ("Nei Mongol", "15"),
    ("Hong Kong", "81"), ("hongkong", "81"), ("香港", "81"), ("Hong Kong SAR", "81"),
    ("Macau", "82"), ("Macao", "82"), ("澳门", "82"), ("澳門", "82"),
    ("Xizang", "54"), ("Tibet", "54"), ("西藏", "54"), ("西藏自治区", "54"),
    ("Guangxi Zhuang Autonomous Region", "45"), ("新疆维吾尔自治区", "65"), ("Ningxia Hui", "64"),
    ("Shanxi", "14"), ("Shaanxi", "61"), ("Anhui", "34"), ("Beijing Shi", "11"), ("北京市", "11"),
    ("", ""), ("  ", ""), (None, ""), (np.nan, ""), (pd.NA, ""), (True, ""), ("Guangdon", ""),
    ("71", ""), ("710000", ""), ("99", ""), ("4", ""), ("44010", ""), (44.5, ""), ("Taiwan", ""),
])
def test_normalise_province_codes(value: object, code: str) -> None:
    assert china.normalise_province_codes([value]).tolist() == [code]


def test_normalise_province_codes_is_vectorised() -> None:
    values = np.array(["广东", "44", "Hong Kong", "bogus", "110105"] * 200_000, dtype=object)
    out = china.normalise_province_codes(values)
    assert out.dtype == object and out.shape == values.shape
    assert out[:5].tolist() == ["44", "44", "81", "", "11"]
    assert (out[5:10] == out[:5]).all()
    mixed = pd.Series([44, "44", None, "Macao"])
    assert china.normalise_province_codes(mixed).tolist() == ["44", "44", "", "82"]
    assert china.normalise_province_codes("Guangdong").item() == "44"
    assert china.normalise_province_codes([]).shape == (0,)


def test_names_and_capitals() -> None:
    assert china.province_name("44") == "广东省"
    assert china.province_name(44, lang="en") == "Guangdong"
    assert china.province_name("Tibet", lang="zh_short") == "西藏"
    cap = china.capital_of("广东")
    assert (cap.code, cap.name_en, cap.name_zh) == ("44", "Guangzhou", "广州")
    assert cap.lon == pytest.approx(113.25, abs=0.1) and cap.lat == pytest.approx(23.12, abs=0.1)
    assert china.capital_of("82").name_en == "Macao"
    with pytest.raises(InvalidInputError, match="Unknown province 'Atlantis'"):
        china.capital_of("Atlantis")
    with pytest.raises(InvalidInputError, match="lang"):
        china.province_name("44", lang="fr")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# The build


def test_build_script_is_deterministic_and_matches_the_bundle(shared_dir: Path,
                                                              tmp_path: Path) -> None:
    src = shared_dir / "data" / "china"
    if not (src / "provinces.geojson").is_file():
        pytest.skip(f"{src} has no provinces.geojson")
    script = REPO / "scripts" / "build_provinces.py"
    for run in ("a", "b"):
        subprocess.run([sys.executable, str(script), "--src", str(src), "--out",
                        str(tmp_path / run)], check=True, capture_output=True, timeout=120)
    for name in BUILT_FILES:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), f"{name} differs between runs"
        assert first == (china.data_dir() / name).read_bytes(), (
            f"data/provinces/{name} is stale; rerun scripts/build_provinces.py")
