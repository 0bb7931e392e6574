"""The bundled China geography: provinces, places, statistics, regions and adjacency.

The data live in ``data/provinces/`` of a source checkout and in ``territory/_data/provinces``
of an installed wheel; they are built by ``scripts/build_provinces.py`` (see the folder's
``README.md`` and ``ATTRIBUTION.md``). The 33 polygons are the 31 mainland provincial-level
divisions plus Hong Kong (81) and Macao (82), keyed by 2-digit GB/T 2260 codes. Boundaries are
Natural Earth's *de facto* ones, simplified to about 1 km: fine for analysis, **not** an official
PRC map.

Loaders are cached and hand out copies, so callers may modify what they receive. Point queries
(:func:`contains`, :func:`province_of`) are vectorised and take about a second per 10^6 points.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import numbers
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, NamedTuple

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree

from territory.errors import InvalidInputError
from territory.travel import EARTH_RADIUS_KM

__all__ = [
    "Capital",
    "adjacency",
    "capital_of",
    "cities",
    "contains",
    "data_dir",
    "normalise_province_codes",
    "province_codes",
    "province_name",
    "province_of",
    "province_stats",
    "provinces",
    "region_of_province",
    "regions",
    "regions_gdf",
]

_FILES = ("provinces.geojson", "cities.csv", "province_stats.csv", "regions.csv",
          "adjacency.csv")

#: Boundary vertices are densified to this spacing (degrees, about 1.1 km) for the
#: nearest-boundary queries; distances are then accurate to well under 1 km.
_DENSIFY_DEG = 0.01

# ----------------------------------------------------------------------------------------------
# Locating and loading the files


def data_dir() -> Path:
    """The folder holding the bundled province data.

    Looks first inside the installed package (``territory/_data/provinces``, where the wheel
    ships it), then in the source checkout (``<repo>/data/provinces``).

    Returns
    -------
    pathlib.Path
        A folder containing ``provinces.geojson`` and the CSV files.

    Raises
    ------
    FileNotFoundError
        If neither location holds ``provinces.geojson``.
    """
    candidates: list[Path] = []
    packaged = importlib.resources.files("territory") / "_data" / "provinces"
    # Only a real directory can be read by pyogrio/pandas; a zipped package is not supported.
    if isinstance(packaged, Path):
        candidates.append(packaged)
    candidates.append(Path(__file__).resolve().parents[1] / "data" / "provinces")
    for folder in candidates:
        if (folder / "provinces.geojson").is_file():
            return folder
    raise FileNotFoundError(
        "The bundled China province data was not found; looked in "
        + " and ".join(str(c) for c in candidates)
        + ". Reinstall territory-planner, or in a source checkout run "
        "`python scripts/build_provinces.py`.")


def _path(name: str) -> Path:
    path = data_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the bundled data folder is incomplete "
                                f"(expected {', '.join(_FILES)}). Rebuild it with "
                                "`python scripts/build_provinces.py` or reinstall.")
    return path


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{data_dir() / name}: missing columns {missing}; the bundled data is "
                         "out of date. Rebuild it with `python scripts/build_provinces.py`.")


@functools.lru_cache(maxsize=1)
def _provinces_frame() -> gpd.GeoDataFrame:
    frame = gpd.read_file(_path("provinces.geojson"))
    _require(frame, ("code", "adcode", "name_en", "name_zh", "name_zh_short", "type_en",
                     "region_zh", "region_en", "capital_en", "capital_zh", "area_km2",
                     "ne_adm1_code"), "provinces.geojson")
    frame = frame.sort_values("code", ignore_index=True)
    if frame.crs is None:
        frame = frame.set_crs("EPSG:4326")
    return frame


@functools.lru_cache(maxsize=1)
def _cities_frame() -> pd.DataFrame:
    # keep_default_na=False: a place called "NA" or "Nan" must stay a name, not become NaN.
    frame = pd.read_csv(
        _path("cities.csv"), keep_default_na=False, encoding="utf-8",
        dtype={"geonameid": np.int64, "name": str, "name_ascii": str, "lon": float,
               "lat": float, "population": np.int64, "province_code": str, "region_zh": str,
               "is_capital": str, "province_code_method": str})
    _require(frame, ("geonameid", "name", "name_ascii", "lon", "lat", "population",
                     "province_code", "region_zh", "is_capital"), "cities.csv")
    flag = frame["is_capital"].map({"True": True, "False": False})
    if flag.isna().any():
        raise ValueError(f"{data_dir() / 'cities.csv'}: is_capital must be True or False; "
                         "rebuild the data with `python scripts/build_provinces.py`.")
    frame["is_capital"] = flag.astype(bool)
    return frame


@functools.lru_cache(maxsize=1)
def _stats_frame() -> pd.DataFrame:
    text = ("code", "adcode", "name_en", "name_zh", "capital_en", "capital_zh", "region_zh",
            "region_en", "stats_note", "model_note")
    frame = pd.read_csv(_path("province_stats.csv"), keep_default_na=False, na_values=[""],
                        encoding="utf-8",
                        dtype={**{c: str for c in text}, "capital_geonameid": np.int64})
    _require(frame, (*text, "pop_2023_10k", "gdp_2023_100m_cny", "pop_2023_10k_model",
                     "gdp_2023_100m_cny_model", "gdp_per_capita_cny_model"),
             "province_stats.csv")
    for col in ("stats_note", "model_note"):
        frame[col] = frame[col].fillna("")
    return frame


@functools.lru_cache(maxsize=1)
def _regions_frame() -> pd.DataFrame:
    frame = pd.read_csv(_path("regions.csv"), encoding="utf-8",
                        dtype={"region_zh": str, "region_en": str, "province_codes": str,
                               "province_count": np.int64})
    _require(frame, ("region_zh", "region_en", "province_codes", "province_count"),
             "regions.csv")
    return frame


@functools.lru_cache(maxsize=1)
def _adjacency_frame() -> pd.DataFrame:
    frame = pd.read_csv(_path("adjacency.csv"), encoding="utf-8", keep_default_na=False,
                        na_values=[""],
                        dtype={"code_a": str, "code_b": str, "kind": str, "border_km": float,
                               "gap_km": float, "note": str})
    _require(frame, ("code_a", "code_b", "kind", "border_km"), "adjacency.csv")
    return frame


# ----------------------------------------------------------------------------------------------
# Tables


def provinces() -> gpd.GeoDataFrame:
    """The 33 provincial-level divisions as polygons (EPSG:4326), sorted by code.

    Columns: ``code`` (2-digit GB/T 2260, str), ``adcode``, ``name_en``, ``name_zh``,
    ``name_zh_short``, ``type_en``, ``region_zh``, ``region_en``, ``capital_en``,
    ``capital_zh``, ``area_km2`` (geodesic, of the simplified polygon), ``ne_adm1_code``.

    Raises
    ------
    FileNotFoundError
        If the bundled data is missing (see :func:`data_dir`).
    """
    return _provinces_frame().copy()


def cities() -> pd.DataFrame:
    """The 3,151 GeoNames places (population >= 5,000) of mainland China, Hong Kong and Macao.

    Columns: ``geonameid`` (int), ``name``, ``name_ascii``, ``lon``, ``lat`` (WGS-84 degrees),
    ``population`` (GeoNames figure; mixes whole municipalities with urban cores),
    ``province_code`` (str), ``region_zh``, ``is_capital`` (provincial capital, bool),
    ``province_code_method`` (how the province was assigned). GeoNames data, CC BY 4.0: see
    ``ATTRIBUTION.md`` in :func:`data_dir`.

    Raises
    ------
    FileNotFoundError
        If the bundled data is missing.
    """
    return _cities_frame().copy()


def province_stats() -> pd.DataFrame:
    """Names, capitals, regions and 2023 population/GDP of the 33 divisions.

    ``pop_2023_10k`` (10k persons) and ``gdp_2023_100m_cny`` (100 million CNY) are the source
    figures, blank (NaN) where two sources did not agree. The ``*_model`` columns are filled
    for every row for synthetic scenarios only; ``model_note`` says where each filled value came
    from (several are single-source and unverified).

    Raises
    ------
    FileNotFoundError
        If the bundled data is missing.
    """
    return _stats_frame().copy()


def regions() -> pd.DataFrame:
    """The seven macro-regions: ``region_zh``, ``region_en``, ``province_codes`` (``;``-joined
    string), ``province_count``.

    Raises
    ------
    FileNotFoundError
        If the bundled data is missing.
    """
    return _regions_frame().copy()


@functools.lru_cache(maxsize=1)
def _regions_gdf() -> gpd.GeoDataFrame:
    prov = _provinces_frame()
    reg = _regions_frame()
    geoms = []
    areas = []
    for codes in reg["province_codes"]:
        part = prov[prov["code"].isin(codes.split(";"))]
        # The polygons form a clean coverage, so the coverage union is exact and fast.
        geoms.append(shapely.coverage_union_all(part.geometry.to_numpy()))
        areas.append(float(part["area_km2"].sum()))
    return gpd.GeoDataFrame(reg.assign(area_km2=areas), geometry=geoms, crs=prov.crs)


def regions_gdf() -> gpd.GeoDataFrame:
    """The seven macro-regions as dissolved polygons (EPSG:4326).

    Columns as :func:`regions` plus ``area_km2`` (sum of the provinces' areas) and
    ``geometry``.

    Raises
    ------
    FileNotFoundError
        If the bundled data is missing.
    """
    return _regions_gdf().copy()


@functools.lru_cache(maxsize=1)
def _codes() -> tuple[str, ...]:
    return tuple(_provinces_frame()["code"].tolist())


def province_codes() -> tuple[str, ...]:
    """The 33 two-digit codes in ascending order ("11" ... "65", "81", "82")."""
    return _codes()


@functools.lru_cache(maxsize=1)
def _region_pairs() -> tuple[tuple[str, str], ...]:
    prov = _provinces_frame()
    return tuple(zip(prov["code"], prov["region_zh"], strict=True))


def region_of_province() -> dict[str, str]:
    """Map province code -> macro-region (``region_zh``, e.g. ``"44" -> "华南"``).

    A new dict on every call.
    """
    return dict(_region_pairs())


@functools.lru_cache(maxsize=2)
def _adjacency_graph(include_sea: bool) -> nx.Graph:
    graph = nx.Graph()
    for row in _provinces_frame().itertuples(index=False):
        graph.add_node(row.code, name_en=row.name_en, name_zh=row.name_zh,
                       name_zh_short=row.name_zh_short, region_zh=row.region_zh)
    for row in _adjacency_frame().itertuples(index=False):
        if row.kind == "sea" and not include_sea:
            continue
        graph.add_edge(row.code_a, row.code_b, kind=row.kind, border_km=float(row.border_km),
                       gap_km=float(row.gap_km), note=row.note)
    return graph


def adjacency(include_sea: bool = False) -> nx.Graph:
    """Province adjacency graph.

    Nodes are the 33 codes (attributes ``name_en``, ``name_zh``, ``name_zh_short``,
    ``region_zh``). Edges join provinces that share a land border, with ``kind`` ("land" or
    "sea"), ``border_km`` (geodesic length of the shared polygon boundary; NaN where the
    simplified polygons do not draw a real border: Guangdong-Macao) and ``gap_km``.

    Hainan (46) has no land neighbour, so the land graph has two components (Hainan and the
    rest). ``include_sea=True`` adds ferry/bridge links (Guangdong-Hainan across the Qiongzhou
    Strait, Hong Kong-Macao by the HZMB), which makes the graph connected.

    Parameters
    ----------
    include_sea:
        Also add the sea links.

    Returns
    -------
    networkx.Graph
        A fresh copy; modifying it does not affect later calls.
    """
    return _adjacency_graph(bool(include_sea)).copy()


# ----------------------------------------------------------------------------------------------
# Names and codes


class Capital(NamedTuple):
    """A provincial capital (for the SARs: the territory's GeoNames record)."""

    code: str
    geonameid: int
    name_en: str
    name_zh: str
    lon: float
    lat: float


#: Extra spellings accepted by :func:`normalise_province_codes`, beyond the codes, the English
#: names and the full and short Chinese names in ``provinces.geojson``.
_ALIASES: dict[str, str] = {
    "Tibet": "54", "Xizang": "54", "西藏": "54",
    "Nei Mongol": "15", "Nei Menggu": "15", "Neimenggu": "15",
    "Hongkong": "81", "Xianggang": "81", "香港": "81",
    "Macau": "82", "Aomen": "82", "澳門": "82",
    # ISO 3166-2:CN letter codes (only with the "CN-" prefix: bare pairs like "SX" are ambiguous
    # in everyday use).
    "CN-BJ": "11", "CN-TJ": "12", "CN-HE": "13", "CN-SX": "14", "CN-NM": "15",
    "CN-LN": "21", "CN-JL": "22", "CN-HL": "23",
    "CN-SH": "31", "CN-JS": "32", "CN-ZJ": "33", "CN-AH": "34", "CN-FJ": "35", "CN-JX": "36",
    "CN-SD": "37", "CN-HA": "41", "CN-HB": "42", "CN-HN": "43",
    "CN-GD": "44", "CN-GX": "45", "CN-HI": "46",
    "CN-CQ": "50", "CN-SC": "51", "CN-GZ": "52", "CN-YN": "53", "CN-XZ": "54",
    "CN-SN": "61", "CN-GS": "62", "CN-QH": "63", "CN-NX": "64", "CN-XJ": "65",
    "CN-HK": "81", "CN-MO": "82",
}

#: Administrative and ethnic suffixes stripped (repeatedly, longest first) when a name is not
#: found as written: "Guangxi Zhuang Autonomous Region" -> "guangxi", "广东省" -> "广东".
_SUFFIXES = tuple(sorted((
    "specialadministrativeregion", "autonomousregion", "municipality", "province", "sar",
    "sheng", "shi", "zizhiqu", "zhuang", "hui", "uygur", "uyghur", "uighur",
    "特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市",
), key=len, reverse=True))

_DROP = re.compile(r"[\s\-_.'’·,()（）]+")
_DIGITS = re.compile(r"(\d+)(?:\.0*)?")
#: Lengths of numeric administrative codes whose first two digits are the province:
#: GB/T 2260 (2, 4, 6) and the NBS statistical codes (9, 12).
_CODE_LENGTHS = frozenset({2, 4, 6, 9, 12})


def _key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    # Fold tone marks ("Guǎngdōng") but leave CJK untouched.
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(ch))
    return _DROP.sub("", text)


@functools.lru_cache(maxsize=1)
def _name_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for row in _provinces_frame().itertuples(index=False):
        for name in (row.name_en, row.name_zh, row.name_zh_short, f"CN-{row.code}"):
            index[_key(name)] = row.code
    for alias, code in _ALIASES.items():
        index[_key(alias)] = code
    return index


def _normalise_one(value: Any, known: frozenset[str], index: dict[str, str]) -> str:
    if value is None or isinstance(value, bool | np.bool_):
        return ""
    if isinstance(value, numbers.Integral):
        text = str(int(value))
    elif isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value) or not value.is_integer():
            return ""
        text = str(int(value))
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip()
    else:
        return ""
    if not text:
        return ""
    digits = _DIGITS.fullmatch(text)
    if digits:
        num = digits.group(1)
        if len(num) in _CODE_LENGTHS and num[:2] in known:
            return num[:2]
        return ""
    key = _key(text)
    while key:
        code = index.get(key)
        if code is not None:
            return code
        for suffix in _SUFFIXES:
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)]
                break
        else:
            return ""
    return ""


def normalise_province_codes(values: Any) -> np.ndarray:
    """Map codes and names in any common form to 2-digit province codes.

    Accepts ``"44"``, ``44``, ``44.0``, ``"440000"``, city/county codes (``"440100"``: the first
    two digits when they are a known province; also 4-, 9- and 12-digit codes), ``"CN-GD"``,
    names in Chinese (``"广东"``, ``"广东省"``, ``"内蒙古"``, ``"香港"``, ``"澳门"``/``"澳門"``)
    and English/pinyin, case- and space-insensitive (``"Guangdong"``, ``"guangdong province"``,
    ``"Inner Mongolia"``, ``"Hong Kong"``, ``"Macau"``/``"Macao"``, ``"Xizang"``/``"Tibet"``).
    Work is done once per distinct value, so 10^6 inputs with few distinct values are fast.

    Parameters
    ----------
    values:
        A scalar or array-like (list, numpy array, pandas Series).

    Returns
    -------
    numpy.ndarray
        Object array of ``str`` with the input's shape; ``""`` for unknown, blank or missing.
    """
    arr = np.asarray(values, dtype=object)
    flat = arr.ravel()
    if flat.size == 0:
        return np.empty(arr.shape, dtype=object)
    codes, uniques = pd.factorize(flat)
    known = frozenset(_codes())
    index = _name_index()
    # The extra trailing "" is what the missing-value sentinel -1 of factorize picks up.
    mapped = np.array([_normalise_one(v, known, index) for v in uniques] + [""], dtype=object)
    return mapped[codes].reshape(arr.shape)


def _one_code(code: Any) -> str:
    out = str(normalise_province_codes([code])[0])
    if not out:
        raise InvalidInputError(
            f"Unknown province {code!r}; use a GB/T 2260 code such as '44' or '440000', or a "
            "name such as '广东' or 'Guangdong'.")
    return out


def province_name(code: Any, lang: Literal["zh", "en", "zh_short"] = "zh") -> str:
    """The name of a province: ``lang="zh"`` full Chinese (广东省), ``"zh_short"`` (广东) or
    ``"en"`` (Guangdong).

    ``code`` may be in any form :func:`normalise_province_codes` accepts.

    Raises
    ------
    InvalidInputError
        If the province or ``lang`` is unknown.
    """
    columns = {"zh": "name_zh", "zh_short": "name_zh_short", "en": "name_en"}
    if lang not in columns:
        raise InvalidInputError(f"lang={lang!r}; expected one of {sorted(columns)}.")
    prov = _provinces_frame()
    row = prov.loc[prov["code"] == _one_code(code)].iloc[0]
    return str(row[columns[lang]])


def capital_of(code: Any) -> Capital:
    """The capital of a province (Hong Kong and Macao: the territory itself).

    ``code`` may be in any form :func:`normalise_province_codes` accepts.

    Raises
    ------
    InvalidInputError
        If the province is unknown.
    """
    code = _one_code(code)
    stats = _stats_frame()
    row = stats.loc[stats["code"] == code].iloc[0]
    places = _cities_frame()
    place = places.loc[places["geonameid"] == row["capital_geonameid"]].iloc[0]
    return Capital(code=code, geonameid=int(row["capital_geonameid"]),
                   name_en=str(row["capital_en"]), name_zh=str(row["capital_zh"]),
                   lon=float(place["lon"]), lat=float(place["lat"]))


# ----------------------------------------------------------------------------------------------
# Point queries


class _Geometry(NamedTuple):
    codes: tuple[str, ...]
    polygons: np.ndarray  # prepared, one per code
    bounds: np.ndarray  # (n, 4) minx, miny, maxx, maxy
    order: tuple[int, ...]  # largest area first: most points are settled by the first tests
    union: shapely.Geometry  # prepared
    union_bounds: tuple[float, float, float, float]
    tree: cKDTree  # densified boundary vertices on the sphere (km)
    labels: np.ndarray  # province index of each tree vertex


def _xyz_km(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    # Chord distance on the sphere equals great-circle distance to 1e-4 km at 50 km, without a
    # map projection and its distortions.
    lon_r = np.radians(lon)
    lat_r = np.radians(lat)
    cos_lat = np.cos(lat_r)
    return np.column_stack((cos_lat * np.cos(lon_r), cos_lat * np.sin(lon_r),
                            np.sin(lat_r))) * EARTH_RADIUS_KM


@functools.lru_cache(maxsize=1)
def _geometry() -> _Geometry:
    prov = _provinces_frame()
    # Fresh objects, so preparing them does not touch the frames handed to callers.
    polygons = shapely.from_wkb(shapely.to_wkb(prov.geometry.to_numpy()))
    union = shapely.coverage_union_all(polygons)
    shapely.prepare(polygons)
    shapely.prepare(union)
    boundary = shapely.segmentize(shapely.boundary(polygons), _DENSIFY_DEG)
    coords, owner = shapely.get_coordinates(boundary, return_index=True)
    ux0, uy0, ux1, uy1 = (float(v) for v in shapely.bounds(union))
    return _Geometry(
        codes=tuple(prov["code"].tolist()),
        polygons=polygons,
        bounds=shapely.bounds(polygons),
        order=tuple(np.argsort(-prov["area_km2"].to_numpy(), kind="stable").tolist()),
        union=union,
        union_bounds=(ux0, uy0, ux1, uy1),
        tree=cKDTree(_xyz_km(coords[:, 0], coords[:, 1])),
        labels=owner.astype(np.int16),
    )


def _as_xy(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    try:
        x = np.asarray(lon, dtype=float)
        y = np.asarray(lat, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"lon/lat must be numbers (WGS-84 degrees): {exc}") from None
    if x.shape != y.shape:
        raise InvalidInputError(f"lon and lat must have the same shape; got {x.shape} and "
                                f"{y.shape}.")
    return x.ravel(), y.ravel(), x.shape


def _check_km(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise InvalidInputError(f"{name}={value!r}; expected a finite distance >= 0 (km).")
    return value


def _near_box(x: np.ndarray, y: np.ndarray, bounds: tuple[float, float, float, float],
              pad_km: float) -> np.ndarray:
    """Points within the bounding box grown by ``pad_km`` (conservatively); NaN -> False."""
    x0, y0, x1, y1 = bounds
    pad_lat = pad_km / 110.0  # a degree of latitude is at least 110.57 km
    far_lat = min(max(abs(y0 - pad_lat), abs(y1 + pad_lat)), 89.0)
    pad_lon = pad_km / (111.0 * math.cos(math.radians(far_lat)))
    return ((x >= x0 - pad_lon) & (x <= x1 + pad_lon)
            & (y >= y0 - pad_lat) & (y <= y1 + pad_lat))


def _nearest_boundary(geo: _Geometry, x: np.ndarray, y: np.ndarray,
                      max_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance (km, inf beyond ``max_km``) to the nearest province boundary and its index."""
    dist, vertex = geo.tree.query(_xyz_km(x, y), k=1, distance_upper_bound=max_km)
    found = np.isfinite(dist)
    owner = np.full(x.size, -1, dtype=np.int16)
    owner[found] = geo.labels[vertex[found]]
    return dist, owner


def contains(lon: Any, lat: Any, buffer_km: float = 25.0) -> np.ndarray:
    """Whether points lie in China (the 33 divisions), allowing a margin of ``buffer_km``.

    The margin lets coastal places, islands and border towns pass despite the ~1 km
    simplification of the polygons; it also admits points just across a land border.

    Parameters
    ----------
    lon, lat:
        WGS-84 degrees, scalars or arrays of one shape. NaN gives False.
    buffer_km:
        Points within this great-circle distance (km) of a polygon count as inside.

    Returns
    -------
    numpy.ndarray
        Boolean array of the inputs' shape.

    Raises
    ------
    InvalidInputError
        If ``lon`` and ``lat`` differ in shape or are not numeric, or ``buffer_km`` < 0.
    """
    x, y, shape = _as_xy(lon, lat)
    buffer_km = _check_km(buffer_km, "buffer_km")
    geo = _geometry()
    out = np.zeros(x.size, dtype=bool)
    sel = np.flatnonzero(_near_box(x, y, geo.union_bounds, buffer_km))
    if sel.size:
        hit = shapely.intersects_xy(geo.union, x[sel], y[sel])
        out[sel[hit]] = True
        rest = sel[~hit]
        if buffer_km > 0 and rest.size:
            dist, _ = _nearest_boundary(geo, x[rest], y[rest], buffer_km)
            out[rest] = dist <= buffer_km
    return out.reshape(shape)


def province_of(lon: Any, lat: Any, max_km: float = 50.0) -> np.ndarray:
    """The province code of each point.

    Points inside a polygon get its code (a point on a shared border gets one of the two).
    Points outside every polygon get the nearest province within ``max_km``, else ``""``.

    Parameters
    ----------
    lon, lat:
        WGS-84 degrees, scalars or arrays of one shape. NaN gives ``""``.
    max_km:
        Largest great-circle distance (km) to the nearest province for points outside all
        polygons (islands, coasts, GeoNames points near a border).

    Returns
    -------
    numpy.ndarray
        Object array of ``str`` codes with the inputs' shape.

    Raises
    ------
    InvalidInputError
        If ``lon`` and ``lat`` differ in shape or are not numeric, or ``max_km`` < 0.
    """
    x, y, shape = _as_xy(lon, lat)
    max_km = _check_km(max_km, "max_km")
    geo = _geometry()
    found = np.full(x.size, -1, dtype=np.int16)
    sel = np.flatnonzero(_near_box(x, y, geo.union_bounds, max_km))
    if sel.size:
        # One test against the union first, so the per-province loop sees only points inside.
        inside = sel[shapely.intersects_xy(geo.union, x[sel], y[sel])]
        xi, yi = x[inside], y[inside]
        owner = np.full(inside.size, -1, dtype=np.int16)
        for k in geo.order:
            x0, y0, x1, y1 = geo.bounds[k]
            cand = np.flatnonzero((owner < 0) & (xi >= x0) & (xi <= x1)
                                  & (yi >= y0) & (yi <= y1))
            if cand.size:
                owner[cand[shapely.intersects_xy(geo.polygons[k], xi[cand], yi[cand])]] = k
        found[inside] = owner
        rest = sel[found[sel] < 0]
        if rest.size:
            _, nearest = _nearest_boundary(geo, x[rest], y[rest], max_km)
            found[rest] = nearest
    names = np.array([*geo.codes, ""], dtype=object)  # index -1 -> ""
    return names[found].reshape(shape)
