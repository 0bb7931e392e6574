"""Validation and defaults of the domain records (territory.model)."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
import pytest

from territory.errors import MAX_LISTED, InvalidInputError
from territory.hours import WeekHours
from territory.model import Accounts, Calendar, Reps, SegmentRules

# A few real places (WGS-84) and their GB/T 2260 province codes.
GUANGZHOU = (113.2644, 23.1291, "44")
BEIJING = (116.4074, 39.9042, "11")
SHANGHAI = (121.4737, 31.2304, "31")
CHENGDU = (104.0665, 30.5723, "51")
WUHAN = (114.3055, 30.5928, "42")
URUMQI = (87.6168, 43.8256, "65")
PLACES = [GUANGZHOU, BEIJING, SHANGHAI, CHENGDU, WUHAN]


def accounts_frame(n: int = 5, **columns: object) -> pd.DataFrame:
    """``n`` accounts on real places (cycling through PLACES), plus ``columns``."""
    frame = pd.DataFrame({
        "id": [f"A{i + 1}" for i in range(n)],
        "lon": [PLACES[i % len(PLACES)][0] for i in range(n)],
        "lat": [PLACES[i % len(PLACES)][1] for i in range(n)],
    })
    for k, v in columns.items():
        frame[k] = v
    return frame


def problems_of(exc: pytest.ExceptionInfo[InvalidInputError]) -> list[tuple[str | None, str]]:
    return [(p.id, p.field) for p in exc.value.problems]


# ----------------------------------------------------------------------------------------------
# accounts: defaults


def test_minimal_accounts_get_documented_defaults() -> None:
    acc = Accounts.from_frame(accounts_frame(10, potential=[10.0, 9, 8, 7, 6, 5, 4, 3, 2, 1]))
    f = acc.frame
    # Top 20 % A, next 30 % B, rest C by potential.
    assert f["segment"].tolist() == ["A"] * 2 + ["B"] * 3 + ["C"] * 5
    assert f["visits"].tolist() == [4] * 2 + [2] * 3 + [1] * 5
    assert f["visit_min"].tolist() == [40.0] * 2 + [30.0] * 3 + [20.0] * 5
    assert set(f["hours"]) == {"mon-fri 09:00-17:00"}
    assert acc.hours_profiles == (WeekHours.uniform([(540, 1020)], (0, 1, 2, 3, 4)),)
    assert acc.hours_code.tolist() == [0] * 10
    assert f["province"].tolist() == [p[2] for p in PLACES] * 2
    assert f["city"].tolist() == [""] * 10
    assert f["current_rep"].tolist() == [""] * 10
    assert f["locked"].tolist() == [False] * 10
    assert list(f.columns) == ["id", "lon", "lat", "potential", "segment", "visits",
                               "visit_min", "hours", "province", "city", "current_rep", "locked"]
    assert f["visits"].dtype == np.int64
    assert isinstance(f.index, pd.RangeIndex)


def test_segment_rank_is_by_potential_not_position() -> None:
    acc = Accounts.from_frame(accounts_frame(10, potential=[1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
    assert acc.frame["segment"].tolist() == ["C"] * 5 + ["B"] * 3 + ["A"] * 2


def test_default_potential_is_one_and_ties_break_by_position() -> None:
    acc = Accounts.from_frame(accounts_frame(10))
    assert acc.potential.tolist() == [1.0] * 10
    assert acc.frame["segment"].tolist() == ["A"] * 2 + ["B"] * 3 + ["C"] * 5


def test_custom_segment_rules() -> None:
    rules = SegmentRules(names=("X", "Y"), shares=(0.5,), visits={"X": 8, "Y": 3},
                         visit_min={"X": 60.0, "Y": 15.0}, hours="08:00-12:00")
    acc = Accounts.from_frame(accounts_frame(4, potential=[1.0, 4, 3, 2]), rules=rules)
    assert acc.frame["segment"].tolist() == ["Y", "X", "X", "Y"]
    assert acc.visits.tolist() == [3, 8, 8, 3]
    assert acc.visit_min.tolist() == [15.0, 60.0, 60.0, 15.0]
    assert acc.frame["hours"].iloc[0] == "mon-fri 08:00-12:00"


def test_given_values_win_and_blanks_take_defaults() -> None:
    frame = accounts_frame(
        5, potential=["5", "", None, "2.5", "NaN"],
        segment=["C", "", "A", None, " B "],
        visits=["3", "", np.nan, "  ", "0"],
        visit_min=[None, "45", "", "12.5", np.nan],
    )
    # "NaN" text is not blank: it is a value that is not a number.
    with pytest.raises(InvalidInputError, match=r"potential='NaN'; not a number"):
        Accounts.from_frame(frame)
    frame["potential"] = ["5", "", None, "2.5", "1"]
    f = Accounts.from_frame(frame).frame
    assert f["potential"].tolist() == [5.0, 1.0, 1.0, 2.5, 1.0]
    # Blank segments are filled by rank among all five accounts (A: 1 account, B: 1, C: 3):
    # by potential A4 (2.5) is second, so B; A2 (1.0, ties by position) falls in C.
    assert f["segment"].tolist() == ["C", "C", "A", "B", "B"]
    assert f["visits"].tolist() == [3, 1, 4, 2, 0]  # blank texts too, not only NaN
    assert f["visit_min"].tolist() == [20.0, 45.0, 40.0, 12.5, 30.0]


def test_unknown_segment_without_visits_is_reported() -> None:
    with pytest.raises(InvalidInputError,
                       match=r"Account 'A2' \(row 1\): segment='D'; segment has no default visits"):
        Accounts.from_frame(accounts_frame(2, segment=["A", "D"]))
    acc = Accounts.from_frame(accounts_frame(2, segment=["A", "D"], visits=[1, 2],
                                             visit_min=[10, 10]))
    assert acc.frame["segment"].tolist() == ["A", "D"]


def test_ids_are_clean_text() -> None:
    frame = accounts_frame(3)
    frame["id"] = [" 00123 ", "00124", "x"]
    assert Accounts.from_frame(frame).ids.tolist() == ["00123", "00124", "x"]
    frame["id"] = [1, 2, 3]
    assert Accounts.from_frame(frame).ids.tolist() == ["1", "2", "3"]
    frame["id"] = [1.0, 2.0, 3.5]
    assert Accounts.from_frame(frame).ids.tolist() == ["1", "2", "3.5"]


def test_extra_columns_are_kept() -> None:
    acc = Accounts.from_frame(accounts_frame(2, name=["甲", "乙"], sales_2023=[1.5, 2.5]))
    assert acc.frame["name"].tolist() == ["甲", "乙"]
    assert acc.frame["sales_2023"].tolist() == [1.5, 2.5]


def test_city_current_rep_and_locked() -> None:
    acc = Accounts.from_frame(accounts_frame(
        6, city=["广州", None, 440100, "", "x", "y"],
        current_rep=["R1", "R2", None, "", "R3", "R4"],
        locked=["是", "yes", "", None, "1", True]))
    f = acc.frame
    assert f["city"].tolist() == ["广州", "", "440100", "", "x", "y"]
    assert f["current_rep"].tolist() == ["R1", "R2", "", "", "R3", "R4"]
    assert f["locked"].tolist() == [True, True, False, False, True, True]
    bools = Accounts.from_frame(accounts_frame(2, current_rep=["R1", ""],
                                               locked=[True, False]))
    assert bools.frame["locked"].dtype == bool


def test_locked_needs_a_current_rep_and_a_readable_value() -> None:
    with pytest.raises(InvalidInputError) as exc:
        Accounts.from_frame(accounts_frame(3, current_rep=["R1", "", "R1"],
                                           locked=["true", "true", "maybe"]))
    msg = str(exc.value)
    assert "Account 'A2' (row 1): locked=True; locked but no current_rep" in msg
    assert "Account 'A3' (row 2): locked='maybe'; expected true/false" in msg


# ----------------------------------------------------------------------------------------------
# accounts: opening hours


def test_hours_column_blank_is_default_and_texts_share_profiles() -> None:
    acc = Accounts.from_frame(accounts_frame(
        4, hours=["", "09:00-17:00", "mon-fri 09:00-17:00", "Sa,Su 10:00-14:00"]))
    assert acc.frame["hours"].tolist() == ["mon-fri 09:00-17:00"] * 3 + ["sat,sun 10:00-14:00"]
    assert len(acc.hours_profiles) == 2
    assert acc.hours_code.tolist() == [0, 0, 0, 1]
    assert acc.hours_of(3).open_days() == (5, 6)


def test_per_weekday_hours_override_single_days() -> None:
    frame = accounts_frame(
        3, hours=["08:00-12:00", None, None],
        hours_sat=["09:00-11:00", None, "10:00-12:00"],
        hours_mon=[None, "closed", ""])
    acc = Accounts.from_frame(frame)
    assert acc.frame["hours"].tolist() == [
        "mon-fri 08:00-12:00; sat 09:00-11:00",
        "tue-fri 09:00-17:00",
        "mon-fri 09:00-17:00; sat 10:00-12:00",
    ]
    # Folded into "hours", so not kept as extra columns.
    assert "hours_sat" not in acc.frame and "hours_mon" not in acc.frame
    assert acc.hours_of(1).on(0) == ()


def test_per_weekday_hours_alone_keep_the_default_on_other_days() -> None:
    acc = Accounts.from_frame(accounts_frame(2, hours_sun=["09:00-12:00,14:00-16:00", None]))
    assert acc.hours_of(0).days == (((540, 1020),),) * 5 + ((), ((540, 720), (840, 960)))
    assert acc.hours_of(1) == WeekHours.parse("09:00-17:00")


def test_bad_hours_name_the_column_and_value() -> None:
    with pytest.raises(InvalidInputError) as exc:
        Accounts.from_frame(accounts_frame(3, hours=["25:00-26:00", "ok 09:00", "09:00-17:00"],
                                           hours_mon=[None, None, "9-8"]))
    msg = str(exc.value)
    assert "Account 'A1' (row 0): hours='25:00-26:00'; cannot read opening hours" in msg
    assert "Account 'A2' (row 1): hours='ok 09:00'; cannot read opening hours" in msg
    assert "Account 'A3' (row 2): hours_mon='9-8'; cannot read opening hours: window '9-8' " \
           "ends before it starts" in msg


# ----------------------------------------------------------------------------------------------
# accounts: validation messages


def test_negative_potential_message_names_row_id_value_and_fix() -> None:
    frame = accounts_frame(3, potential=[1.0, -2.0, 3.0])
    frame.index = [1032, 1033, 1034]
    with pytest.raises(InvalidInputError,
                       match=r"Account 'A2' \(row 1033\): potential=-2\.0; expected >= 0"):
        Accounts.from_frame(frame)


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("potential", ["1", "abc"], r"potential='abc'; not a number"),
        ("potential", ["1", "inf"], r"potential='inf'; infinite"),
        ("visits", ["1", "-1"], r"visits='-1'; expected >= 0"),
        ("visits", ["1", "1.5"], r"visits='1\.5'; expected a whole number"),
        ("visit_min", ["1", "-5"], r"visit_min='-5'; expected >= 0"),
        ("visit_min", [10, "many"], r"visit_min='many'; not a number"),
        ("province", ["44", "Atlantis"], r"province='Atlantis'; unknown province"),
        ("lon", [113.26, "east"], r"lon='east'; not a number"),
        ("lat", [23.1, None], r"lat=nan; missing; give a number"),
    ],
)
def test_invalid_values_are_reported(column: str, values: list[object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=r"Account 'A2' \(row 1\): " + message):
        Accounts.from_frame(accounts_frame(2, **{column: values}))


def test_duplicate_and_missing_ids() -> None:
    frame = accounts_frame(5)
    frame["id"] = ["A", "B", "A", None, "A"]
    with pytest.raises(InvalidInputError) as exc:
        Accounts.from_frame(frame)
    msg = str(exc.value)
    assert "Account 'A' (row 0): id='A'; duplicate id (also in row 2, 4)" in msg
    assert "Account 'A' (row 2): id='A'; duplicate id (also in row 0, 4)" in msg
    assert "Account 'A' (row 4): id='A'; duplicate id (also in row 0, 2)" in msg
    assert "row 3: id=None; missing id" in msg
    assert "ids must be unique" in msg


def test_duplicate_ids_with_text_row_labels() -> None:
    frame = accounts_frame(2)
    frame["id"] = ["A", "A"]
    frame.index = ["first", "second"]
    with pytest.raises(InvalidInputError, match=r"duplicate id \(also in row second\)"):
        Accounts.from_frame(frame)


def test_all_problems_are_listed_in_one_error() -> None:
    frame = accounts_frame(4, potential=[-1.0, 1, 1, 1], visits=[1, 1.5, 1, 1])
    frame.loc[2, "lat"] = np.nan
    frame.loc[3, "id"] = "A1"
    with pytest.raises(InvalidInputError) as exc:
        Accounts.from_frame(frame)
    assert sorted(problems_of(exc)) == sorted([
        ("A1", "id"), ("A1", "id"), ("A3", "lat"), ("A1", "potential"), ("A2", "visits")])
    assert str(exc.value).startswith("5 problem(s) in the accounts table (4 rows)")
    assert exc.value.to_dict()["code"] == 2


def test_message_is_truncated_after_max_listed() -> None:
    n = MAX_LISTED + 5
    with pytest.raises(InvalidInputError, match=r"\.\.\. and 5 more") as exc:
        Accounts.from_frame(accounts_frame(n, potential=[-1.0] * n))
    assert len(exc.value.problems) == n


def test_coordinates_swapped_out_of_range_and_outside_china() -> None:
    frame = accounts_frame(5)
    frame["lon"] = [GUANGZHOU[1], URUMQI[1], 200.0, 2.3522, GUANGZHOU[0]]
    frame["lat"] = [GUANGZHOU[0], URUMQI[0], 95.0, 48.8566, float("inf")]
    with pytest.raises(InvalidInputError) as exc:
        Accounts.from_frame(frame)
    msg = str(exc.value)
    assert "Account 'A1' (row 0): lon,lat='(23.1291, 113.2644)'; longitude and latitude " \
           "look swapped (latitude beyond 90)" in msg
    assert "Account 'A2' (row 1): lon,lat='(43.8256, 87.6168)'; longitude and latitude look " \
           "swapped (the point lies in China the other way round)" in msg
    assert "Account 'A3' (row 2): lon,lat='(200.0, 95.0)'; outside the valid range" in msg
    assert "Account 'A4' (row 3): lon,lat='(2.3522, 48.8566)'; outside China" in msg
    assert "allow_outside_china=True" in msg
    assert "Account 'A5' (row 4): lat=inf; infinite" in msg


def test_allow_outside_china() -> None:
    frame = accounts_frame(2)
    frame.loc[1, ["lon", "lat"]] = [2.3522, 48.8566]
    acc = Accounts.from_frame(frame, allow_outside_china=True)
    assert acc.province.tolist() == ["44", ""]


def test_provinces_normalised_and_filled() -> None:
    acc = Accounts.from_frame(accounts_frame(4, province=["广东", "110000", None, 31]))
    assert acc.province.tolist() == ["44", "11", "31", "31"]


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (pd.DataFrame(columns=["id", "lon", "lat"]), "No accounts: the table is empty"),
        (pd.DataFrame({"id": ["a"], "x": [1.0]}),
         r"lacks required column\(s\) \['lon', 'lat'\]; its columns are \['id', 'x'\]"),
        (pd.DataFrame([["a", 113.0, 23.0, 1]], columns=["id", "lon", "lat", "lon"]),
         r"several columns named \['lon'\]"),
    ],
)
def test_table_level_errors(frame: pd.DataFrame, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Accounts.from_frame(frame)


def test_unreadable_default_hours_in_rules() -> None:
    with pytest.raises(InvalidInputError, match=r"SegmentRules.hours='9 to 5' cannot be read"):
        Accounts.from_frame(accounts_frame(1), rules=SegmentRules(hours="9 to 5"))


def test_not_a_frame() -> None:
    with pytest.raises(InvalidInputError, match="Expected a table of accounts, got list"):
        Accounts.from_frame([1, 2])  # type: ignore[arg-type]


def test_subset_and_with_columns() -> None:
    acc = Accounts.from_frame(accounts_frame(5, hours=["closed", "", "", "", "24/7"]))
    sub = acc.subset([4, 0])
    assert sub.ids.tolist() == ["A5", "A1"]
    assert sub.hours_of(0).open_days() == tuple(range(7))
    assert sub.hours_of(1).open_days() == ()
    assert acc.with_columns(potential=np.arange(5.0)).potential.tolist() == [0, 1, 2, 3, 4]
    assert acc.lonlat.shape == (5, 2)


# ----------------------------------------------------------------------------------------------
# reps


def reps_frame(n: int = 2, **columns: object) -> pd.DataFrame:
    frame = pd.DataFrame({
        "id": [f"R{i + 1}" for i in range(n)],
        "home_lon": [PLACES[i % len(PLACES)][0] for i in range(n)],
        "home_lat": [PLACES[i % len(PLACES)][1] for i in range(n)],
    })
    for k, v in columns.items():
        frame[k] = v
    return frame


def test_reps_defaults() -> None:
    reps = Reps.from_frame(reps_frame(1))
    row = reps.frame.iloc[0].to_dict()
    assert row == {
        "id": "R1", "home_lon": GUANGZHOU[0], "home_lat": GUANGZHOU[1],
        "work_start": 510, "work_end": 1050, "working_days": "mon-fri",
        "lunch_start": 690, "lunch_end": 810, "lunch_min": 45.0, "max_work_min": 540.0,
        "capacity": 1.0, "max_nights_week": 2, "province": "", "region": "",
    }
    assert reps.workdays_mask.tolist() == [[True] * 5 + [False] * 2]
    # 4 weeks of 5 days, (540 - 45) minutes a day.
    assert reps.available_minutes(Calendar.weekly(4)).tolist() == [20 * 495.0]


def test_reps_accept_lon_lat_and_fill_region() -> None:
    frame = reps_frame(2).rename(columns={"home_lon": "lon", "home_lat": "lat"})
    frame["province"] = ["广东", ""]
    reps = Reps.from_frame(frame)
    assert reps.home_lonlat.tolist() == [[GUANGZHOU[0], GUANGZHOU[1]], [BEIJING[0], BEIJING[1]]]
    assert reps.frame["province"].tolist() == ["44", ""]
    assert reps.frame["region"].iloc[0] != "" and reps.frame["region"].iloc[1] == ""


def test_reps_clock_forms() -> None:
    reps = Reps.from_frame(reps_frame(
        5, work_start=["8:00", "0800", "08:00:00", dt.time(8, 0), 480],
        work_end=["18:00", None, "", "17:30", 1080]))
    assert reps.frame["work_start"].tolist() == [480] * 5
    assert reps.frame["work_end"].tolist() == [1080, 1050, 1050, 1050, 1080]
    assert reps.frame["max_work_min"].tolist() == [600.0, 570.0, 570.0, 570.0, 600.0]


def test_reps_other_fields() -> None:
    reps = Reps.from_frame(reps_frame(
        2, working_days=["周一至周六", None], lunch_min=[30, ""], max_work_min=[480, None],
        capacity=[0.5, None], max_nights_week=["0", None], region=["South", ""]))
    f = reps.frame
    assert f["working_days"].tolist() == ["mon-sat", "mon-fri"]
    assert f["lunch_min"].tolist() == [30.0, 45.0]
    assert f["max_work_min"].tolist() == [480.0, 540.0]
    assert f["capacity"].tolist() == [0.5, 1.0]
    assert f["max_nights_week"].tolist() == [0, 2]
    assert f["region"].tolist() == ["South", ""]


def test_reps_bad_times_are_reported_once() -> None:
    with pytest.raises(InvalidInputError) as exc:
        Reps.from_frame(reps_frame(3, work_start=["25:00", "18:00", "08:00"],
                                   lunch_start=[None, None, "12:00"],
                                   lunch_end=[None, None, "12:30"]))
    msg = str(exc.value)
    assert "Rep 'R1' (row 0): work_start='25:00'; not a time of day" in msg
    assert "Rep 'R2' (row 1): work_start,work_end='18:00-17:30'; working day ends before it " \
           "starts" in msg
    assert "Rep 'R3' (row 2): lunch_start,lunch_end='12:00-12:30 for lunch_min=45'; lunch " \
           "window shorter than lunch_min" in msg
    # The unreadable start must not also count as a day ending before it starts.
    assert problems_of(exc).count(("R1", "work_start,work_end")) == 0
    assert len(exc.value.problems) == 3


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("working_days", ["mon-fri", "funday"], r"working_days='funday'; cannot read working"),
        ("working_days", ["mon-fri", "none"], r"working_days='none'; cannot read working"),
        ("capacity", [1, 0], r"capacity=0; expected > 0"),
        ("max_nights_week", [1, 1.5], r"max_nights_week=1\.5; expected a whole number"),
        ("lunch_min", [30, -1], r"lunch_min=-1; expected >= 0"),
        ("max_work_min", [30, "lots"], r"max_work_min='lots'; not a number"),
        ("province", ["44", "Atlantis"], r"province='Atlantis'; unknown province"),
    ],
)
def test_reps_invalid_values(column: str, values: list[object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=r"Rep 'R2' \(row 1\): " + message):
        Reps.from_frame(reps_frame(2, **{column: values}))


def test_reps_without_home() -> None:
    frame = reps_frame(3).astype({"home_lon": object})
    frame.loc[1, "home_lat"] = None
    frame.loc[2, "home_lon"] = "  "
    with pytest.raises(InvalidInputError) as exc:
        Reps.from_frame(frame)
    assert problems_of(exc) == [("R2", "home_lon,home_lat"), ("R3", "home_lon,home_lat")]
    assert "rep has no home; give the home (or office) coordinates" in str(exc.value)
    with pytest.raises(InvalidInputError, match="has no home coordinates"):
        Reps.from_frame(pd.DataFrame({"id": ["R1"], "home_lon": [113.0]}))


def test_reps_duplicate_ids_and_outside_china() -> None:
    frame = reps_frame(3)
    frame["id"] = ["R1", "R1", "R3"]
    frame.loc[2, ["home_lon", "home_lat"]] = [2.3522, 48.8566]
    with pytest.raises(InvalidInputError) as exc:
        Reps.from_frame(frame)
    msg = str(exc.value)
    assert "Rep 'R1' (row 1): id='R1'; duplicate id (also in row 0)" in msg
    assert "Rep 'R3' (row 2): home_lon,home_lat='(2.3522, 48.8566)'; outside China" in msg
    assert len(Reps.from_frame(frame.assign(id=["a", "b", "c"]),
                               allow_outside_china=True)) == 3


def test_reps_table_level_errors() -> None:
    with pytest.raises(InvalidInputError, match="No reps"):
        Reps.from_frame(pd.DataFrame(columns=["id"]))
    with pytest.raises(InvalidInputError, match="lacks the 'id' column"):
        Reps.from_frame(pd.DataFrame({"name": ["x"], "lon": [113.0], "lat": [23.0]}))


# ----------------------------------------------------------------------------------------------
# scale


@pytest.mark.slow
def test_from_frame_million_rows_timing() -> None:
    from territory import china

    n = 1_000_000
    rng = np.random.default_rng(0)
    places = china.cities()
    k = rng.integers(0, len(places), n)
    frame = pd.DataFrame({
        "id": np.char.add("A", np.arange(n).astype(str)).astype(object),
        "lon": places["lon"].to_numpy(float)[k] + rng.normal(0, 0.01, n),
        "lat": places["lat"].to_numpy(float)[k] + rng.normal(0, 0.01, n),
    })
    china.contains(frame["lon"].to_numpy()[:10], frame["lat"].to_numpy()[:10])  # load geometry
    start = time.perf_counter()
    acc = Accounts.from_frame(frame, allow_outside_china=True)
    elapsed = time.perf_counter() - start
    print(f"\nAccounts.from_frame, {n:,} rows of id/lon/lat: {elapsed:.2f} s")
    assert len(acc) == n
    assert elapsed < 120  # a sanity bound only; the printed time is the measurement
