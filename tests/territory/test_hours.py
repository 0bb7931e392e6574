"""Clock times, weekday sets and opening hours (territory.hours)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from territory.hours import (
    WeekHours,
    format_clock,
    format_days,
    parse_clock,
    parse_days,
    parse_windows,
)

MON_FRI = (0, 1, 2, 3, 4)


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("08:30", 510), ("8:30", 510), ("0830", 510), ("8", 480), ("17h30", 1050),
        ("8.30", 510), ("00:00", 0), ("24:00", 1440), (" 09:05 ", 545), ("09：05", 545),
        ("08:30:00", 510),  # spreadsheets export time cells with seconds
        (510, 510), (0, 0), (1440.0, 1440),  # numbers are minutes already
    ],
)
def test_parse_clock(text: str | int | float, minutes: int) -> None:
    assert parse_clock(text) == minutes


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("25:00", "between 00:00 and 24:00"), ("24:01", "between"), ("08:60", "between"),
        ("abc", "like '08:30'"), ("", "like '08:30'"), ("08:30:15", "seconds"),
        (-1, "minutes"), (1441, "minutes"), (float("nan"), "minutes"),
    ],
)
def test_parse_clock_rejects(text: str | int | float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_clock(text)


def test_three_digit_text_is_a_clock_not_minutes() -> None:
    # Documented: text is always a clock time; writers therefore emit "HH:MM".
    assert parse_clock("510") == 5 * 60 + 10


def test_parse_windows_merges_and_sorts() -> None:
    assert parse_windows("14:00-18:00, 09:00-12:00") == ((540, 720), (840, 1080))
    assert parse_windows("09:00-12:00,11:00-13:00") == ((540, 780),)
    assert parse_windows("09:00-12:00,12:00-13:00") == ((540, 780),)  # touching
    assert parse_windows("closed") == ()
    assert parse_windows("") == ()
    assert parse_windows("全天") == ((0, 1440),)


@pytest.mark.parametrize(("text", "match"), [("12:00-09:00", "ends before it starts"),
                                             ("09:00", "window like"),
                                             ("09:00-12:00-13:00", "window like")])
def test_parse_windows_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_windows(text)


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("mon-fri", MON_FRI), ("Mo,We,Fr", (0, 2, 4)), ("周一至周五", MON_FRI), ("1-5", MON_FRI),
        ("fri-mon", (0, 4, 5, 6)), ("every day", tuple(range(7))), ("", ()),
        ("sat sun", (5, 6)), ([4, 0, 0], (0, 4)),
    ],
)
def test_parse_days(text: str | list[int], days: tuple[int, ...]) -> None:
    assert parse_days(text) == days


def test_parse_days_rejects() -> None:
    with pytest.raises(ValueError, match="'funday' is not a weekday"):
        parse_days("mon,funday")
    with pytest.raises(ValueError, match="0 \\(Monday\\) to 6"):
        parse_days([7])


def test_format_days() -> None:
    assert format_days(MON_FRI) == "mon-fri"
    assert format_days((0, 2, 4)) == "mon,wed,fri"
    assert format_days((5, 6)) == "sat,sun"
    assert format_days(()) == "none"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-17:00", {d: ((540, 1020),) for d in MON_FRI}),
        ("mon-fri 09:00-12:00,14:00-18:00; sat 09:00-12:00",
         {**{d: ((540, 720), (840, 1080)) for d in MON_FRI}, 5: ((540, 720),)}),
        ("Mo-Fr 08:30-17:30; Sa,Su closed", {d: ((510, 1050),) for d in MON_FRI}),
        ("Sa, Su 10:00-12:00", {5: ((600, 720),), 6: ((600, 720),)}),
        ("周一至周五 09:00-17:00; 周六 09:00-12:00",
         {**{d: ((540, 1020),) for d in MON_FRI}, 5: ((540, 720),)}),
        ("周一至周五09:00-17:00", {d: ((540, 1020),) for d in MON_FRI}),
        ("mon - fri 9-17", {d: ((540, 1020),) for d in MON_FRI}),
        ("24/7", {d: ((0, 1440),) for d in range(7)}),
        ("closed", {}),
        ("mon-sun 08:00-20:00; sun closed", {d: ((480, 1200),) for d in range(6)}),
    ],
)
def test_weekhours_parse(text: str, expected: dict[int, tuple[tuple[int, int], ...]]) -> None:
    week = WeekHours.parse(text)
    assert week.days == tuple(expected.get(d, ()) for d in range(7))


def test_weekhours_default_days_apply_to_clauses_without_days() -> None:
    week = WeekHours.parse("10:00-16:00", default_days=(5, 6))
    assert week.open_days() == (5, 6)


@pytest.mark.parametrize(("text", "match"), [("", "empty opening hours"),
                                             ("holiday 09:00-12:00", "not a weekday"),
                                             ("mon-fri 17:00-09:00", "ends before")])
def test_weekhours_parse_rejects(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        WeekHours.parse(text)


def test_weekhours_queries() -> None:
    week = WeekHours.parse("mon-fri 09:00-12:00,14:00-18:00")
    assert week.on(0) == ((540, 720), (840, 1080))
    assert week.open_days() == MON_FRI
    assert week.overlap_minutes(0, 660, 900) == 60 + 60
    assert week.overlap_minutes(6, 0, 1440) == 0
    assert str(week) == "mon-fri 09:00-12:00,14:00-18:00"
    assert WeekHours.uniform([(540, 1020)], days=(5,)).open_days() == (5,)
    with pytest.raises(ValueError, match="7 weekdays"):
        WeekHours(((),) * 6)


def test_format_clock() -> None:
    assert format_clock(510) == "08:30"
    assert format_clock(1440) == "24:00"
    assert format_clock(509.6) == "08:30"


_window = st.tuples(st.integers(0, 1439), st.integers(1, 600)).map(
    lambda t: (t[0], min(1440, t[0] + t[1])))
_day = st.lists(_window, max_size=3).map(lambda ws: parse_windows(
    ",".join(f"{format_clock(a)}-{format_clock(b)}" for a, b in ws)))


@given(st.tuples(*[_day] * 7))
def test_weekhours_text_round_trip(days: tuple[tuple[tuple[int, int], ...], ...]) -> None:
    week = WeekHours(days)
    assert WeekHours.parse(str(week)) == week


@given(st.integers(0, 1440))
def test_clock_round_trip(minutes: int) -> None:
    assert parse_clock(format_clock(minutes)) == minutes
