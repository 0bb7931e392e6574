"""Build the bundled China geography in ``data/provinces/`` from ``../shared/data/china/``.

Usage::

    python scripts/build_provinces.py [--src DIR] [--out DIR]

Deterministic: the same inputs give byte-identical outputs (no timestamps, fixed row orders,
fixed float rounding, source text copied verbatim where it is kept). The source folder's
``SOURCES.md`` documents where the inputs came from; ``data/provinces/README.md`` documents the
outputs and what this script changes.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import shapely
from pyproj import Geod

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SRC = REPO.parent / "shared" / "data" / "china"
DEFAULT_OUT = REPO / "data" / "provinces"

GEOD = Geod(ellps="WGS84")

#: The seven traditional geographic regions (七大地理分区), in their customary order.
REGIONS: tuple[tuple[str, str], ...] = (
    ("华北", "North"),
    ("东北", "Northeast"),
    ("华东", "East"),
    ("华中", "Central"),
    ("华南", "South"),
    ("西南", "Southwest"),
    ("西北", "Northwest"),
)

#: The SARs are not in the source province_stats.csv (mainland only). Their capitals are the
#: GeoNames records of the whole territory.
SAR_INFO: dict[str, dict[str, str]] = {
    "81": {"capital_en": "Hong Kong", "capital_zh": "香港", "capital_geonameid": "1819729",
           "region_zh": "华南", "region_en": "South"},
    "82": {"capital_en": "Macao", "capital_zh": "澳门", "capital_geonameid": "1821274",
           "region_zh": "华南", "region_en": "South"},
}

UNVERIFIED = "single-source, not verified offline; replace with NBS data portal figures"

#: 2023 year-end resident population (10k persons) for the provinces the source leaves blank.
#: Typed in from recall of the provinces' 2023 statistical communiqués (统计公报), rounded to
#: whole 10k; no document could be consulted offline, hence the UNVERIFIED note.
POP_2023_10K_FILL: dict[str, int] = {
    "21": 4182, "22": 2339, "23": 3062,
    "31": 2487, "32": 8526, "33": 6627, "34": 6121, "35": 4183, "36": 4515, "37": 10123,
    "41": 9815, "42": 5838, "43": 6568,
    "44": 12706, "45": 5027, "46": 1043,
    "50": 3191, "51": 8368, "52": 3865, "53": 4673, "54": 365,
    "61": 3952, "62": 2465, "63": 594, "64": 729, "65": 2598,
}

#: 2023 GDP (100m CNY) where the source's two compilations disagree: the figure matching the
#: province's preliminary 2023 accounts. The other candidate is kept in the note for review.
GDP_2023_FILL: dict[str, tuple[str, str]] = {
    "14": ("25698.18", "22307.40"),
    "36": ("32200.1", "32074.70"),
    "43": ("50012.85", "50000.00"),
    "45": ("27202.39", "27201.80"),
    "54": ("2392.67", "2392.96"),
}

#: Approximate 2023 figures for the SARs (not in the source at all).
SAR_STATS: dict[str, tuple[int, str, str]] = {
    "81": (750, "26910",
           "pop_model: about 750 (10k persons), Hong Kong year-end 2023 (C&SD); gdp_model: about "
           "HK$2,990 bn (C&SD, 2023, current prices) x 0.900 CNY/HKD (2023 average) = 26,910 "
           "(100m CNY); both typed in from recall without the documents at hand (" + UNVERIFIED
           + "; for Hong Kong use C&SD figures)"),
    "82": (68, "3316",
           "pop_model: about 68 (10k persons), Macao year-end 2023 (DSEC); gdp_model: about "
           "MOP 379.5 bn (DSEC, 2023, current prices) x 0.874 CNY/MOP (2023 average) = 3,316 "
           "(100m CNY); both typed in from recall without the documents at hand (" + UNVERIFIED
           + "; for Macao use DSEC figures)"),
}

#: Land borders that exist but that the simplified polygons do not draw as shared lines.
#: The build checks that each pair really does not touch and lies within 1 km.
LAND_LINKS_NOT_DRAWN: dict[tuple[str, str], str] = {
    ("44", "82"): "real land border (Portas do Cerco/Gongbei and Hengqin); the simplified "
                  "polygons leave a small gap, so border_km is not measured",
}

#: Sea links so that a connected graph is available on request (accessors: include_sea=True).
SEA_LINKS: dict[tuple[str, str], str] = {
    ("44", "46"): "Qiongzhou Strait (琼州海峡): Hai'an/Xuwen-Haikou ferries and the "
                  "Guangdong-Hainan train ferry; no land border",
    ("81", "82"): "Hong Kong-Zhuhai-Macao Bridge (港珠澳大桥, opened 2018) across the Pearl "
                  "River estuary; no land border",
}

PROVINCE_PROPERTIES = ("code", "adcode", "name_en", "name_zh", "name_zh_short", "type_en",
                       "region_zh", "region_en", "capital_en", "capital_zh", "area_km2",
                       "ne_adm1_code")
CITY_COLUMNS = ("geonameid", "name", "name_ascii", "lon", "lat", "population", "province_code",
                "region_zh", "is_capital", "province_code_method")
STATS_SOURCE_COLUMNS = ("code", "adcode", "name_en", "name_zh", "capital_en", "capital_zh",
                        "capital_geonameid", "region_zh", "region_en", "pop_2023_10k",
                        "gdp_2023_100m_cny", "stats_note")
STATS_COLUMNS = (*STATS_SOURCE_COLUMNS, "pop_2023_10k_model", "gdp_2023_100m_cny_model",
                 "gdp_per_capita_cny_model", "model_note")


class BuildError(RuntimeError):
    """The source data does not look like what this script was written for."""


def _read_csv(path: Path) -> list[dict[str, str]]:
    # Plain csv keeps every cell as the exact source text, so verbatim columns stay verbatim.
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(row)
    path.write_bytes(buf.getvalue().encode("utf-8"))


def _area_km2(geom: shapely.Geometry) -> float:
    # Counter-clockwise shells give positive geodesic areas from pyproj.
    area_m2, _ = GEOD.geometry_area_perimeter(shapely.orient_polygons(geom))
    return abs(area_m2) / 1e6


def _gap_km(a: shapely.Geometry, b: shapely.Geometry) -> float:
    (x0, y0), (x1, y1) = shapely.shortest_line(a, b).coords
    return GEOD.line_length([x0, x1], [y0, y1]) / 1000.0


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}"


def load_sources(src: Path) -> tuple[dict, list[dict[str, str]], list[dict[str, str]]]:
    """Read and sanity-check the three source files."""
    missing = [n for n in ("provinces.geojson", "cities.csv", "province_stats.csv")
               if not (src / n).is_file()]
    if missing:
        raise BuildError(f"{src}: missing {', '.join(missing)}; pass --src to the folder that "
                         "holds the shared China data (see its SOURCES.md).")
    fc = json.loads((src / "provinces.geojson").read_text(encoding="utf-8"))
    cities = _read_csv(src / "cities.csv")
    stats = _read_csv(src / "province_stats.csv")
    codes = [f["properties"]["code"] for f in fc["features"]]
    if len(codes) != 33 or len(set(codes)) != 33:
        raise BuildError(f"provinces.geojson: expected 33 unique codes, got {sorted(codes)}")
    stat_codes = {r["code"] for r in stats}
    if len(stats) != 31 or stat_codes != set(codes) - {"81", "82"}:
        raise BuildError("province_stats.csv: expected the 31 mainland provinces")
    if list(stats[0].keys()) != list(STATS_SOURCE_COLUMNS):
        raise BuildError(f"province_stats.csv: unexpected columns {list(stats[0].keys())}")
    return fc, cities, stats


def build_province_info(fc: dict, stats: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per code: source properties + region + capital (SARs from SAR_INFO)."""
    by_code = {r["code"]: r for r in stats}
    info: dict[str, dict[str, str]] = {}
    for feat in fc["features"]:
        p = feat["properties"]
        extra = by_code.get(p["code"]) or SAR_INFO[p["code"]]
        info[p["code"]] = {**p, **{k: extra[k] for k in ("region_zh", "region_en", "capital_en",
                                                         "capital_zh", "capital_geonameid")}}
    return info


def build_geometries(fc: dict) -> dict[str, shapely.Geometry]:
    geoms = {f["properties"]["code"]: shapely.from_geojson(json.dumps(f["geometry"]))
             for f in fc["features"]}
    arr = np.array(list(geoms.values()))
    if not shapely.is_valid(arr).all():
        raise BuildError("provinces.geojson: invalid polygons")
    if not shapely.coverage_is_valid(arr):
        # Shared borders must be identical for the adjacency test below to mean anything.
        raise BuildError("provinces.geojson: the polygons are not a clean coverage")
    return geoms


def write_provinces_geojson(out: Path, fc: dict, info: dict[str, dict[str, str]],
                            geoms: dict[str, shapely.Geometry]) -> None:
    features = []
    for feat in sorted(fc["features"], key=lambda f: f["properties"]["code"]):
        code = feat["properties"]["code"]
        props: dict[str, object] = {k: info[code][k] for k in PROVINCE_PROPERTIES
                                    if k != "area_km2"}
        props["area_km2"] = round(_area_km2(geoms[code]), 1)
        props = {k: props[k] for k in PROVINCE_PROPERTIES}
        # The geometry is passed through untouched (already simplified upstream).
        features.append({"type": "Feature", "properties": props, "geometry": feat["geometry"]})
    doc = {"type": "FeatureCollection", "name": "china_provinces", "features": features}
    text = json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    (out / "provinces.geojson").write_bytes((text + "\n").encode("utf-8"))


def write_cities(out: Path, cities: list[dict[str, str]], info: dict[str, dict[str, str]],
                 geoms: dict[str, shapely.Geometry]) -> int:
    """Write cities.csv; returns how many province codes were corrected."""
    capitals = {v["capital_geonameid"] for v in info.values()}
    lon = np.array([float(r["lon"]) for r in cities])
    lat = np.array([float(r["lat"]) for r in cities])
    # GeoNames files four Macao parishes as country CN / admin1 Guangdong; a CN record whose
    # point lies in a SAR polygon is moved to that SAR (the only class of clear error found).
    sar_hit = {sar: shapely.intersects_xy(geoms[sar], lon, lat) for sar in ("81", "82")}
    rows = []
    corrected = 0
    for i, r in enumerate(cities):
        code, method = r["province_code"], r["province_code_method"]
        for sar, hit in sar_hit.items():
            if hit[i] and code != sar:
                code, method = sar, "sar_polygon"
                corrected += 1
        if code not in info:
            raise BuildError(f"cities.csv row {i + 2}: unknown province_code {code!r}")
        rows.append((r["geonameid"], r["name"], r["name_ascii"], r["lon"], r["lat"],
                     r["population"], code, info[code]["region_zh"],
                     "True" if r["geonameid"] in capitals else "False", method))
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        raise BuildError("cities.csv: duplicate geonameid")
    if not capitals <= set(ids):
        raise BuildError(f"cities.csv lacks capitals {sorted(capitals - set(ids))}")
    rows.sort(key=lambda r: (r[6], -int(r[5]), int(r[0])))
    _write_csv(out / "cities.csv", CITY_COLUMNS, rows)
    return corrected


def _per_capita(pop_10k: float, gdp_100m: float) -> str:
    # 100m CNY / 10k persons = 10^4 CNY per person.
    return str(round(gdp_100m / pop_10k * 1e4))


def write_stats(out: Path, stats: list[dict[str, str]], info: dict[str, dict[str, str]]) -> None:
    rows = []
    for r in stats:
        code = r["code"]
        notes = []
        if r["pop_2023_10k"]:
            pop = r["pop_2023_10k"]
            notes.append("pop_model: source pop_2023_10k")
        else:
            pop = str(POP_2023_10K_FILL[code])
            notes.append("pop_model: 2023 year-end resident population as published in the "
                         "provincial 2023 statistical communiqué, typed in from recall without "
                         f"the document at hand ({UNVERIFIED})")
        if r["gdp_2023_100m_cny"]:
            gdp = r["gdp_2023_100m_cny"]
            notes.append("gdp_model: source gdp_2023_100m_cny")
        else:
            gdp, other = GDP_2023_FILL[code]
            notes.append(f"gdp_model: of the two disagreeing figures ({gdp} vs {other}) the one "
                         "matching the provincial 2023 preliminary accounts "
                         f"({UNVERIFIED})")
        rows.append([r[c] for c in STATS_SOURCE_COLUMNS]
                    + [pop, gdp, _per_capita(float(pop), float(gdp)), "; ".join(notes)])
    for code, (pop_i, gdp, note) in SAR_STATS.items():
        p = info[code]
        rows.append([code, p["adcode"], p["name_en"], p["name_zh"], p["capital_en"],
                     p["capital_zh"], p["capital_geonameid"], p["region_zh"], p["region_en"],
                     "", "", "not in the source file (mainland provinces only)",
                     str(pop_i), gdp, _per_capita(pop_i, float(gdp)), note])
    rows.sort(key=lambda row: row[0])
    _write_csv(out / "province_stats.csv", STATS_COLUMNS, rows)


def write_regions(out: Path, info: dict[str, dict[str, str]]) -> None:
    rows = []
    for zh, en in REGIONS:
        codes = sorted(c for c, p in info.items() if p["region_zh"] == zh)
        if any(info[c]["region_en"] != en for c in codes):
            raise BuildError(f"region {zh}: inconsistent region_en")
        rows.append((zh, en, ";".join(codes), len(codes)))
    if sum(r[3] for r in rows) != len(info):
        raise BuildError("some provinces are in none of the seven regions")
    _write_csv(out / "regions.csv", ("region_zh", "region_en", "province_codes",
                                     "province_count"), rows)


def write_adjacency(out: Path, geoms: dict[str, shapely.Geometry]) -> list[tuple]:
    codes = sorted(geoms)
    arr = np.array([geoms[c] for c in codes])
    tree = shapely.STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    rows: list[tuple] = []
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        shared = shapely.intersection(arr[i], arr[j])
        border_km = GEOD.geometry_length(shared) / 1000.0
        # Corner contacts (a point) are not borders; in a clean coverage every real border is
        # a line, identical on both sides.
        if border_km > 0:
            rows.append((codes[i], codes[j], "land", _fmt(border_km, 1), "0.0",
                         "shared polygon boundary"))
    drawn = {(r[0], r[1]) for r in rows}
    for (a, b), note in LAND_LINKS_NOT_DRAWN.items():
        gap = _gap_km(geoms[a], geoms[b])
        if (a, b) in drawn or gap > 1.0:
            raise BuildError(f"{a}-{b}: expected a land border missing from the polygons by "
                             f"< 1 km; found drawn={(a, b) in drawn}, gap={gap:.2f} km")
        rows.append((a, b, "land", "", _fmt(gap, 1), note))
    for (a, b), note in SEA_LINKS.items():
        if (a, b) in drawn:
            raise BuildError(f"{a}-{b}: sea link between land neighbours")
        rows.append((a, b, "sea", "", _fmt(_gap_km(geoms[a], geoms[b]), 1), note))
    rows.sort(key=lambda r: (r[0], r[1]))
    _write_csv(out / "adjacency.csv", ("code_a", "code_b", "kind", "border_km", "gap_km",
                                       "note"), rows)
    return rows


def build(src: Path, out: Path) -> dict[str, int]:
    """Build every file in ``out`` from ``src``; returns a few counts for the log."""
    fc, cities, stats = load_sources(src)
    info = build_province_info(fc, stats)
    geoms = build_geometries(fc)
    out.mkdir(parents=True, exist_ok=True)
    write_provinces_geojson(out, fc, info, geoms)
    corrected = write_cities(out, cities, info, geoms)
    write_stats(out, stats, info)
    write_regions(out, info)
    adj = write_adjacency(out, geoms)
    return {"provinces": len(geoms), "cities": len(cities), "cities_corrected": corrected,
            "land_links": sum(r[2] == "land" for r in adj),
            "sea_links": sum(r[2] == "sea" for r in adj)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC,
                        help=f"folder with the shared China data (default: {DEFAULT_SRC})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    try:
        counts = build(args.src, args.out)
    except BuildError as exc:
        print(f"build_provinces: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
