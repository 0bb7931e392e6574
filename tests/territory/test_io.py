"""Reading, validating and writing accounts and reps (territory.io)."""

from __future__ import annotations

import datetime as dt
import io
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from territory import coords
from territory.errors import DataQualityWarning, InvalidInputError
from territory.io import (
    MISSING_TOKENS,
    read_accounts,
    read_reps,
    read_table,
    write_accounts,
    write_csv,
    write_reps,
)
from territory.model import Accounts, Reps

GUANGZHOU = (113.2644, 23.1291)
BEIJING = (116.4074, 39.9042)
SHANGHAI = (121.4737, 31.2304)

ACC_CSV = (
    "id,name,lon,lat,potential\n"
    "00123,广州一店,113.2644,23.1291,5\n"
    "00124,北京药房,116.4074,39.9042,\n"
    "00125,上海中心,121.4737,31.2304,NA\n"
)


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, rows: list[list[object]], title: str = "Sheet1") -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = title
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    wb.save(path)
    return path


# ----------------------------------------------------------------------------------------------
# the acceptance case


def test_duplicate_id_and_nan_coordinate_name_both_rows(tmp_path: Path) -> None:
    path = write_text(tmp_path / "accounts.csv",
                      "id,lon,lat\n"
                      "A1,113.2644,23.1291\n"
                      "A2,116.4074,NaN\n"
                      "A1,121.4737,31.2304\n")
    with pytest.raises(InvalidInputError) as exc:
        read_accounts(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: 3 problem(s) in the accounts table (3 rows)")
    # Spreadsheet rows: header is row 1, so the data rows are 2, 3 and 4.
    assert "Account 'A1' (row 2): id='A1'; duplicate id (also in row 4); ids must be unique" in msg
    assert "Account 'A1' (row 4): id='A1'; duplicate id (also in row 2)" in msg
    assert "Account 'A2' (row 3): lat=nan; missing; give a number" in msg
    assert {(p.row, p.field) for p in exc.value.problems} == {(2, "id"), (4, "id"), (3, "lat")}
    assert isinstance(exc.value, ValueError)


# ----------------------------------------------------------------------------------------------
# text files: encodings, delimiters, missing cells, row labels


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_encodings_are_detected(tmp_path: Path, encoding: str) -> None:
    path = write_text(tmp_path / "a.csv", ACC_CSV, encoding)
    acc = read_accounts(path)
    assert acc.ids.tolist() == ["00123", "00124", "00125"]
    assert acc.frame["name"].tolist() == ["广州一店", "北京药房", "上海中心"]
    assert acc.potential.tolist() == [5.0, 1.0, 1.0]


def test_explicit_encoding_wins(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", ACC_CSV, "gbk")
    assert read_table(path, encoding="gbk")["name"].iloc[0] == "广州一店"
    # An explicit wrong encoding is not second-guessed: it fails loudly.
    with pytest.raises(InvalidInputError, match=r"cannot be read as utf-8") as exc:
        read_table(path, encoding="utf-8")
    assert "line 2" in str(exc.value) and "encoding=" in str(exc.value)
    with pytest.raises(InvalidInputError, match="not a known text encoding"):
        read_table(path, encoding="klingon")


def test_mixed_encodings_are_refused_not_mojibake(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes("id,name\n1,广州\n".encode() + "2,深圳\n".encode("gbk"))
    with pytest.raises(InvalidInputError,
                       match=r"offset 19 \(line 3: .*\) cannot be read as UTF-8, though line 2 "
                             r"is UTF-8: the file mixes encodings"):
        read_table(path)
    # GBK first, UTF-8 later: GB18030 alone would decode it, into mojibake.
    path.write_bytes("id,name\n1,广州\n".encode("gbk") + "2,深圳市第一医院\n".encode())
    with pytest.raises(InvalidInputError, match=r"mixes encodings|cannot be read as UTF-8 or GBK"):
        read_table(path)


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("医", "gbk"),  # d2 bd: also the UTF-8 of "ҽ"
        ("路", "gbk"),  # c2 b7: also the UTF-8 of "·"
        ("茅台", "gbk"),
        ("Běijīng", "utf-8"),
        ("Привет", "utf-8"),
        ("Café", "utf-8-sig"),  # the BOM settles it
    ],
)
def test_short_texts_valid_in_both_encodings(text: str, encoding: str) -> None:
    data = f"id,name\n1,{text}\n".encode(encoding)
    assert read_table(io.BytesIO(data))["name"].tolist() == [text]


def test_text_plausible_in_both_encodings_is_refused() -> None:
    with pytest.raises(InvalidInputError,
                       match=r"reads both as UTF-8 \('1,Café'\) and as GBK \('1,Caf茅'\) at "
                             r"line 2; which is it\?\nPass encoding='utf-8' or encoding='gbk'"):
        read_table(io.BytesIO("id,name\n1,Café\n".encode()))
    assert read_table(io.BytesIO("id,name\n1,Café\n".encode()),
                      encoding="utf-8")["name"].tolist() == ["Café"]


def test_invalid_bytes_name_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"id,lon,lat\nA,113,23\nB,\xff\xff,23\n")
    with pytest.raises(InvalidInputError,
                       match=r"bytes at offset 22 \(line 3: ff ff 2c 32\) cannot be read as "
                             r"UTF-8 or GBK/GB18030"):
        read_table(path)


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path: Path, sep: str) -> None:
    text = ACC_CSV.replace(",", sep)
    acc = read_accounts(write_text(tmp_path / "a.txt", text))
    assert acc.lonlat.tolist()[0] == list(GUANGZHOU)


def test_semicolon_file_with_decimal_commas_is_reported_not_coerced(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "id;lon;lat\nA;113,26;23,13\n")
    with pytest.raises(InvalidInputError, match=r"lon='113,26'; not a number"):
        read_accounts(path)


def test_tsv_extension_and_one_column_tables(tmp_path: Path) -> None:
    tsv = write_text(tmp_path / "a.tsv", "id\tlon\tlat\nA,1\t113.2644\t23.1291\n")
    assert read_accounts(tsv).ids.tolist() == ["A,1"]
    one = read_table(write_text(tmp_path / "one.csv", "id\nx\ny\n"))
    assert one.columns.tolist() == ["id"] and one["id"].tolist() == ["x", "y"]


def test_raw_text_cells_and_missing_tokens(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv",
                      "id,a,b\n007,NA,1.50\n008,null, x \n009,None,\n010,N/A,nan\n011,,NULL\n")
    table = read_table(path)
    assert table["id"].tolist() == ["007", "008", "009", "010", "011"]
    assert table["a"].isna().all()
    assert table["b"].tolist()[:2] == ["1.50", " x "]  # as typed: not parsed, not stripped
    assert table["b"].iloc[2:].isna().all()
    assert set(MISSING_TOKENS) >= {"", "NA", "NaN", "null", "None"}


def test_row_labels_follow_the_spreadsheet(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv",
                      "\nid,lon,lat\nA,113.2644,23.1291\n\n\"B\nb\",116.4074,39.9042\nC,1,x\n")
    table = read_table(path)
    # Leading blank line = row 1, header = row 2; the blank row 4 is skipped, not renumbered;
    # the quoted line break keeps "B\nb" one row (row 5), as Excel shows it.
    assert table.index.tolist() == [3, 5, 6]
    assert table["id"].tolist() == ["A", "B\nb", "C"]
    with pytest.raises(InvalidInputError, match=r"Account 'C' \(row 6\): lat='x'; not a number"):
        read_accounts(path)


def test_file_like_sources() -> None:
    assert read_accounts(io.BytesIO(ACC_CSV.encode("gbk"))).ids.tolist()[0] == "00123"
    assert read_accounts(io.StringIO(ACC_CSV)).frame["name"].iloc[2] == "上海中心"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "the file is empty"),
        ("\n\n  \n", "the file is empty"),
        ("id,lon,lat\n", "has a header but no data rows"),
        ("id,lon,lat\nA,1,2\nB,1,2,3\n", r"Expected 3 fields in line 3, saw 4"),
        ("id,lon,id\nA,1,2\n", r"header repeats column names: 'id' in columns 1, 3"),
    ],
)
def test_malformed_text_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        read_accounts(write_text(tmp_path / "a.csv", text))


def test_headerless_columns(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path / "a.csv", "id,,lon,lat,,\nA,memo,1,2,,\n"))
    # A column with data but no header gets a name; empty trailing columns are dropped.
    assert table.columns.tolist() == ["id", "column_2", "lon", "lat"]


@pytest.mark.parametrize(
    ("name", "match"),
    [("missing.csv", "no such file"), ("a.docx", "unsupported file type '.docx'"),
     ("noext", "unsupported file type '\\(no extension\\)'")],
)
def test_unreadable_paths(tmp_path: Path, name: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        read_accounts(tmp_path / name)


def test_directory_and_wrong_source_type(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(InvalidInputError, match="is a directory"):
        read_accounts(tmp_path / "dir.csv")
    with pytest.raises(InvalidInputError, match="Cannot read a table from a int"):
        read_accounts(42)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# column names


def test_chinese_headers_map_by_alias(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv",
                      "客户编码,客户名称,经度,纬度,销售潜力,级别,拜访频率,拜访时长,营业时间,省份,城市,"
                      "负责人,备注\n"
                      "K001,甲,113.2644,23.1291,9.5,A,3,25,周一至周六 08:00-18:00,广东,广州,R7,新客户\n",
                      "gbk")
    acc = read_accounts(path)
    row = acc.frame.iloc[0]
    assert (row["id"], row["name"], row["potential"], row["segment"]) == ("K001", "甲", 9.5, "A")
    assert (row["visits"], row["visit_min"], row["city"], row["current_rep"]) == (3, 25.0, "广州",
                                                                                   "R7")
    assert row["hours"] == "mon-sat 08:00-18:00" and row["province"] == "44"
    assert row["备注"] == "新客户"  # unknown columns are kept


def test_english_aliases_are_case_insensitive() -> None:
    frame = pd.DataFrame({"Customer ID": ["c1"], "Longitude": [GUANGZHOU[0]],
                          "LATITUDE": [GUANGZHOU[1]], "Visit-Frequency": [2],
                          "Rep_ID": ["R1"], "Code": ["X9"]})
    f = read_accounts(frame).frame
    assert f[["id", "visits", "current_rep"]].iloc[0].tolist() == ["c1", 2, "R1"]
    assert f["Code"].tolist() == ["X9"]  # "code" is too generic to be an id alias


def test_explicit_columns_mapping() -> None:
    frame = pd.DataFrame({"店号": ["s1"], "E": [GUANGZHOU[0]], "N": [GUANGZHOU[1]], "x": [5.0]})
    acc = read_accounts(frame, columns={"店号": "id", "E": "lon", "N": "lat", "x": "x_local"})
    assert acc.frame[["id", "lon", "lat", "x_local"]].iloc[0].tolist() == [
        "s1", *GUANGZHOU, 5.0]


def test_ambiguous_columns_name_both() -> None:
    frame = pd.DataFrame({"id": ["a"], "lng": [113.0], "经度": [113.0], "lat": [23.0]})
    with pytest.raises(InvalidInputError,
                       match=r"same field: 'lon' from 'lng' and '经度'\.\nSay which one") as exc:
        read_accounts(frame)
    assert "columns={'lng': 'lng_unused'}" in str(exc.value)
    # Resolved by mapping one of them away.
    assert "lng_unused" in read_accounts(frame, columns={"lng": "lng_unused"}).frame


def test_explicit_mapping_clashing_with_an_existing_column() -> None:
    frame = pd.DataFrame({"客户编码": ["a"], "ID": ["b"], "lon": [113.0], "lat": [23.0]})
    with pytest.raises(InvalidInputError,
                       match=r"'id' from '客户编码' \(columns=\) and 'ID'"):
        read_accounts(frame, columns={"客户编码": "id"})


def test_columns_mapping_must_name_existing_columns() -> None:
    frame = pd.DataFrame({"id": ["a"], "lon": [113.0], "lat": [23.0]})
    with pytest.raises(InvalidInputError, match=r"columns= names \['经度'\], not in the accounts"):
        read_accounts(frame, columns={"经度": "lon"})


def test_missing_required_columns_list_what_is_there(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "编号,地址\n1,广州\n")
    with pytest.raises(InvalidInputError) as exc:
        read_accounts(path)
    msg = str(exc.value)
    assert "no column for ['lon', 'lat']; its columns are ['编号', '地址']" in msg
    assert "lon: lon, lng, long, longitude, x, 经度" in msg
    assert "columns={'your column': 'lon'}" in msg


def test_reps_aliases(tmp_path: Path) -> None:
    path = write_text(tmp_path / "reps.csv",
                      "工号,姓名,经度,纬度,上班时间,下班时间,工作日,大区\n"
                      "0042,王五,113.2644,23.1291,08:00,18:00,周一至周六,华南\n")
    reps = read_reps(path)
    row = reps.frame.iloc[0]
    assert (row["id"], row["name"], row["home_lon"], row["home_lat"]) == (
        "0042", "王五", *GUANGZHOU)
    assert (row["work_start"], row["work_end"], row["working_days"], row["region"]) == (
        480, 1080, "mon-sat", "华南")


def test_reps_without_home_columns(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"reps table has no column for \['home_lon', "
                                                r"'home_lat'\]"):
        read_reps(write_text(tmp_path / "r.csv", "id,name\nR1,x\n"))


def test_reps_errors_name_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "r.csv", "id,lon,lat,work_start\nR1,113.26,23.13,9am\n")
    with pytest.raises(InvalidInputError,
                       match=r"r\.csv: 1 problem\(s\) in the reps table .*\n  Rep 'R1' \(row 2\): "
                             r"work_start='9am'; not a time of day"):
        read_reps(path)


# ----------------------------------------------------------------------------------------------
# geometry and coordinate systems


def test_geodataframe_points_in_another_crs() -> None:
    gdf = gpd.GeoDataFrame({"id": ["a", "b"]},
                           geometry=[shapely.Point(GUANGZHOU), shapely.Point(BEIJING)],
                           crs="EPSG:4326").to_crs("EPSG:3857")
    acc = read_accounts(gdf)
    np.testing.assert_allclose(acc.lonlat, [GUANGZHOU, BEIJING], atol=1e-9)
    assert "geometry" not in acc.frame


def test_non_point_geometry_uses_representative_point_with_warning() -> None:
    box = shapely.box(113.0, 23.0, 113.2, 23.2)
    gdf = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[shapely.Point(BEIJING), box],
                           crs="EPSG:4326")
    gdf.index = [7, 8]
    with pytest.warns(DataQualityWarning,
                      match=r"1 feature\(s\) are not points \(Polygon; row\(s\) 8\)"):
        acc = read_accounts(gdf)
    assert shapely.Point(acc.lonlat[1]).within(box)


def test_missing_geometry_is_reported_and_columns_win() -> None:
    gdf = gpd.GeoDataFrame({"id": ["a", "b"]}, geometry=[shapely.Point(BEIJING), None],
                           crs="EPSG:4326")
    with pytest.raises(InvalidInputError, match=r"Account 'b' \(row 1\): lon=nan; missing"):
        read_accounts(gdf)
    gdf["lon"], gdf["lat"] = [GUANGZHOU[0]] * 2, [GUANGZHOU[1]] * 2
    assert read_accounts(gdf).lonlat.tolist() == [list(GUANGZHOU)] * 2


@pytest.mark.parametrize("system", ["gcj02", "GCJ-02", "bd09"])
def test_chinese_map_coordinates_are_converted(tmp_path: Path, system: str) -> None:
    key = system.lower().replace("-", "")
    lon, lat = coords.convert(np.array([GUANGZHOU[0], SHANGHAI[0]]),
                              np.array([GUANGZHOU[1], SHANGHAI[1]]), "wgs84", key)
    path = write_text(tmp_path / "a.csv", "id,lon,lat\n" + "".join(
        f"{i},{float(x)!r},{float(y)!r}\n" for i, (x, y) in enumerate(zip(lon, lat, strict=True))))
    acc = read_accounts(path, coord_system=system)
    np.testing.assert_allclose(acc.lonlat, [GUANGZHOU, SHANGHAI], atol=1e-7)
    # The offset is real: without conversion the points are some hundreds of metres off.
    assert np.abs(read_accounts(path).lonlat - [GUANGZHOU, SHANGHAI]).max() > 1e-3


def test_conversion_keeps_bad_values_for_the_report() -> None:
    frame = pd.DataFrame({"id": ["a", "b"], "lon": ["113.26", "east"], "lat": ["23.13", "23"]})
    with pytest.raises(InvalidInputError, match=r"lon='east'; not a number"):
        read_accounts(frame, coord_system="gcj02")


def test_unknown_coord_system() -> None:
    with pytest.raises(InvalidInputError, match=r"coord_system='utm' is not a known"):
        read_accounts(pd.DataFrame({"id": ["a"], "lon": [1.0], "lat": [2.0]}), coord_system="utm")


def test_reps_home_converted_from_gcj02() -> None:
    lon, lat = coords.convert(BEIJING[0], BEIJING[1], "wgs84", "gcj02")
    reps = read_reps(pd.DataFrame({"id": ["R1"], "经度": [lon], "纬度": [lat]}),
                     coord_system="gcj02")
    np.testing.assert_allclose(reps.home_lonlat, [BEIJING], atol=1e-7)


# ----------------------------------------------------------------------------------------------
# Excel, GeoPackage, GeoJSON, Parquet, shapefile


def test_excel_cells_are_read_as_text(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [
        ["编号", "经度", "纬度", "潜力", "锁定", "负责人", "note"],
        ["00123", 113.2644, 23.1291, 5, True, "R1", dt.date(2024, 5, 1)],
        [None, None, None, None, None, None, None],
        [124, 116.4074, 39.9042, 2.5, False, None, "NA"],
    ], title="客户")
    table = read_table(path)
    assert table.index.tolist() == [2, 4]  # the empty row 3 is skipped, not renumbered
    assert table.iloc[0].tolist() == ["00123", "113.2644", "23.1291", "5", "true", "R1",
                                      "2024-05-01"]
    acc = read_accounts(path, sheet="客户")
    assert acc.ids.tolist() == ["00123", "124"]
    assert acc.frame["locked"].tolist() == [True, False]
    assert acc.frame["note"].tolist()[1] is None


def test_excel_errors_name_spreadsheet_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [
        [None], ["id", "lon", "lat", "potential"], ["A", 113.2644, 23.1291, -1],
    ])
    with pytest.raises(InvalidInputError,
                       match=r"Account 'A' \(row 3\): potential='-1'; expected >= 0"):
        read_accounts(path)


def test_excel_times_for_reps(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "r.xlsx", [
        ["id", "lon", "lat", "work_start", "work_end"],
        ["R1", 113.2644, 23.1291, dt.time(8, 0), "18:00"],
    ])
    reps = read_reps(path)
    assert reps.frame[["work_start", "work_end"]].iloc[0].tolist() == [480, 1080]


def test_excel_sheet_errors(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "a.xlsx", [["id"]], title="only")
    with pytest.raises(InvalidInputError, match=r"no sheet 'other'; its sheets are \['only'\]"):
        read_table(path, sheet="other")
    with pytest.raises(InvalidInputError, match=r"no sheet 3"):
        read_table(path, sheet=3)
    with pytest.raises(InvalidInputError, match="has a header but no data rows"):
        read_table(path)
    (tmp_path / "broken.xlsx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InvalidInputError, match="cannot be read as an Excel workbook"):
        read_table(tmp_path / "broken.xlsx")


def test_geopackage_layers(tmp_path: Path) -> None:
    acc = read_accounts(io.StringIO(ACC_CSV))
    reps = Reps.from_frame(pd.DataFrame({"id": ["R1"], "lon": [113.0], "lat": [23.0]}))
    path = tmp_path / "plan.gpkg"
    write_accounts(acc, path)
    write_reps(reps, path)
    # Each reader picks its own layer; a plain read must be told which.
    assert len(read_accounts(path)) == 3 and len(read_reps(path)) == 1
    assert read_table(path, layer="accounts").index.tolist() == [1, 2, 3]  # fid
    with pytest.raises(InvalidInputError, match=r"several layers \['accounts', 'reps'\]"):
        read_table(path)
    with pytest.raises(InvalidInputError, match=r"no layer 'x'; its layers are"):
        read_accounts(path, layer="x")
    (tmp_path / "broken.gpkg").write_bytes(b"not a database")
    with pytest.raises(InvalidInputError, match="cannot be read as a spatial file"):
        read_accounts(tmp_path / "broken.gpkg")


def test_shapefile_is_read_but_not_written(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame({"id": ["a"], "名称": ["甲"]}, geometry=[shapely.Point(GUANGZHOU)],
                           crs="EPSG:4326")
    gdf.to_file(tmp_path / "a.shp", encoding="utf-8")
    acc = read_accounts(tmp_path / "a.shp")
    assert acc.frame[["id", "name"]].iloc[0].tolist() == ["a", "甲"]
    assert acc.lonlat.tolist() == [list(GUANGZHOU)]
    with pytest.raises(InvalidInputError, match="shapefiles cut column names"):
        write_accounts(acc, tmp_path / "b.shp")


def test_parquet_rows_are_positions(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a", "a"], "lon": list(GUANGZHOU[:1]) * 2,
                          "lat": list(GUANGZHOU[1:]) * 2})
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    with pytest.raises(InvalidInputError, match=r"Account 'a' \(row 1\): id='a'; duplicate id "
                                                r"\(also in row 0\)"):
        read_accounts(tmp_path / "a.parquet")
    frame.assign(id=["a", "b"]).set_index("id").to_parquet(tmp_path / "b.parquet")
    assert read_accounts(tmp_path / "b.parquet").ids.tolist() == ["a", "b"]


def test_write_errors(tmp_path: Path) -> None:
    acc = read_accounts(io.StringIO(ACC_CSV))
    with pytest.raises(InvalidInputError, match=r"unsupported file type '\.doc'"):
        write_accounts(acc, tmp_path / "a.doc")
    with pytest.raises(InvalidInputError, match="cannot be written"):
        write_csv(acc, tmp_path / "no" / "such" / "dir.csv")


def test_write_csv_has_bom_and_full_precision(tmp_path: Path) -> None:
    frame = pd.DataFrame({"名称": ["广州"], "x": [0.1 + 0.2]})
    path = write_csv(frame, tmp_path / "out.csv")
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig").splitlines() == ["名称,x", "广州,0.30000000000000004"]


def test_written_reps_times_are_clock_text(tmp_path: Path) -> None:
    reps = Reps.from_frame(pd.DataFrame({"id": ["R1"], "lon": [113.0], "lat": [23.0]}))
    text = write_reps(reps, tmp_path / "r.csv").read_text("utf-8-sig")
    assert "08:30,17:30,mon-fri,11:30,13:30" in text


def test_excel_text_that_looks_like_a_formula_stays_text(tmp_path: Path) -> None:
    acc = read_accounts(pd.DataFrame({"id": ["=1+1"], "lon": [113.0], "lat": [23.0],
                                      "name": ["=HYPERLINK(\"x\")"]}))
    back = read_accounts(write_accounts(acc, tmp_path / "a.xlsx"))
    assert back.frame[["id", "name"]].iloc[0].tolist() == ["=1+1", "=HYPERLINK(\"x\")"]


# ----------------------------------------------------------------------------------------------
# round trips


_CJK = "广州深圳北京上海成都武汉店药房医院诊所中心东西南北第一二三号路街甲乙丙丁"
_TEXT = _CJK + "abcXYZ0189 -_.,;\"'()#&/="
_HOURS = [None, "09:00-17:00", "mon-sat 08:00-20:00", "Mo-Fr 08:30-12:00,13:30-17:30; Sa,Su "
          "closed", "24/7", "closed", "周一至周五 09:00-17:00; 周六 09:00-12:00"]


def _text(alphabet: str = _TEXT, max_size: int = 10) -> st.SearchStrategy[str]:
    # Ids and labels a person might type; the missing-value words are excluded on purpose
    # (they read back as missing, by design).
    return st.text(alphabet, min_size=1, max_size=max_size).filter(
        lambda s: s.strip() == s and s not in MISSING_TOKENS and s.strip() != "")


@st.composite
def accounts_strategy(draw: st.DrawFn) -> Accounts:
    ids = draw(st.lists(_text(_CJK + "0123456789ABCxyz-_", 8), min_size=1, max_size=8,
                        unique=True))
    n = len(ids)

    def column(strategy: st.SearchStrategy[object]) -> list[object]:
        return draw(st.lists(strategy, min_size=n, max_size=n))

    current = column(st.none() | _text())
    frame = pd.DataFrame({
        "id": ids,
        # Within this box every point is in mainland China.
        "lon": column(st.floats(100.0, 115.0)),
        "lat": column(st.floats(25.0, 38.0)),
        "potential": column(st.none() | st.floats(0.0, 1e7)),
        "segment": column(st.sampled_from([None, "A", "B", "C"])),
        "visits": column(st.none() | st.integers(0, 12)),
        "visit_min": column(st.none() | st.floats(0.0, 240.0)),
        "hours": column(st.sampled_from(_HOURS)),
        "city": column(st.none() | _text()),
        "current_rep": current,
        "locked": [draw(st.booleans()) and c is not None for c in current],
        "name": column(_text(max_size=20)),
    })
    return Accounts.from_frame(frame)


def assert_same_accounts(a: Accounts, b: Accounts, *, rtol: float = 0.0) -> None:
    """Same table; numbers exactly (or to ``rtol``), coordinates to 1e-9 degrees."""
    assert list(a.frame.columns) == list(b.frame.columns)
    for col in a.frame.columns:
        x, y = a.frame[col], b.frame[col]
        if col in ("lon", "lat"):
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=0, atol=1e-9)
        elif pd.api.types.is_numeric_dtype(x.dtype):
            np.testing.assert_allclose(y.to_numpy(float), x.to_numpy(float), rtol=rtol, atol=0,
                                       err_msg=col)
        else:
            assert y.tolist() == x.tolist(), col
    assert a.hours_profiles == b.hours_profiles
    assert a.hours_code.tolist() == b.hours_code.tolist()


_ROUND_TRIP = settings(max_examples=12, deadline=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("fmt", ["csv-bom", "csv-utf8", "csv-gbk", "tsv", "xlsx", "gpkg",
                                 "geojson", "parquet"])
@_ROUND_TRIP
@given(acc=accounts_strategy())
def test_accounts_round_trip(tmp_path: Path, fmt: str, acc: Accounts) -> None:
    if fmt in ("csv-utf8", "csv-gbk"):
        # As other tools save it: no BOM, or the GBK of Chinese-locale Excel.
        path = tmp_path / "a.csv"
        acc.frame.to_csv(path, index=False, encoding=fmt.removeprefix("csv-"))
    else:
        path = write_accounts(acc, tmp_path / f"a.{'csv' if fmt == 'csv-bom' else fmt}")
    # openpyxl writes numbers with 16 significant digits, one short of an exact double.
    assert_same_accounts(acc, read_accounts(path), rtol=1e-15 if fmt == "xlsx" else 0.0)


@st.composite
def reps_strategy(draw: st.DrawFn) -> Reps:
    ids = draw(st.lists(_text("0123456789RABC王李", 6), min_size=1, max_size=5, unique=True))
    rows = []
    for rid in ids:
        start = draw(st.integers(5 * 60, 10 * 60))
        rows.append({
            "id": rid, "home_lon": draw(st.floats(100.0, 115.0)),
            "home_lat": draw(st.floats(25.0, 38.0)),
            "work_start": f"{start // 60}:{start % 60:02d}",
            # The default lunch window (11:30-13:30) must fit inside the working day.
            "work_end": draw(st.none() | st.integers(max(start + 60, 13 * 60 + 15), 23 * 60)),
            "working_days": draw(st.sampled_from([None, "mon-fri", "mon-sat", "周一至周五"])),
            "capacity": draw(st.none() | st.floats(0.1, 2.0)),
            "max_nights_week": draw(st.none() | st.integers(0, 5)),
            "province": draw(st.sampled_from([None, "44", "广东", "110000"])),
            "name": draw(_text()),
        })
    return Reps.from_frame(pd.DataFrame(rows))


@pytest.mark.parametrize("ext", ["csv", "xlsx", "gpkg", "geojson", "parquet"])
@_ROUND_TRIP
@given(reps=reps_strategy())
def test_reps_round_trip(tmp_path: Path, ext: str, reps: Reps) -> None:
    back = read_reps(write_reps(reps, tmp_path / f"r.{ext}"))
    pd.testing.assert_frame_equal(back.frame, reps.frame, check_dtype=False, check_exact=False,
                                  rtol=0, atol=1e-9)


def test_hours_day_columns_round_trip_through_hours(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": ["a"], "lon": [GUANGZHOU[0]], "lat": [GUANGZHOU[1]],
                          "hours_sat": ["09:00-12:00"]})
    acc = read_accounts(frame)
    back = read_accounts(write_accounts(acc, tmp_path / "a.csv"))
    assert back.frame["hours"].tolist() == ["mon-fri 09:00-17:00; sat 09:00-12:00"]


def test_no_warning_for_plain_points(tmp_path: Path) -> None:
    acc = read_accounts(io.StringIO(ACC_CSV))
    path = write_accounts(acc, tmp_path / "a.geojson")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_accounts(path)
