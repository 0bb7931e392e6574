"""Output writers: CSV, Excel, iCalendar, GIS layers, territory polygons and route lines."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from territory import china
from territory import reports as R
from territory.errors import InvalidInputError

STAMP = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
LONG_NAME = "北京协和医院（东单院区）内科门诊部; 药剂科, 采购\\办公室" * 2


@pytest.fixture()
def schedule() -> pd.DataFrame:
    """Two reps; R1 visits three accounts over two cycle days, with a lunch."""
    return pd.DataFrame({
        "rep_id": ["R1", "R1", "R1", "R1", "R/2"],
        "day": [0, 0, 0, 1, 0],
        "sequence": [1, 2, 3, 1, 1],
        "kind": ["visit", "visit", "lunch", "visit", "visit"],
        "account_id": ["A1", "A2", "", "A3", "A4"],
        "arrival": [540, "10:05", 720, 545, 600],
        "start": [540, "10:10", 720, 550, 600],
        "departure": [570, "10:40", 780, 580, 630],
        "name": [LONG_NAME, "上海第一医药商店", None, "广州药房", "Shop, Ltd"],
        "address": ["东城区帅府园1号", None, None, None, None],
        "lon": [116.4165, 121.4737, np.nan, 113.2644, 104.07],
        "lat": [39.9120, 31.2304, np.nan, 23.1291, 30.67],
    })


# ----------------------------------------------------------------------------------------------
# CSV


def test_assignment_csv_has_bom_and_chinese(tmp_path) -> None:
    frame = pd.DataFrame({"name": ["协和医院", "药房"], "territory": ["T001", "T002"],
                          "account_id": ["00123", "A-2"], "rep_id": ["张伟", "R2"]})
    path = R.write_assignment_csv(frame, tmp_path / "out" / "assignment.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    assert list(back.columns) == ["account_id", "territory", "rep_id", "name"]
    assert back["name"].tolist() == ["协和医院", "药房"]
    assert back["account_id"].tolist() == ["00123", "A-2"]
    assert back["rep_id"].tolist() == ["张伟", "R2"]


def test_assignment_csv_rejects_repeated_accounts(tmp_path) -> None:
    frame = pd.DataFrame({"account_id": ["A", "B", "A"], "territory": ["T1", "T2", "T3"]})
    with pytest.raises(InvalidInputError, match="repeated") as info:
        R.write_assignment_csv(frame, tmp_path / "a.csv")
    assert [p.row for p in info.value.problems] == [0, 2]
    with pytest.raises(InvalidInputError, match="territory"):
        R.write_assignment_csv(frame[["account_id"]], tmp_path / "a.csv")


# ----------------------------------------------------------------------------------------------
# Excel


def test_workbook_formats_and_widths(tmp_path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    territories = pd.DataFrame({
        "territory": ["T001", "T002"],
        "rep_id": ["张伟", "李娜"],
        "potential": [1234.5, 1300.25],
        "potential_dev": [-0.0312, 0.0427],
        "workload_pct": [0.95, 1.02],
        "travel_km": [12345.678, 99.0],
        "work_hours": [151.26, 160.0],
        "centre_lon": [116.41234567, 121.5],
        "accounts": [120, 131],
        "contiguous": [True, False],
    })
    accounts = pd.DataFrame({"account_id": ["A1", "A2"],
                             "name": ["北京协和医院（东单院区）", "=HYPERLINK(\"x\")"],
                             "visit_date": [dt.date(2026, 3, 2), None]})
    sheets = {"summary": pd.DataFrame({"measure": ["potential"], "max_dev": [0.0427]}),
              "territories": territories, "accounts": accounts,
              "bad:name/with*chars?[x]": accounts,
              "A very long sheet name that Excel would refuse": accounts}
    path = R.write_workbook(tmp_path / "plan.xlsx", sheets, title="Plan 2026")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[:3] == ["summary", "territories", "accounts"]
    assert wb.sheetnames[3] == "bad_name_with_chars__x_"
    assert wb.sheetnames[4] == "A very long sheet name that Exc"
    assert wb.properties.title == "Plan 2026"
    ws = wb["territories"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J3"
    assert all(c.font.b for c in ws[1])
    header = [c.value for c in ws[1]]
    assert header == list(territories.columns)
    col = {name: i + 1 for i, name in enumerate(header)}
    assert ws.cell(2, col["rep_id"]).value == "张伟"
    assert ws.cell(2, col["potential_dev"]).number_format == "0.0%"
    assert ws.cell(2, col["potential_dev"]).value == pytest.approx(-0.0312)
    assert ws.cell(2, col["workload_pct"]).number_format == "0.0%"
    assert ws.cell(2, col["travel_km"]).number_format == "#,##0.0"
    assert ws.cell(2, col["work_hours"]).number_format == "#,##0.0"
    assert ws.cell(2, col["centre_lon"]).number_format == "0.000000"
    assert ws.cell(2, col["accounts"]).number_format == "General"
    assert ws.cell(3, col["contiguous"]).value is False
    acc = wb["accounts"]
    # CJK counts double: 12 wide characters need about 24 character cells.
    assert acc.column_dimensions["B"].width >= 24
    assert acc.column_dimensions["A"].width < 15
    assert acc["B2"].value == "北京协和医院（东单院区）"
    assert acc["B3"].value == "=HYPERLINK(\"x\")" and acc["B3"].data_type == "s"
    assert acc["C2"].value.date() == dt.date(2026, 3, 2)
    assert acc["C2"].number_format == "yyyy-mm-dd"


def test_workbook_errors(tmp_path) -> None:
    pytest.importorskip("openpyxl")
    with pytest.raises(InvalidInputError, match="at least one sheet"):
        R.write_workbook(tmp_path / "x.xlsx", {})
    with pytest.raises(InvalidInputError, match="expected a DataFrame"):
        R.write_workbook(tmp_path / "x.xlsx", {"a": [1, 2]})  # type: ignore[dict-item]


def test_sheet_names_are_sanitised_and_unique() -> None:
    assert R.sanitize_sheet_name("a/b:c") == "a_b_c"
    assert R.sanitize_sheet_name("'quoted'") == "quoted"
    assert R.sanitize_sheet_name("History") == "History_"
    assert R.sanitize_sheet_name("") == "Sheet"
    assert R.sanitize_sheet_name("Summary", ["summary"]) == "Summary~2"
    long = R.sanitize_sheet_name("x" * 40, ["x" * 31])
    assert len(long) == 31 and long.endswith("~2")


# ----------------------------------------------------------------------------------------------
# iCalendar


def _unfold(text: str) -> list[str]:
    return text.replace("\r\n ", "").split("\r\n")


def test_ics_text_is_rfc5545_clean(tmp_path, schedule) -> None:
    path = R.write_ics(schedule, tmp_path / "r1.ics", rep_id="R1", start_date="2026-03-06",
                       dtstamp=STAMP)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    for line in lines:
        line.decode("utf-8")  # no line ends inside a multi-byte character
    assert any(line.startswith(b" ") for line in lines)  # the long name was folded
    text = raw.decode("utf-8")
    unfolded = _unfold(text)
    summary = next(line for line in unfolded if line.startswith("SUMMARY:北京"))
    assert summary == ("SUMMARY:" + LONG_NAME.replace("\\", "\\\\").replace(";", "\\;")
                       .replace(",", "\\,"))
    assert "DTSTART;TZID=Asia/Shanghai:20260306T090000" in unfolded
    assert "BEGIN:VTIMEZONE" in unfolded and "TZOFFSETTO:+0800" in unfolded
    assert "GEO:39.912000;116.416500" in unfolded
    assert "DTSTAMP:20260105T080000Z" in unfolded
    assert text.count("BEGIN:VEVENT") == 4


def test_ics_parses_back_with_icalendar(tmp_path, schedule) -> None:
    icalendar = pytest.importorskip("icalendar")
    path = R.write_ics(schedule, tmp_path / "r1.ics", rep_id="R1", start_date="2026-03-06",
                       calendar_name="拜访 R1", dtstamp=STAMP)
    cal = icalendar.Calendar.from_ical(path.read_bytes())
    assert str(cal["X-WR-CALNAME"]) == "拜访 R1"
    tzs = cal.walk("VTIMEZONE")
    assert len(tzs) == 1 and str(tzs[0]["TZID"]) == "Asia/Shanghai"
    events = cal.walk("VEVENT")
    assert len(events) == 4
    shanghai = zoneinfo.ZoneInfo("Asia/Shanghai")
    first = events[0]
    start = first.decoded("DTSTART")
    assert start == dt.datetime(2026, 3, 6, 9, 0, tzinfo=shanghai)
    assert start.utcoffset() == dt.timedelta(hours=8)
    assert first.decoded("DTEND") == dt.datetime(2026, 3, 6, 9, 30, tzinfo=shanghai)
    assert str(first["SUMMARY"]) == LONG_NAME
    assert str(first["LOCATION"]) == "东城区帅府园1号"
    lat, lon = first["GEO"].latitude, first["GEO"].longitude
    assert (float(lat), float(lon)) == pytest.approx((39.912, 116.4165))
    desc = str(first["DESCRIPTION"])
    assert "Visit 1 of 2" in desc and "Planned arrival 09:00" in desc and "\n" in desc
    second = events[1]
    assert "Planned arrival 10:05 (wait 5 min)" in str(second["DESCRIPTION"])
    assert second.decoded("DTSTART") == dt.datetime(2026, 3, 6, 10, 10, tzinfo=shanghai)
    lunch = events[2]
    assert str(lunch["SUMMARY"]) == "Lunch break"
    # Day 1 is the next working day after Friday: Monday.
    assert events[3].decoded("DTSTART") == dt.datetime(2026, 3, 9, 9, 10, tzinfo=shanghai)
    assert len({str(e["UID"]) for e in events}) == 4


def test_ics_uids_are_stable_and_dates_from_calendar(tmp_path, schedule) -> None:
    a = R.write_ics(schedule, tmp_path / "a.ics", rep_id="R1",
                    dates=[dt.date(2026, 3, 6), dt.date(2026, 3, 9)], dtstamp=STAMP)
    later = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    dated = schedule.drop(columns="day").assign(
        date=[dt.date(2026, 3, 6)] * 3 + [dt.date(2026, 3, 9), dt.date(2026, 3, 6)])
    b = R.write_ics(dated, tmp_path / "b.ics", rep_id="R1", dtstamp=later)

    def uids(p):
        return [line for line in _unfold(p.read_text(encoding="utf-8"))
                if line.startswith(("UID", "DTSTART"))]

    assert uids(a) == uids(b)


def test_ics_all_writes_one_file_per_rep(tmp_path, schedule) -> None:
    icalendar = pytest.importorskip("icalendar")
    out = R.write_ics_all(schedule, tmp_path, start_date=dt.date(2026, 3, 2), dtstamp=STAMP)
    assert set(out) == {"R1", "R/2"}
    assert out["R/2"] == tmp_path / "calendars" / "R_2.ics"
    cal = icalendar.Calendar.from_ical(out["R/2"].read_bytes())
    (event,) = cal.walk("VEVENT")
    assert str(event["SUMMARY"]) == "Shop, Ltd"
    assert str(cal["X-WR-CALNAME"]) == "Visits R/2"


def test_ics_overnight_and_account_info(tmp_path) -> None:
    icalendar = pytest.importorskip("icalendar")
    sched = pd.DataFrame({"rep_id": ["R1", "R1", "R1"],
                          "date": ["2026-03-02", "2026-03-02", "2026-03-03"],
                          "kind": ["visit", "overnight", "overnight"],
                          "account_id": [7, 7, 7], "start": ["16:00", "19:00", None],
                          "departure": ["16:30", "07:30", None]})
    info = pd.DataFrame({"id": [7], "name": ["兰州药店"], "lon": [103.8], "lat": [36.06]})
    path = R.write_ics(sched, tmp_path / "x.ics", rep_id="R1", account_info=info,
                       dtstamp=STAMP)
    events = icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")
    assert [str(e["SUMMARY"]) for e in events] == ["兰州药店", "Overnight stay: 兰州药店",
                                                  "Overnight stay: 兰州药店"]
    night = events[1]
    assert night.decoded("DTEND") - night.decoded("DTSTART") == dt.timedelta(hours=12,
                                                                            minutes=30)
    assert str(night["TRANSP"]) == "TRANSPARENT"
    assert events[2].decoded("DTSTART") == dt.date(2026, 3, 3)  # all-day without times


def test_ics_reports_bad_rows(tmp_path, schedule) -> None:
    bad = schedule.copy()
    bad.loc[1, "departure"] = "09:00"
    bad.loc[3, "start"] = "25:99"
    with pytest.raises(InvalidInputError) as info:
        R.write_ics(bad, tmp_path / "x.ics", rep_id="R1", start_date="2026-03-02")
    fields = {(p.row, p.field) for p in info.value.problems}
    assert fields == {(1, "departure"), (3, "start")}
    with pytest.raises(InvalidInputError, match="no date"):
        R.write_ics(schedule, tmp_path / "x.ics", rep_id="R1")
    with pytest.raises(InvalidInputError, match="same stop"):
        R.write_ics(pd.concat([schedule, schedule.iloc[:1]]), tmp_path / "x.ics",
                    rep_id="R1", start_date="2026-03-02")


def test_ics_empty_calendar_and_daylight_saving_zone(tmp_path) -> None:
    icalendar = pytest.importorskip("icalendar")
    sched = pd.DataFrame({"rep_id": ["R1", "R1"], "date": ["2026-03-27", "2026-03-30"],
                          "account_id": ["A", "B"], "start": ["09:00", "09:00"],
                          "departure": ["10:00", "10:00"]})
    empty = R.write_ics(sched, tmp_path / "none.ics", rep_id="nobody", dtstamp=STAMP)
    cal = icalendar.Calendar.from_ical(empty.read_bytes())
    assert cal.walk("VEVENT") == [] and len(cal.walk("VTIMEZONE")) == 1
    # Berlin changes its offset on 2026-03-29: times are written in UTC, exactly.
    path = R.write_ics(sched, tmp_path / "berlin.ics", rep_id="R1", tz="Europe/Berlin",
                       dtstamp=STAMP)
    starts = [e.decoded("DTSTART") for e in
              icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT")]
    assert starts == [dt.datetime(2026, 3, 27, 8, tzinfo=dt.UTC),
                      dt.datetime(2026, 3, 30, 7, tzinfo=dt.UTC)]
    with pytest.raises(InvalidInputError, match="time zone"):
        R.write_ics(sched, tmp_path / "x.ics", rep_id="R1", tz="Mars/Base")
    with pytest.raises(InvalidInputError, match=r"day=1.5; expected a whole number") as info:
        R.write_ics(sched.drop(columns="date").assign(day=[0, 1.5]), tmp_path / "x.ics",
                    rep_id="R1", start_date="2026-03-02")
    assert len(info.value.problems) == 1


def test_fold_never_splits_characters() -> None:
    line = "SUMMARY:" + "汉" * 60 + "a" * 3 + "😀" * 20
    folded = R._fold(line)
    parts = folded.encode("utf-8").split(b"\r\n")
    assert all(len(p) <= 75 for p in parts)
    assert all(p.startswith(b" ") for p in parts[1:])
    assert folded.replace("\r\n ", "") == line
    assert R._ics_escape("a,b;c\\d\ne\r\nf") == "a\\,b\\;c\\\\d\\ne\\nf"


def test_sanitize_filename() -> None:
    assert R.sanitize_filename("R/1:a") == "R_1_a"
    assert R.sanitize_filename("张伟") == "张伟"
    assert R.sanitize_filename("CON") == "_CON"
    assert R.sanitize_filename(" .. ") == "_"


# ----------------------------------------------------------------------------------------------
# GIS layers


def _cluster_points(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[116.4, 39.9], [117.2, 39.1], [104.06, 30.67], [87.6, 43.8]])
    pts = np.concatenate([c + rng.normal(0, 0.3, (40, 2)) for c in centres])
    return pts, np.repeat(["T1", "T2", "T3", "T4"], 40)


def test_voronoi_polygons_valid_clipped_and_cover_accounts() -> None:
    pts, lab = _cluster_points()
    lab = lab.astype(object)
    lab[5] = None  # unassigned accounts are ignored
    polys = R.territory_polygons(pts, lab)
    assert polys["territory"].tolist() == ["T1", "T2", "T3", "T4"]
    assert polys["accounts"].tolist() == [39, 40, 40, 40]
    assert polys.crs.to_epsg() == 4326
    assert polys.is_valid.all()
    assert set(polys.geom_type) <= {"Polygon", "MultiPolygon"}
    land = shapely.union_all(china.provinces().geometry.to_numpy()).buffer(0.01)
    assert all(land.contains(g) for g in polys.geometry)
    # Voronoi territories do not overlap, and each holds its own accounts.
    geoms = polys.geometry.to_numpy()
    for i in range(len(geoms)):
        for j in range(i + 1, len(geoms)):
            assert geoms[i].intersection(geoms[j]).area < 1e-6  # float noise only
    for label, geom in zip(polys["territory"], geoms, strict=True):
        mine = pts[lab == label]
        inside = shapely.contains_xy(geom.buffer(1e-6), mine[:, 0], mine[:, 1])
        assert inside.mean() > 0.95  # accounts at sea are outside the land polygons
    # The clip keeps territories within about buffer_km of their accounts.
    far = R.territory_polygons(pts, lab, clip=False)
    assert (far.to_crs(R._ALBERS_CHINA).area > polys.to_crs(R._ALBERS_CHINA).area).all()


def test_hull_polygons() -> None:
    pts, lab = _cluster_points()
    polys = R.territory_polygons(pts, lab, method="hull")
    assert len(polys) == 4 and polys.is_valid.all()
    for label, geom in zip(polys["territory"], polys.geometry, strict=True):
        mine = pts[lab == label]
        assert shapely.contains_xy(geom.buffer(1e-6), mine[:, 0], mine[:, 1]).mean() > 0.95


@pytest.mark.parametrize("method", ["voronoi", "hull"])
@pytest.mark.parametrize("case", ["one", "two", "duplicates", "collinear", "shadowed"])
def test_polygons_robust(method, case) -> None:
    pts = {"one": [[116.4, 39.9]],
           "two": [[116.4, 39.9], [116.5, 39.95]],
           "duplicates": [[116.4, 39.9]] * 3 + [[116.6, 39.9]] * 2,
           "collinear": [[116.0 + 0.1 * i, 39.9] for i in range(8)],
           "shadowed": [[116.4, 39.9]] * 3 + [[116.6, 39.9]]}[case]
    labels = {"one": ["A"], "two": ["A", "B"], "duplicates": ["A", "A", "B", "B", "B"],
              "collinear": ["A"] * 4 + ["B"] * 4, "shadowed": ["A", "A", "B", "A"]}[case]
    polys = R.territory_polygons(np.array(pts), labels, method=method)
    assert polys["territory"].tolist() == sorted(set(labels))
    assert polys.is_valid.all()
    assert not polys.geometry.is_empty.any()
    assert (shapely.area(polys.geometry.to_numpy()) > 0).all()
    assert set(polys.geom_type) <= {"Polygon", "MultiPolygon"}


def test_polygons_accept_integer_labels_and_reject_bad_shapes() -> None:
    pts, _ = _cluster_points()
    labels = np.repeat([0, 1, -1, 2], 40)
    polys = R.territory_polygons(pts, labels)
    assert polys["territory"].tolist() == [0, 1, 2]
    with pytest.raises(InvalidInputError):
        R.territory_polygons(pts[:, :1], labels)
    with pytest.raises(InvalidInputError):
        R.territory_polygons(pts, labels[:-1])


def test_territory_colours_differ_between_neighbours() -> None:
    squares = [shapely.box(x, y, x + 1, y + 1) for x in range(4) for y in range(4)]
    colours = R.territory_colours(squares)
    for i, a in enumerate(squares):
        for j, b in enumerate(squares):
            if i < j and a.intersects(b):
                assert colours[i] != colours[j]
    assert R.territory_colours([]) == []


def test_write_geo_geojson_and_geopackage(tmp_path) -> None:
    import pyogrio

    pts, lab = _cluster_points()
    polys = R.territory_polygons(pts, lab)
    polys["rep_name"] = ["张伟", "李娜", "王芳", "刘洋"]
    polys["members"] = [["a", "b"], [], ["c"], ["d"]]
    gj = R.write_geo(polys, tmp_path / "t.geojson")
    back = gpd.read_file(gj)
    assert back["rep_name"].tolist() == ["张伟", "李娜", "王芳", "刘洋"]
    assert back.crs.to_epsg() == 4326
    gpkg = tmp_path / "plan.gpkg"
    R.write_geo({"territories": polys.to_crs(3857), "accounts": gpd.GeoDataFrame(
        {"id": ["A"]}, geometry=[shapely.Point(116.4, 39.9)])}, gpkg)
    R.write_geo(polys.iloc[:2], gpkg, layer="territories")  # replaces that layer only
    layers = {str(name) for name, _ in pyogrio.list_layers(gpkg)}
    assert layers == {"territories", "accounts"}
    t = gpd.read_file(gpkg, layer="territories")
    assert len(t) == 2 and t.crs.to_epsg() == 4326
    assert t.geometry.iloc[0].bounds[0] == pytest.approx(polys.geometry.iloc[0].bounds[0])
    with pytest.raises(InvalidInputError, match="one layer"):
        R.write_geo({"a": polys, "b": polys}, tmp_path / "x.geojson")
    with pytest.raises(InvalidInputError, match="unsupported"):
        R.write_geo(polys, tmp_path / "x.shp")


# ----------------------------------------------------------------------------------------------
# route lines


def test_route_lines_start_and_end_at_home(schedule) -> None:
    accounts = pd.DataFrame({"id": ["A1", "A2", "A3", "A4"],
                             "lon": [116.0, 116.1, 116.2, 104.0],
                             "lat": [39.0, 39.1, 39.2, 30.6]})
    homes = pd.DataFrame({"id": ["R1", "R/2"], "home_lon": [116.3, 104.1],
                          "home_lat": [39.9, 30.7]})
    sched = schedule.drop(columns=["lon", "lat"]).assign(km=[10.0, 20.0, 0.0, 5.0, 1.0])
    lines = R.route_lines(sched, accounts, homes)
    assert lines[["rep_id", "day", "visits"]].values.tolist() == [
        ["R/2", 0, 1], ["R1", 0, 2], ["R1", 1, 1]]
    assert lines.crs.to_epsg() == 4326
    for rep, geom in zip(lines["rep_id"], lines.geometry, strict=True):
        home = (116.3, 39.9) if rep == "R1" else (104.1, 30.7)
        coords = list(geom.coords)
        assert coords[0] == home and coords[-1] == home
    r1_day0 = lines.iloc[1]
    assert list(r1_day0.geometry.coords)[1:3] == [(116.0, 39.0), (116.1, 39.1)]
    assert r1_day0["km"] == pytest.approx(30.0)
    assert (lines["line_km"] > 0).all()
    assert (lines["start"] == "home").all() and (lines["end"] == "home").all()


def test_route_lines_with_stays() -> None:
    sched = pd.DataFrame({"rep_id": ["R1"] * 3, "day": [0, 0, 1], "sequence": [1, 2, 1],
                          "account_id": ["A", "B", "C"]})
    acc = {"A": (100.0, 30.0), "B": (101.0, 30.0), "C": (102.0, 30.0)}
    stays = pd.DataFrame({"rep_id": ["R1"], "day": [0], "lon": [101.1], "lat": [30.1]})
    lines = R.route_lines(sched, acc, {"R1": (99.0, 30.0)}, stays)
    day0, day1 = lines.geometry
    assert list(day0.coords)[-1] == (101.1, 30.1)
    assert day1.coords[0] == (101.1, 30.1)
    assert list(day1.coords)[-1] == (99.0, 30.0)
    assert lines["end"].tolist() == ["stay", "home"]
    assert lines["start"].tolist() == ["home", "stay"]
    assert "km" not in lines.columns


def test_route_lines_lists_missing_locations() -> None:
    sched = pd.DataFrame({"rep_id": ["R1", "R2"], "day": [0, 0], "sequence": [1, 1],
                          "account_id": ["A", "Z"]})
    with pytest.raises(InvalidInputError) as info:
        R.route_lines(sched, {"A": (100.0, 30.0)}, {"R1": (99.0, 30.0)})
    assert {p.field for p in info.value.problems} == {"rep_id"}
    with pytest.raises(InvalidInputError) as info:
        R.route_lines(sched, {"A": (100.0, 30.0)}, {"R1": (99.0, 30.0), "R2": (1.0, 2.0)})
    assert [p.value for p in info.value.problems] == ["Z"]
