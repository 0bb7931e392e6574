"""Strategies and checks shared by the fuzz tests.

A generated table is a clean table (accounts around Shanghai, reps with homes there) plus a list
of faults. A *bad* fault must make the reader fail with an ``InvalidInputError`` whose problems
(or message) name the row and the field; an *edge* fault (zero measures, closed hours, one
account, every account at one point...) is valid input and must be read. The solver checks then
hold every result to the invariants: each account exactly once (assigned, or unassigned with a
reason), reported tolerances true, routes feasible by the independent checker.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from territory.errors import InvalidInputError, TerritoryError

#: Examples per test in the active profile (``tests/fuzz/conftest.py`` loads it first).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
LONG = PROFILE == "long"

# A box inside Shanghai: every point is in China, a few km apart.
LON0, LAT0 = 121.35, 31.15
SPAN = 0.25

# ----------------------------------------------------------------------------------------------
# faults


@dataclass
class Table:
    """A generated table: its columns (lists of cells), the faults applied and what they must
    produce."""

    columns: dict[str, list[Any]]
    #: (row position, field) pairs that must be named by the error.
    bad_cells: list[tuple[int, str]] = field(default_factory=list)
    #: Column names that must appear in the message (missing or repeated columns, empty table).
    bad_columns: list[str] = field(default_factory=list)
    #: True when the table as a whole is bad (empty, no rows).
    bad_table: bool = False
    notes: list[str] = field(default_factory=list)
    #: Rows already holding a fault: one fault per row, so that none hides another.
    used: set[int] = field(default_factory=set)

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    @property
    def must_fail(self) -> bool:
        return bool(self.bad_cells or self.bad_columns or self.bad_table)

    def __repr__(self) -> str:
        return (f"Table(columns={self.columns!r}, bad_cells={self.bad_cells}, "
                f"bad_columns={self.bad_columns}, notes={self.notes})")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in self.columns.items()})


# Cells that are not numbers, or not finite, or out of any range: (value, what it is).
NOT_A_NUMBER = ["abc", "1,5", "12°", "--", [1, 2], {"x": 1}, "1e999999", "0x1A"]
NONFINITE = [math.inf, -math.inf, "inf", "-Infinity"]
HUGE = [1e300, -1e300, 1e20, 400.0, -200.0]

coords_bad = st.sampled_from([*NOT_A_NUMBER, *NONFINITE, *HUGE])
# 1e300 and 10**30: beyond any sensible bound (they overflowed sums and int64 casts).
measure_bad = st.sampled_from([-1.0, -1e-9, -1e300, "x", math.inf, "-inf", [3], 1e300, 10**30])
count_bad = st.sampled_from([-1, 1.5, "x", math.inf, -3.0, "2.5", 10**30, 372, 1e20])
clock_bad = st.sampled_from(["25:00", "12:60", "abc", "8x30", "-1:00", 99999, "24:01"])
hours_bad = st.sampled_from(["abc", "25:00-26:00", "09:00-", "mon 9-", "17:00-09:00x",
                             "17:00-09:00", "周八 9-5"])


def ids(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


@st.composite
def points(draw: Any, n: int, *, one_point: bool = False) -> tuple[list[float], list[float]]:
    if one_point:
        lon = draw(st.floats(LON0, LON0 + SPAN))
        lat = draw(st.floats(LAT0, LAT0 + SPAN))
        return [lon] * n, [lat] * n
    unit = st.floats(0.0, 1.0, allow_nan=False)
    lon = [LON0 + SPAN * draw(unit) for _ in range(n)]
    lat = [LAT0 + SPAN * draw(unit) for _ in range(n)]
    return lon, lat


@st.composite
def account_tables(draw: Any, *, min_rows: int = 0, max_rows: int = 8, faults: bool = True,
                   edges: bool = True) -> Table:
    """An accounts table with optional columns, edge cases and (with ``faults``) bad cells."""
    n = draw(st.integers(min_rows, max_rows))
    one_point = edges and n > 1 and draw(st.sampled_from([False, False, False, True]))
    lon, lat = draw(points(n, one_point=one_point))
    # Ids as text, or as integers (up to beyond 64 bits: JSON and frames allow them).
    numeric_ids = draw(st.sampled_from([False, False, True]))
    cols: dict[str, list[Any]] = {
        "id": [10**30 + i if i % 2 else i for i in range(n)] if numeric_ids else ids(n, "A-"),
        "lon": lon, "lat": lat}
    t = Table(cols)
    if one_point:
        t.notes.append("all accounts at one point")
    unit = st.floats(0.0, 1.0)
    if draw(st.booleans()):
        zero = edges and draw(st.booleans())
        cols["potential"] = [0.0 if zero else round(100 * draw(unit), 2) for _ in range(n)]
        if zero:
            t.notes.append("zero potential")
    if draw(st.booleans()):
        cols["visits"] = [draw(st.integers(0 if edges else 1, 4)) for _ in range(n)]
    if draw(st.booleans()):
        cols["visit_min"] = [draw(st.sampled_from([0, 1, 15, 30.5, 60] if edges
                                                 else [15, 30.5, 60])) for _ in range(n)]
    if draw(st.booleans()):
        choices = ["09:00-17:00", "mon-fri 08:00-12:00,14:00-18:00", "mon-sun 00:00-24:00"]
        if edges:
            # Opening hours that never meet the working day (08:30-17:30), or never open.
            choices += ["20:00-22:00", "closed", "sat-sun 09:00-17:00", "05:00-06:00"]
        cols["hours"] = [draw(st.sampled_from(choices)) for _ in range(n)]
    if draw(st.booleans()):
        cols["name"] = [draw(st.sampled_from(["药房", "Café", "诊所 No.1", "", None]))
                        for _ in range(n)]
    if faults and n and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            _account_fault(draw, t)
    return t


def _free_row(draw: Any, t: Table) -> int | None:
    free = [r for r in range(t.n) if r not in t.used]
    if not free:
        return None
    row = draw(st.sampled_from(free))
    t.used.add(row)
    return row


def _account_fault(draw: Any, t: Table) -> None:
    cols, n = t.columns, t.n
    kind = draw(st.sampled_from([
        "lon", "lat", "swap", "outside", "dup_id", "no_id", "potential", "visits", "visit_min",
        "hours", "locked", "drop_column", "repeat_column"]))
    row = _free_row(draw, t)
    if row is None or t.bad_columns:  # a missing column ends validation: no fault after it
        return
    if kind in ("lon", "lat"):
        value = draw(st.one_of(coords_bad, st.none(), st.just(""), st.just(math.nan)))
        cols[kind][row] = value
        t.bad_cells.append((row, kind))
    elif kind == "swap":
        cols["lon"][row], cols["lat"][row] = cols["lat"][row], cols["lon"][row]
        t.bad_cells.append((row, "lon"))
    elif kind == "outside":
        cols["lon"][row], cols["lat"][row] = draw(st.sampled_from(
            [(-74.0, 40.7), (2.35, 48.85), (0.0, 0.0), (151.2, -33.9)]))
        t.bad_cells.append((row, "lon"))
    elif kind == "dup_id" and n > 1:
        other = draw(st.sampled_from([r for r in range(n) if r != row]))
        t.used.add(other)
        cols["id"][row] = cols["id"][other]
        t.bad_cells += [(row, "id"), (other, "id")]
    elif kind == "no_id":
        cols["id"][row] = draw(st.sampled_from([None, "", "  ", math.nan]))
        t.bad_cells.append((row, "id"))
    elif kind == "potential":
        cols.setdefault("potential", [1.0] * n)[row] = draw(measure_bad)
        t.bad_cells.append((row, "potential"))
    elif kind == "visits":
        cols.setdefault("visits", [1] * n)[row] = draw(count_bad)
        t.bad_cells.append((row, "visits"))
    elif kind == "visit_min":
        cols.setdefault("visit_min", [20] * n)[row] = draw(measure_bad)
        t.bad_cells.append((row, "visit_min"))
    elif kind == "hours":
        cols.setdefault("hours", ["09:00-17:00"] * n)[row] = draw(hours_bad)
        t.bad_cells.append((row, "hours"))
    elif kind == "locked":
        cols.setdefault("locked", [False] * n)[row] = draw(st.sampled_from([True, "yes", "maybe"]))
        t.bad_cells.append((row, "locked"))
    elif kind == "drop_column":
        name = draw(st.sampled_from(["id", "lon", "lat"]))
        if name in cols:
            del cols[name]
            t.bad_columns.append(name)
    elif kind == "repeat_column":
        t.bad_columns.append(draw(st.sampled_from(["lon", "lat"])))


@st.composite
def rep_tables(draw: Any, *, min_rows: int = 0, max_rows: int = 4, faults: bool = True) -> Table:
    """A reps table with optional columns and (with ``faults``) bad cells."""
    n = draw(st.integers(min_rows, max_rows))
    lon, lat = draw(points(n))
    cols: dict[str, list[Any]] = {"id": ids(n, "R-"), "home_lon": lon, "home_lat": lat}
    t = Table(cols)
    if draw(st.booleans()):
        cols["work_start"] = [draw(st.sampled_from(["08:00", "08:30", "09:00", "8:00"]))
                              for _ in range(n)]
    if draw(st.booleans()):
        cols["work_end"] = [draw(st.sampled_from(["17:00", "18:00", "17:30"])) for _ in range(n)]
    if draw(st.booleans()):
        cols["working_days"] = [draw(st.sampled_from(["mon-fri", "mon-sat", "周一至周五",
                                                      "tue,thu"])) for _ in range(n)]
    if draw(st.booleans()):
        cols["capacity"] = [draw(st.sampled_from([0.5, 1, 1.0, 2])) for _ in range(n)]
    if faults and n and draw(st.booleans()):
        for _ in range(draw(st.integers(1, 3))):
            _rep_fault(draw, t)
    return t


def _rep_fault(draw: Any, t: Table) -> None:
    cols, n = t.columns, t.n
    kind = draw(st.sampled_from(["home_lon", "home_lat", "no_home", "dup_id", "clock", "span",
                                 "capacity", "days", "nights", "lunch_min", "drop_column"]))
    row = _free_row(draw, t)
    if row is None or t.bad_columns:  # a missing column ends validation: no fault after it
        return
    if kind in ("home_lon", "home_lat"):
        cols[kind][row] = draw(st.one_of(coords_bad, st.just(math.inf)))
        t.bad_cells.append((row, kind))
    elif kind == "no_home":
        col = draw(st.sampled_from(["home_lon", "home_lat"]))
        cols[col][row] = draw(st.sampled_from([None, "", math.nan]))
        t.bad_cells.append((row, col))
    elif kind == "dup_id" and n > 1:
        other = draw(st.sampled_from([r for r in range(n) if r != row]))
        t.used.add(other)
        cols["id"][row] = cols["id"][other]
        t.bad_cells += [(row, "id"), (other, "id")]
    elif kind == "clock":
        col = draw(st.sampled_from(["work_start", "work_end", "lunch_start"]))
        cols.setdefault(col, [None] * n)[row] = draw(clock_bad)
        t.bad_cells.append((row, col))
    elif kind == "span":
        cols.setdefault("work_start", ["08:30"] * n)[row] = "18:00"
        cols.setdefault("work_end", ["17:30"] * n)[row] = "09:00"
        t.bad_cells.append((row, "work_start"))
    elif kind == "capacity":
        cols.setdefault("capacity", [1.0] * n)[row] = draw(st.sampled_from(
            [0, 0.0, -1, "x", math.inf]))
        t.bad_cells.append((row, "capacity"))
    elif kind == "days":
        cols.setdefault("working_days", ["mon-fri"] * n)[row] = draw(st.sampled_from(
            ["xyz", "mon-funday", "8"]))
        t.bad_cells.append((row, "working_days"))
    elif kind == "nights":
        cols.setdefault("max_nights_week", [2] * n)[row] = draw(st.sampled_from(
            [-1, 1.5, "many", 8, 10**30]))
        t.bad_cells.append((row, "max_nights_week"))
    elif kind == "lunch_min":
        cols.setdefault("lunch_min", [45] * n)[row] = draw(st.sampled_from([-5, "x", 500]))
        t.bad_cells.append((row, "lunch_min"))
    elif kind == "drop_column":
        name = draw(st.sampled_from(["id", "home_lon", "home_lat"]))
        if name in cols:
            del cols[name]
            # Without home coordinates the reader names both; "home" is in either.
            t.bad_columns.append(name if name == "id" else "home")


# ----------------------------------------------------------------------------------------------
# checks


def frame_of(t: Table) -> pd.DataFrame:
    frame = t.frame()
    for name in t.bad_columns:
        if name in frame.columns:  # "repeat_column": the same column twice
            frame = pd.concat([frame, frame[[name]]], axis=1)
    return frame


def assert_typed(exc: BaseException) -> None:
    """Only the library's own error types may escape."""
    assert isinstance(exc, TerritoryError), f"{type(exc).__name__}: {exc}"


def assert_names(exc: InvalidInputError, t: Table, row_label: Any) -> None:
    """The error names every bad cell's row and field, and every bad column.

    ``row_label(pos)`` is the label the source shows for the row at position ``pos``.
    """
    text = str(exc)
    for pos, col in t.bad_cells:
        if t.bad_columns:
            break  # a missing column stops validation before the rows are looked at
        label = row_label(pos)
        named = any(
            p.row == label
            and (col in str(p.field) or col in str(p.value) or col in p.message)
            for p in exc.problems)
        assert named, f"row {label} field {col!r} not named in:\n{text}"
    if t.bad_columns:
        # Validation stops at the first table-level fault: one of them is named.
        assert any(col in text for col in t.bad_columns), \
            f"none of the columns {t.bad_columns} named in:\n{text}"


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, BaseException | None]:
    """``fn(...)``'s result, or the library error it raised; any other exception fails."""
    try:
        return fn(*args, **kwargs), None
    except TerritoryError as exc:
        return None, exc


def check_read(t: Table, fn: Any, source: Any, row_label: Any, **kwargs: Any) -> Any:
    """Read ``source`` with ``fn``; bad tables must fail naming their faults, clean ones not."""
    result, exc = outcome(fn, source, **kwargs)
    if t.must_fail:
        assert exc is not None, f"accepted a bad table: cells {t.bad_cells}, " \
                                f"columns {t.bad_columns}"
        assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
        assert_names(exc, t, row_label)
        return None
    if exc is not None:
        assert isinstance(exc, InvalidInputError)
        # An empty table is refused (the only refusal of a clean table).
        assert t.n == 0, f"refused a clean table: {exc}"
        return None
    assert len(result) == t.n
    assert [str(i) for i in result.ids] == [str(i) for i in t.columns["id"]]
    return result


def check_partition(scenario: Any, plan: Any, *, calibrated: bool = False) -> None:
    """Every account exactly once; the reported balance and feasibility are true.

    ``calibrated``: the plan comes from ``plan()``, whose workload is the routes' (not the
    estimate ``account_measures`` gives), so that measure is not recomputed.
    """
    from territory.alignment import account_measures

    acc = scenario.accounts
    n = len(acc)
    assert list(plan.account_ids) == list(acc.ids)
    terr = np.asarray(plan.territory)
    assert terr.shape == (n,)
    assert ((terr >= -1) & (terr < plan.n_territories)).all()
    unassigned = list(plan.unassigned["account_id"])
    assert Counter(unassigned) == Counter(acc.ids[terr < 0])
    assert plan.unassigned["reason"].astype(str).str.len().gt(0).all()
    meas = account_measures(scenario, plan.measure_names)
    table = plan.territories
    for a, m in enumerate(plan.measure_names):
        if calibrated and m == "workload":
            continue
        sums = np.bincount(terr[terr >= 0], weights=meas[terr >= 0, a],
                           minlength=plan.n_territories)
        np.testing.assert_allclose(table[m].to_numpy(float), sums, rtol=1e-9, atol=1e-6)
    assert (table["accounts"].to_numpy() == np.bincount(terr[terr >= 0],
                                                        minlength=plan.n_territories)).all()
    devs = np.column_stack([table[f"{m}_dev"].to_numpy(float) for m in plan.measure_names])
    within = (np.abs(devs) <= np.asarray(plan.tolerance) + 1e-9).all()
    if plan.feasible:
        assert within and len(unassigned) == 0
        if plan.contiguous_required:
            assert table["contiguous"].all()
    else:
        assert plan.violations or unassigned


def check_routes(scenario: Any, routes: Any, rep_of: dict[str, str]) -> None:
    """Every assigned account in its rep's plan (visits planned or dropped with a reason) or
    listed as unassigned; every rep's plan valid by the independent checker."""
    from solvers.routing.cycle_check import check_cycle_plan
    from territory.routes import build_rep_problem

    acc = scenario.accounts
    rep_pos = {str(r): k for k, r in enumerate(scenario.reps.ids)}
    routed = Counter(a for r in routes.account_ids for a in routes.account_ids[r])
    listed = Counter(routes.unassigned["account_id"])
    for a in acc.ids:
        if rep_of.get(a):
            assert routed[a] + listed[a] == 1, (a, routed[a], listed[a])
        else:
            assert listed[a] == 1 and routed[a] == 0, a
    assert routes.unassigned["reason"].astype(str).str.len().gt(0).all()
    assert not routes.failed, routes.failed
    index = {a: i for i, a in enumerate(acc.ids)}
    for r, plan in routes.plans.items():
        pos = np.array([index[a] for a in routes.account_ids[r]], dtype=np.int64)
        problem, _ = build_rep_problem(scenario, rep_pos[r], pos)
        errs = check_cycle_plan(problem, plan)
        assert not errs, (r, errs[:5])
    if len(routes.dropped):
        assert routes.dropped["reason"].astype(str).str.len().gt(0).all()


def examples(share: float) -> int:
    """``max_examples`` for a test: ``share`` of the active profile's (at least 3)."""
    from hypothesis import settings

    return max(3, round(settings().max_examples * share))


# ----------------------------------------------------------------------------------------------
# JSON requests


def records(t: Table) -> list[dict[str, Any]]:
    """The table as request records (NaN stays NaN: ``json.dumps`` writes it as ``NaN``)."""
    out = [dict(zip(t.columns, row, strict=True)) for row in zip(*t.columns.values(),
                                                                  strict=True)]
    for col in t.bad_columns:
        alias = {"lon": "lng", "lat": "latitude"}.get(col)
        if alias is not None and col in t.columns:  # "repeat_column": a field given twice
            for rec in out:
                rec[alias] = rec[col]
    return out


def assert_request_blames(exc: InvalidInputError, acc: Table, rep: Table) -> None:
    """A request error blames only faulty records (by position or JSON path) and names at
    least one fault: a bad cell with its field, a bad column, or an empty array."""
    paths = list(getattr(exc, "paths", ())) + [None] * len(exc.problems)
    text = str(exc)
    found = False
    for t, array in ((acc, "accounts"), (rep, "reps")):
        if t.n == 0:
            found |= array in text
        if t.bad_columns:
            found |= any(col in text for col in t.bad_columns)
            continue
        bad_rows = {pos for pos, _ in t.bad_cells}
        for p, path in zip(exc.problems, paths, strict=False):
            if path is not None and path.startswith(f"{array}["):
                pos = int(path[len(array) + 1:path.index("]")])
            elif p.row is not None and path in (array, None) and text.startswith(array):
                pos = int(p.row)
            else:
                continue
            assert pos in bad_rows, f"{array}[{pos}] blamed, but only {sorted(bad_rows)} " \
                                    f"are bad:\n{text}"
            cols = [c for r, c in t.bad_cells if r == pos]
            named = any(c in str(p.field) or c in str(p.value) or c in p.message
                        or (path is not None and c in path) for c in cols)
            found |= named
    assert found, f"no fault named in:\n{text}"


ENVELOPE_FAULTS: list[tuple[str, Any, str]] = [
    # (key path, value, text the error must contain)
    ("schema_version", None, "schema_version"),
    ("schema_version", "2.0", "schema_version"),
    ("schema_version", 1, "schema_version"),
    ("schema_version", "1.0.0", "schema_version"),
    ("accounts", {"id": "A"}, "accounts"),
    ("accounts", "A-000,121.4,31.2", "accounts"),
    ("accounts", None, "accounts"),
    ("accounts", [], "accounts"),
    ("accounts", [[121.4, 31.2]], "accounts[0]"),
    ("reps", [], "reps"),
    ("reps", 7, "reps"),
    ("name", 123, "name"),
    ("coord_system", "utm", "coord_system"),
    ("allow_outside_china", "yes", "allow_outside_china"),
    ("options.tolerance", -0.1, "tolerance"),
    ("options.tolerance", "5%", "tolerance"),
    ("options.tolerance", {"nope": 0.1}, "nope"),
    ("options.tolerance", math.nan, "tolerance"),
    ("options.measures", [], "measures"),
    ("options.measures", ["workload", "nope"], "nope"),
    ("options.measures", ["workload", "workload"], "measures"),
    ("options.seed", -1, "seed"),
    ("options.seed", 1.5, "seed"),
    ("options.nest", "city", "nest"),
    ("options.unknown_option", 1, "unknown_option"),
    ("options.max_moved", 2, "max_moved"),
    ("options", [1], "options"),
    ("calendar.weeks", 0, "weeks"),
    ("calendar.weeks", "4", "weeks"),
    ("calendar.weeks", 2.5, "weeks"),
    ("calendar.workdays", "", "workdays"),
    ("calendar.workdays", "xyz", "workdays"),
    ("calendar.start_date", "2025-13-01", "start_date"),
    ("calendar.holidays", ["2025-01-01"], "start_date"),
    ("calendar.colour", "red", "colour"),
]
PLAN_FAULTS: list[tuple[str, Any, str]] = [
    ("options.partition_time_s", 0, "partition_time_s"),
    ("options.route_time_s", -1, "route_time_s"),
    ("options.max_rounds", -1, "max_rounds"),
    ("options.workload_tolerance", 1.5, "workload_tolerance"),
    ("options.time_limit_s", 0, "time_limit_s"),
    ("options.workers", 0, "workers"),
    ("options.measures", ["potential"], "workload"),
    ("options.time_limit_s", math.inf, "time_limit_s"),
]
PARTITION_FAULTS: list[tuple[str, Any, str]] = [
    ("options.time_limit_s", 0, "time_limit_s"),
    ("options.time_limit_s", -math.inf, "time_limit_s"),
    ("options.objective", "area", "objective"),
    ("options.partition_time_s", 1, "partition_time_s"),
]


def set_path(body: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = body
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    if value is None and keys[-1] == "schema_version":
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
