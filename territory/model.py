"""Domain records: accounts, reps, the call-cycle calendar and the scenario that holds them.

Storage is columnar (one pandas frame per table, numpy views for the hot paths), so 10^6 accounts
cost a few hundred MB and no Python object exists per account. Construction goes through
``Accounts.from_frame`` / ``Reps.from_frame``, which validate at the door and fill documented
defaults; ``territory.read_accounts`` / ``read_reps`` read files and then call these.

Default fields (only ``id``, ``lon``, ``lat`` are required for accounts, ``id`` and the home
coordinates for reps):

==================  ============================================================================
account field       default
==================  ============================================================================
potential           1.0 (sales potential in any currency unit; >= 0)
segment             by potential rank: top 20 % "A", next 30 % "B", the rest "C" (``SegmentRules``)
visits              visits per call cycle from the segment: A 4, B 2, C 1 (weekly, fortnightly,
                    monthly over 4 weeks)
visit_min           minutes per visit from the segment: A 40, B 30, C 20
hours               "09:00-17:00" on Monday-Friday (see ``territory.hours`` for the syntax);
                    columns ``hours_mon`` .. ``hours_sun`` replace single days (blank: keep)
province            GB/T 2260 2-digit code of the bundled province polygon the point lies in
city                "" (free text or a code)
current_rep         "" (no current alignment)
locked              False (True keeps the account with ``current_rep``)
==================  ============================================================================

==================  ============================================================================
rep field           default
==================  ============================================================================
work_start/end      08:30 / 17:30
working_days        mon-fri
lunch_start/end     11:30 / 13:30 (the window the break must fall in)
lunch_min           45
max_work_min        work_end - work_start
capacity            1.0 (relative share of workload; 0.5 for a half-time rep)
max_nights_week     2 (overnight stays allowed per week for remote accounts)
province, region    "" (for hierarchy); region filled from the province when known
==================  ============================================================================
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from territory.errors import InvalidInputError, Problem
from territory.hours import (
    WEEKDAYS,
    WeekHours,
    format_clock,
    format_days,
    parse_clock,
    parse_days,
    parse_windows,
)
from territory.travel import TravelModel

__all__ = [
    "ACCOUNT_COLUMNS",
    "REP_COLUMNS",
    "Accounts",
    "Calendar",
    "Reps",
    "Scenario",
    "SegmentRules",
]

ACCOUNT_COLUMNS: tuple[str, ...] = (
    "id", "lon", "lat", "potential", "segment", "visits", "visit_min", "hours",
    "province", "city", "current_rep", "locked",
)
REP_COLUMNS: tuple[str, ...] = (
    "id", "home_lon", "home_lat", "work_start", "work_end", "working_days", "lunch_start",
    "lunch_end", "lunch_min", "max_work_min", "capacity", "max_nights_week", "province",
    "region",
)

#: Minutes in a day: the most a visit, a lunch break or a working day can take.
DAY_MIN = 1440.0
#: Most visits per cycle: one a day over the longest cycle the contract allows (53 weeks).
MAX_VISITS = 53 * 7

#: Largest potential of one account: 10^6 accounts at most this still sum (and weigh) far
#: from float overflow.
MAX_POTENTIAL = 1e15

#: Slightly generous box around the bundled polygons, for a fast first test.
CHINA_BBOX = (73.0, 17.5, 135.5, 54.0)


@dataclass(frozen=True)
class SegmentRules:
    """How segments, visit frequency and visit time are derived when the input lacks them.

    ``shares`` are the fractions of accounts, by potential rank, in each segment but the last
    (default: top 20 % A, next 30 % B, the rest C). ``visits`` are per call cycle.
    """

    names: tuple[str, ...] = ("A", "B", "C")
    shares: tuple[float, ...] = (0.2, 0.3)
    visits: Mapping[str, int] = field(default_factory=lambda: {"A": 4, "B": 2, "C": 1})
    visit_min: Mapping[str, float] = field(
        default_factory=lambda: {"A": 40.0, "B": 30.0, "C": 20.0})
    hours: str = "09:00-17:00"
    #: Relative value of one visit by segment, used with potential to decide what to drop.
    value_weight: Mapping[str, float] = field(
        default_factory=lambda: {"A": 3.0, "B": 2.0, "C": 1.0})

    def __post_init__(self) -> None:
        if len(self.shares) != len(self.names) - 1 or sum(self.shares) > 1 + 1e-9:
            raise ValueError("SegmentRules.shares needs one share per segment but the last, "
                             "summing to at most 1")

    def segment_of(self, potential: np.ndarray) -> np.ndarray:
        """Segment names by potential rank (ties broken by position, so it is deterministic)."""
        n = len(potential)
        order = np.argsort(-np.asarray(potential, dtype=float), kind="stable")
        labels = np.empty(n, dtype=object)
        bounds = np.round(np.cumsum((0.0, *self.shares)) * n).astype(int)
        bounds = np.append(bounds, n)
        for k, name in enumerate(self.names):
            labels[order[bounds[k]:bounds[k + 1]]] = name
        return labels


# ----------------------------------------------------------------------------------------------
# validation helpers shared by accounts and reps


class _Checker:
    """Collects problems over a table so that one error lists them all."""

    def __init__(self, frame: pd.DataFrame, kind: str) -> None:
        self.frame = frame
        self.kind = kind
        self.problems: list[Problem] = []
        # Set by ``_check_ids`` (cleaned ids); ``None`` until then so that no per-row work is
        # spent on a column that is about to be cleaned anyway.
        self.ids: np.ndarray | None = None
        # A sort key per problem (see ``begin``), so that problems found chunk by chunk can be
        # put back in the order that one pass over the whole table gives.
        self.keys: list[tuple[int, ...]] = []
        self._stage: tuple[int, ...] = ()
        self._calls = 0

    def begin(self, *stage: int) -> None:
        """Start a stage of checks.

        A problem's key is the stage and the number of the ``add`` call within it; its row
        comes from the order of the rows. A stage must make the same ``add`` calls in every
        chunk, except for calls at its end that would report nothing.
        """
        self._stage = stage
        self._calls = 0

    def report(self, problem: Problem) -> None:
        """Record one problem built by the caller, under the current stage."""
        self.problems.append(problem)
        self.keys.append((*self._stage, self._calls))

    def absorb(self, other: _Checker) -> None:
        """Take over the problems of a checker run on a subset of the rows."""
        self.problems.extend(other.problems)
        self.keys.extend(other.keys)

    def add(self, mask: np.ndarray, field_name: str, values: Any, message: str) -> None:
        """Record one problem per True entry of ``mask``.

        ``values`` is indexed by position: an array, a Series (converted only when something
        is wrong, so the common clean case costs nothing) or any object with ``__getitem__``.
        """
        mask = np.asarray(mask, dtype=bool)
        key = (*self._stage, self._calls)
        self._calls += 1
        if not mask.any():
            return
        if isinstance(values, pd.Series):
            values = values.to_numpy(dtype=object)
        labels = self.frame.index
        for pos in np.flatnonzero(mask):
            ident = None if self.ids is None else self.ids[pos]
            self.problems.append(Problem(
                row=_row_label(labels[pos]), id=ident or None,
                field=field_name, value=_py(values[pos]), message=message))
            self.keys.append(key)

    def numeric(self, col: str, *, default: float | None = None, minimum: float | None = None,
                integer: bool = False, positive: bool = False,
                maximum: float | None = None, why_maximum: str = "") -> np.ndarray:
        """A float column, with every non-number, NaN, infinity or out-of-range value reported.

        Blank cells (missing, NaN, empty or white-space text) take ``default``; with no default
        they are reported as missing. ``default=nan`` keeps them NaN for the caller to fill.
        """
        if col not in self.frame:
            assert default is not None
            return np.full(len(self.frame), float(default))
        raw = self.frame[col]
        num = _to_float(raw)
        blank = raw.isna().to_numpy()
        # Only a cell that is not a number can be blank text; testing just those spares a
        # strip of every cell of a column read as text.
        maybe = np.isnan(num) & ~blank
        if maybe.any():
            blank[maybe] = _blank(raw[maybe])
        if default is not None:
            num = np.where(blank, float(default), num)
        else:
            self.add(blank, col, raw, "missing; give a number")
        self.add(~blank & np.isnan(num), col, raw, "not a number")
        self.add(np.isinf(num), col, raw, "infinite; give a finite number")
        ok = np.isfinite(num)
        if minimum is not None:
            self.add(ok & (num < minimum), col, raw, f"expected >= {minimum:g}")
        if positive:
            self.add(ok & (num <= 0), col, raw, "expected > 0")
        if maximum is not None:
            self.add(ok & (num > maximum), col, raw, f"expected <= {maximum:g}{why_maximum}")
        if integer:
            self.add(ok & (num != np.round(num)), col, raw, "expected a whole number")
        return num

    def text(self, col: str, default: str = "") -> np.ndarray:
        """Stripped text of a column (object array of str); blank cells take ``default``."""
        if col not in self.frame:
            return np.full(len(self.frame), default, dtype=object)
        return _text_array(self.frame[col], default)

    def raise_if_any(self, summary: str, hint: str | None = None) -> None:
        if self.problems:
            raise InvalidInputError(summary, self.problems, kind=self.kind, hint=hint)


class _Lazy:
    """A value per position computed on demand, so only the rows reported cost anything."""

    def __init__(self, fn: Callable[[int], Any]) -> None:
        self.fn = fn

    def __getitem__(self, pos: int) -> Any:
        return self.fn(pos)


def _to_float(s: pd.Series) -> np.ndarray:
    """Numbers of a column; NaN where a cell is missing or not a number.

    Text goes through Python's correctly rounded ``float`` (via ``astype``), not pandas'
    ``to_numeric``, whose faster parser is an ulp off for about a third of 17-digit values: a
    file written and read back must give the same coordinates. ``to_numeric`` only finds the
    cells that are numbers when some are not.
    """
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    try:
        return s.astype(float).to_numpy()
    except (TypeError, ValueError):
        pass
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    ok = ~np.isnan(num)
    if ok.any():
        try:
            num[ok] = s[ok].astype(float).to_numpy()
        except (TypeError, ValueError):
            pass  # something to_numeric reads and float() does not: keep to_numeric's value
    # Cells to_numeric refuses but float() reads ("1e400", "1_000", full-width digits) are
    # numbers when the rest of the column is clean; read them one by one here too, so a cell's
    # value never depends on the other rows (a chunked read sees only some of them).
    values = s.to_numpy(dtype=object)
    for pos in np.flatnonzero(~ok & ~s.isna().to_numpy()):
        try:
            num[pos] = float(values[pos])
        except (TypeError, ValueError):
            pass
    return num


def _blank(s: pd.Series) -> np.ndarray:
    """Missing cells: None/NaN/NA, or text that is empty after stripping."""
    return _text_and_blank(s, "", need_text=False)[1]


def _text_array(s: pd.Series, default: str = "") -> np.ndarray:
    """Stripped str of every cell (``12.0`` -> ``"12"``), ``default`` where blank."""
    return _text_and_blank(s, default)[0]


def _text_and_blank(s: pd.Series, default: str, *, need_text: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Stripped text of every cell and the blank mask, stripping each cell once.

    Vectorised for the common all-text and all-integer columns; other mixes go cell by cell.
    """
    n = len(s)
    blank = s.isna().to_numpy()
    stripped = None
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        # Only str cells can be blank text; ``.str`` gives NaN for the others (and refuses a
        # column without any text, e.g. of ``datetime.time`` cells).
        try:
            stripped = s.str.strip()
        except AttributeError:
            stripped = None
        else:
            blank |= (stripped == "").to_numpy(dtype=bool, na_value=False)
    if not need_text:
        return np.empty(0, dtype=object), blank
    out = np.full(n, default, dtype=object)
    keep = ~blank
    vals = s[keep] if blank.any() else s
    if len(vals) == 0:
        return out, blank
    kind = pd.api.types.infer_dtype(vals, skipna=False)
    if kind == "string" and stripped is not None:
        out[keep] = stripped.to_numpy(dtype=object)[keep]
    elif kind == "integer":
        try:
            out[keep] = vals.astype(np.int64).astype(str).to_numpy(dtype=object)
        except OverflowError:  # beyond 64 bits (an id such as 10**30): cell by cell
            out[keep] = [_clean_text(v) for v in vals.to_numpy(dtype=object)]
    else:
        out[keep] = [_clean_text(v) for v in vals.to_numpy(dtype=object)]
    return out, blank


def _clean_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def _row_label(label: Any) -> int | None:
    try:
        return int(label)
    except (TypeError, ValueError):
        return None


def _label_text(label: Any) -> str:
    """A row label for use inside a message (the label itself when it is not a number)."""
    row = _row_label(label)
    return str(label) if row is None else str(row)


def _py(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _check_ids(chk: _Checker) -> np.ndarray:
    """Cleaned ids; reports missing and duplicate ids (each duplicate names the other rows)."""
    ids, blank = _check_id_cells(chk)
    _report_duplicate_ids(chk, ids, blank)
    return ids


def _check_id_cells(chk: _Checker) -> tuple[np.ndarray, np.ndarray]:
    """Cleaned ids and the blank mask; reports the missing ones (the check of one row)."""
    raw = chk.frame["id"]
    ids, blank = _text_and_blank(raw, "")
    chk.ids = ids
    chk.add(blank, "id", raw, "missing id; every row needs a unique id")
    return ids, blank


def _report_duplicate_ids(chk: _Checker, ids: np.ndarray, blank: np.ndarray) -> None:
    """Reports every id given more than once, naming the other rows (``chk.frame``'s labels)."""
    dup = pd.Series(ids).duplicated(keep=False).to_numpy() & ~blank
    if dup.any():
        labels = chk.frame.index
        pos = np.flatnonzero(dup)
        codes, _ = pd.factorize(ids[pos])
        order = np.argsort(codes, kind="stable")
        starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
        for group in np.split(pos[order], starts[1:]):
            # Rows in the order of the table, so "also in row" reads naturally.
            for p in group:
                others = [_label_text(labels[q]) for q in group if q != p]
                more = f" and {len(others) - 5} more" if len(others) > 5 else ""
                chk.report(Problem(
                    row=_row_label(labels[p]), id=ids[p], field="id", value=ids[p],
                    message=f"duplicate id (also in row {', '.join(others[:5])}{more}); "
                            "ids must be unique"))


def _check_coordinates(chk: _Checker, lon_col: str, lat_col: str, *,
                       allow_outside_china: bool, what: str) -> tuple[np.ndarray, np.ndarray]:
    frame = chk.frame
    for col in (lon_col, lat_col):
        if col not in frame:
            raise InvalidInputError(
                f"The {what} table has no {col!r} column; columns are {list(frame.columns)}.",
                hint="Rename your columns or pass columns={'your_name': "
                     f"'{col}'}} to the reader.")
    lon = chk.numeric(lon_col)
    lat = chk.numeric(lat_col)
    pairs = _Lazy(lambda i: f"({lon[i]}, {lat[i]})")
    where = f"{lon_col},{lat_col}"
    ok = np.isfinite(lon) & np.isfinite(lat)
    rng = ok & ((np.abs(lon) > 180) | (np.abs(lat) > 90))
    swapped_range = rng & (np.abs(lat) <= 180) & (np.abs(lon) <= 90)
    chk.add(swapped_range, where, pairs,
            "longitude and latitude look swapped (latitude beyond 90); swap the two columns")
    chk.add(rng & ~swapped_range, where, pairs,
            "outside the valid range (lon -180..180, lat -90..90); projected coordinates? "
            "give WGS-84 degrees")
    ok &= ~rng
    if not allow_outside_china and ok.any():
        from territory import china

        inside = np.zeros(len(lon), dtype=bool)
        inside[ok] = china.contains(lon[ok], lat[ok])
        out = ok & ~inside
        if out.any():
            idx = np.flatnonzero(out)
            flipped = np.asarray(china.contains(lat[idx], lon[idx]), dtype=bool)
            swapped = np.zeros(len(lon), dtype=bool)
            swapped[idx[flipped]] = True
            chk.add(swapped, where, pairs,
                    "longitude and latitude look swapped (the point lies in China the other "
                    "way round); swap the two columns")
            chk.add(out & ~swapped, where, pairs,
                    "outside China (WGS-84); check the coordinates, convert GCJ-02/BD-09 with "
                    "coord_system='gcj02' (or 'bd09') when reading, or pass "
                    "allow_outside_china=True")
    return lon, lat


# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Accounts:
    """Validated accounts, one row each (columns ``ACCOUNT_COLUMNS`` plus any extra ones).

    ``hours_code`` indexes ``hours_profiles``: the distinct weekly opening patterns.
    Build with ``Accounts.from_frame`` or ``territory.read_accounts``.
    """

    frame: pd.DataFrame
    hours_profiles: tuple[WeekHours, ...]
    hours_code: np.ndarray

    # numpy views for the hot paths -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        """Account ids (object array of str)."""
        return self.frame["id"].to_numpy(dtype=object)

    @property
    def lon(self) -> np.ndarray:
        return self.frame["lon"].to_numpy(dtype=float)

    @property
    def lat(self) -> np.ndarray:
        return self.frame["lat"].to_numpy(dtype=float)

    @property
    def lonlat(self) -> np.ndarray:
        """(n, 2) array of WGS-84 lon, lat."""
        return self.frame[["lon", "lat"]].to_numpy(dtype=float)

    @property
    def potential(self) -> np.ndarray:
        return self.frame["potential"].to_numpy(dtype=float)

    @property
    def visits(self) -> np.ndarray:
        return self.frame["visits"].to_numpy(dtype=np.int64)

    @property
    def visit_min(self) -> np.ndarray:
        return self.frame["visit_min"].to_numpy(dtype=float)

    @property
    def province(self) -> np.ndarray:
        return self.frame["province"].to_numpy(dtype=object)

    def hours_of(self, i: int) -> WeekHours:
        """Opening hours of the account at position ``i``."""
        return self.hours_profiles[int(self.hours_code[i])]

    def subset(self, positions: np.ndarray | Sequence[int]) -> Accounts:
        """The accounts at ``positions`` (a new object; hours profiles shared)."""
        pos = np.asarray(positions, dtype=np.int64)
        return Accounts(self.frame.iloc[pos].reset_index(drop=True), self.hours_profiles,
                        self.hours_code[pos])

    def with_columns(self, **columns: Any) -> Accounts:
        """A copy with some columns replaced (not re-validated: use for derived values)."""
        frame = self.frame.copy()
        for k, v in columns.items():
            frame[k] = v
        return Accounts(frame, self.hours_profiles, self.hours_code)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        rules: SegmentRules | None = None,
        allow_outside_china: bool = False,
        default_days: Sequence[int] = (0, 1, 2, 3, 4),
    ) -> Accounts:
        """Validate a table of accounts and fill defaults (see the module docstring).

        Row labels in error messages are the frame's index labels (the readers set them to the
        row numbers a spreadsheet shows).

        Raises
        ------
        InvalidInputError
            Listing every offending row, field and value.
        """
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(f"Expected a table of accounts, got {type(frame).__name__}.")
        if len(frame) == 0:
            raise InvalidInputError("No accounts: the table is empty.",
                                    hint="Give at least one row with id, lon and lat.")
        builder = _AccountsBuilder(rules, allow_outside_china=allow_outside_china,
                                   default_days=default_days)
        builder.add(frame)
        return builder.finish()


def _check_unique_columns(frame: pd.DataFrame, what: str) -> None:
    dup = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if dup:
        raise InvalidInputError(
            f"The {what} table has several columns named {dup}; each field needs one column.",
            hint="Rename or drop the extra columns (with a reader: map one of them elsewhere "
                 "with columns={...}).")


#: Per-weekday opening-hours columns; each overrides one day of ``hours``.
HOURS_DAY_COLUMNS: tuple[str, ...] = tuple(f"hours_{d}" for d in WEEKDAYS)

# Stages of the account checks (``_Checker.begin``), in the order of one pass over the table.
_ST_ID, _ST_DUP, _ST_COORD, _ST_POTENTIAL = 10, 20, 30, 40
_ST_VISITS, _ST_VISITS_SEGMENT, _ST_VISIT_MIN, _ST_VISIT_MIN_SEGMENT = 50, 51, 60, 61
_ST_HOURS, _ST_HOURS_DAY = 70, 71  # then 71 + weekday; each with the text's number
_ST_PROVINCE, _ST_LOCKED, _ST_LOCKED_REP = 80, 90, 91


class _TextCodes:
    """Texts numbered in order of first appearance over all chunks, as ``pd.factorize``
    numbers them over the whole table, each parsed once (value, or why it cannot be read)."""

    def __init__(self, parse: Callable[[str], Any], fallback: Any) -> None:
        self._parse = parse
        self._fallback = fallback
        self._number: dict[str, int] = {}
        self.values: list[Any] = []
        self.errors: list[str | None] = []

    def codes(self, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(global code per row, local code per row, global code per local code)."""
        local, uniques = pd.factorize(texts)
        to_global = np.empty(len(uniques), dtype=np.int64)
        for k, text in enumerate(uniques):
            code = self._number.get(text)
            if code is None:
                code = self._number[text] = len(self.values)
                try:
                    self.values.append(self._parse(str(text)))
                    self.errors.append(None)
                except ValueError as exc:
                    self.values.append(self._fallback)
                    self.errors.append(str(exc))
            to_global[k] = code
        return to_global[local], local, to_global


class _AccountsBuilder:
    """Validates a table of accounts chunk by chunk; ``finish`` gives the ``Accounts``.

    ``Accounts.from_frame`` is the case of one chunk, so both paths apply the same rules. Each
    chunk gets every check of a single row (id present, coordinates, numbers, hours, province,
    locked) and keeps only the validated columns. ``finish`` applies the rules that need every
    row at once, over the concatenated columns: duplicate ids (the two rows may sit in
    different chunks) and the segment by potential rank (a quantile of the whole table), with
    what follows from the segment (default visits and visit minutes, and the check that the
    segment has them). Opening-hours texts are numbered across chunks as over the whole table,
    so the profiles and their codes come out the same too. Problems carry sort keys
    (``_Checker.begin``) and are listed in the order one pass over the whole table gives, so
    the 20 an error message shows are the same.
    """

    def __init__(self, rules: SegmentRules | None, *, allow_outside_china: bool,
                 default_days: Sequence[int]) -> None:
        self.rules = rules or SegmentRules()
        self.allow_outside_china = allow_outside_china
        self.default_days = tuple(default_days)
        self._columns: list[Any] | None = None
        self._parts: list[dict[str, Any]] = []
        self._problems: list[Problem] = []
        self._keys: list[tuple[int, ...]] = []
        self._n = 0
        self._hours = _TextCodes(lambda t: WeekHours.parse(t, self.default_days),
                                 WeekHours.parse("closed"))
        self._days = [_TextCodes(parse_windows, ()) for _ in HOURS_DAY_COLUMNS]
        self._texts: dict[str, str] = {}  # one object per distinct text (``_shared``)

    def add(self, frame: pd.DataFrame) -> None:
        """Validate one chunk of rows; its index holds their labels in the whole table.

        Raises
        ------
        InvalidInputError
            A column is repeated or a required one missing, or ``SegmentRules.hours`` cannot
            be read. Problems of single rows are kept for ``finish``.
        """
        _check_unique_columns(frame, "accounts")
        missing = [c for c in ("id", "lon", "lat") if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"The accounts table lacks required column(s) {missing}; "
                f"its columns are {list(frame.columns)}.",
                hint="Rename the columns or pass columns={'your_name': 'id', ...} to "
                     "read_accounts.")
        if self._columns is None:
            try:
                WeekHours.parse(self.rules.hours, self.default_days)
            except ValueError as exc:
                raise InvalidInputError(
                    f"SegmentRules.hours={self.rules.hours!r} cannot be read: {exc}.",
                    hint="Give default hours like '09:00-17:00'.") from None
            self._columns = list(frame.columns)
        elif list(frame.columns) != self._columns:
            raise ValueError(f"chunk columns {list(frame.columns)} differ from the first "
                             f"chunk's {self._columns}")
        if len(frame) == 0:
            return
        chk = _Checker(frame, "Account")
        chk.begin(_ST_ID)
        ids, id_blank = _check_id_cells(chk)
        chk.begin(_ST_COORD)
        lon, lat = _check_coordinates(chk, "lon", "lat",
                                      allow_outside_china=self.allow_outside_china,
                                      what="accounts")
        chk.begin(_ST_POTENTIAL)
        potential = chk.numeric("potential", default=1.0, minimum=0.0, maximum=MAX_POTENTIAL,
                                why_maximum=" (give it in larger units, e.g. thousands)")
        part: dict[str, Any] = {"index": frame.index, "id": ids, "id_blank": id_blank,
                                "lon": lon, "lat": lat, "potential": potential}
        if "segment" in frame:
            part["segment"] = self._shared(chk.text("segment"))
        # Given visits and visit minutes are checked here; blanks take the segment's default
        # in ``finish``, once the segments are known.
        for col, stage, integer, maximum, why in (
                ("visits", _ST_VISITS, True, MAX_VISITS,
                 " (a visit a day over the longest cycle, 53 weeks)"),
                ("visit_min", _ST_VISIT_MIN, False, DAY_MIN, " (a visit fits in one day)")):
            if col in frame:
                chk.begin(stage)
                part[col] = chk.numeric(col, default=math.nan, minimum=0.0, integer=integer,
                                        maximum=maximum, why_maximum=why)
                # Blank cells only: a value that is not a number was reported above and must
                # not be quietly replaced by the segment default.
                part[f"{col}_blank"] = _blank(frame[col])
        part["hours"], part["hours_days"] = self._hours_codes(chk, frame)
        chk.begin(_ST_PROVINCE)
        part["province"] = self._shared(_check_provinces(chk, lon, lat))
        part["city"] = self._shared(chk.text("city"))
        current = part["current_rep"] = self._shared(chk.text("current_rep"))
        chk.begin(_ST_LOCKED)
        locked = part["locked"] = _bool_column(chk, "locked")
        chk.begin(_ST_LOCKED_REP)
        if locked.any():
            chk.add(locked & (current == ""), "locked", locked,
                    "locked but no current_rep to stay with; give current_rep or unlock")
        # The per-weekday hours columns are folded into ``hours``; keeping them too would let
        # the two drift apart after ``with_columns``.
        part["extra"] = {c: self._shared(frame[c].to_numpy()) for c in frame.columns
                         if c not in ACCOUNT_COLUMNS and c not in HOURS_DAY_COLUMNS}
        # A column taken from a frame may be a view of a block holding every column of the
        # chunk (and so every cell's str): keep copies, so the chunk can go.
        for values in (part, part["extra"]):
            for k, v in values.items():
                if isinstance(v, np.ndarray) and v.base is not None:
                    values[k] = v.copy()
        self._problems += chk.problems
        self._keys += chk.keys
        self._parts.append(part)
        self._n += len(frame)

    def _shared(self, values: np.ndarray) -> np.ndarray:
        """``values`` with each distinct text as one object, the same in every chunk.

        pandas' parser makes a str per cell, so a column of a few distinct texts (a city, a
        segment, a kind of shop) costs some 60 bytes a row; shared, it costs the 8 of a
        pointer: at 10^6 accounts, a few hundred MB less for the table, and none of the
        chunk's small objects outlive it. Columns of mostly distinct values (ids, names) and
        anything but text are left as they are.
        """
        if values.dtype != object or len(values) == 0:
            return values
        try:
            codes, uniques = pd.factorize(values)
        except TypeError:  # unhashable cells
            return values
        # Only text: equal numbers of different types (1, 1.0, True) must stay as they are.
        if 2 * len(uniques) > len(values) or \
                pd.api.types.infer_dtype(uniques, skipna=False) != "string":
            return values
        canon = np.empty(len(uniques), dtype=object)
        canon[:] = [self._texts.setdefault(u, u) for u in uniques]
        out = canon[codes]
        missing = codes < 0
        if missing.any():
            out[missing] = values[missing]
        return out

    def _hours_codes(self, chk: _Checker, frame: pd.DataFrame
                     ) -> tuple[np.ndarray, np.ndarray | None]:
        """Codes of the ``hours`` texts and of the ``hours_mon``.. texts (-1 where blank).

        The weekly pattern of a row is its ``hours`` text (the default where blank or absent);
        a non-blank ``hours_<day>`` cell then replaces that one day (``"closed"`` closes it).
        Each distinct text is parsed once, so the cost grows with the number of distinct
        texts, not of rows.
        """
        default = self.rules.hours
        if "hours" in frame:
            raw = frame["hours"]
            base, local, to_global = self._hours.codes(_text_array(raw, default))
            for k, code in enumerate(to_global):
                error = self._hours.errors[code]
                if error is not None:
                    chk.begin(_ST_HOURS, int(code))
                    chk.add(local == k, "hours", raw, f"cannot read opening hours: {error}")
        else:
            base, _, _ = self._hours.codes(np.full(len(frame), default, dtype=object))
        day_cols = [c for c in HOURS_DAY_COLUMNS if c in frame]
        if not day_cols:
            return base, None
        days = np.full((len(frame), 7), -1, dtype=np.int64)
        for d, col in enumerate(HOURS_DAY_COLUMNS):
            if col not in frame:
                continue
            raw = frame[col]
            codes, local, to_global = self._days[d].codes(_text_array(raw))
            for k, code in enumerate(to_global):
                error = self._days[d].errors[code]
                if error is not None:
                    chk.begin(_ST_HOURS_DAY + d, int(code))
                    chk.add(local == k, col, raw, f"cannot read opening hours: {error}")
            days[:, d] = np.where(_blank(raw), -1, codes)
        return base, days

    def finish(self, *, drop: Iterable[str] = ()) -> Accounts:
        """The accounts of all chunks, with the whole-table rules applied.

        ``drop`` names extra columns to leave out (a reader's empty unnamed columns).

        Raises
        ------
        InvalidInputError
            No rows, or invalid rows: every problem of every chunk, each with its row label.
        """
        if self._n == 0:
            raise InvalidInputError("No accounts: the table is empty.",
                                    hint="Give at least one row with id, lon and lat.")
        assert self._columns is not None
        rules = self.rules
        parts, self._parts = self._parts, []
        given = self._columns

        def take(key: str) -> Any:
            # Column by column, dropping each chunk's copy, so the peak is the final table
            # plus one column.
            pieces = [p.pop(key) for p in parts]
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

        indexes = [p.pop("index") for p in parts]
        labels = indexes[0] if len(indexes) == 1 else indexes[0].append(indexes[1:])
        ids = take("id")
        chk = _Checker(pd.DataFrame(index=labels), "Account")
        chk.ids = ids
        # Duplicates need every id: two rows with one id may be in different chunks.
        chk.begin(_ST_DUP)
        _report_duplicate_ids(chk, ids, take("id_blank"))
        lon, lat, potential = take("lon"), take("lat"), take("potential")

        # Segments by potential rank are quantiles of the whole table.
        if "segment" in given:
            segment = take("segment")
            blank = segment == ""
            if blank.any():
                segment[blank] = rules.segment_of(np.nan_to_num(potential))[blank]
        else:
            segment = rules.segment_of(np.nan_to_num(potential))
        seg_series = pd.Series(segment, dtype=object)
        seg_values = seg_series.to_numpy(dtype=object)

        filled: dict[str, np.ndarray] = {}
        for col, table, stage in (("visits", rules.visits, _ST_VISITS_SEGMENT),
                                  ("visit_min", rules.visit_min, _ST_VISIT_MIN_SEGMENT)):
            by_segment = seg_series.map(dict(table)).to_numpy(dtype=float)
            if col in given:
                blank = take(f"{col}_blank")
                values = np.where(blank, by_segment, take(col))
            else:
                values = by_segment
                blank = np.ones(len(values), dtype=bool)
            chk.begin(stage)
            chk.add(blank & np.isnan(by_segment), "segment", seg_values,
                    f"segment has no default {col} (known: {sorted(table)}); give a {col} "
                    f"column or SegmentRules")
            filled[col] = np.nan_to_num(values)

        hours_code, profiles = self._hours_profiles(take("hours"), parts)

        problems = self._problems + chk.problems
        keys = self._keys + chk.keys
        if problems:
            # Stable: within one key, chunks and rows keep their order.
            order = sorted(range(len(problems)), key=keys.__getitem__)
            raise InvalidInputError(
                f"{len(problems)} problem(s) in the accounts table ({self._n} rows); "
                "nothing was changed:", [problems[i] for i in order], kind="Account",
                hint="Fix the rows above and read the file again.")

        columns: dict[Any, np.ndarray] = {
            "id": ids, "lon": lon, "lat": lat, "potential": potential,
            "segment": seg_values,
            "visits": filled["visits"].astype(np.int64), "visit_min": filled["visit_min"],
            "hours": np.array([str(p) for p in profiles], dtype=object)[hours_code],
            "province": take("province"), "city": take("city"),
            "current_rep": take("current_rep"), "locked": take("locked"),
        }
        skip = set(drop)
        extras = [p.pop("extra") for p in parts]
        for c in list(extras[0]):
            pieces = [e.pop(c) for e in extras]
            if c not in skip:
                columns[c] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        # Every array is the builder's own (``add`` copies views of the input): the frame
        # takes them as they are rather than copying all into blocks, a second table at
        # the peak.
        out = pd.DataFrame(columns, copy=False)
        return Accounts(out, tuple(profiles), hours_code)

    def _hours_profiles(self, base_codes: np.ndarray, parts: list[dict[str, Any]]
                        ) -> tuple[np.ndarray, list[WeekHours]]:
        """Profile code per row and the distinct weekly profiles."""
        days = [p.pop("hours_days") for p in parts]
        base: list[WeekHours] = self._hours.values
        if days[0] is None:
            codes, profiles = base_codes, base
        else:
            keys = np.empty((len(base_codes), 8), dtype=np.int64)
            keys[:, 0] = base_codes
            keys[:, 1:] = days[0] if len(days) == 1 else np.concatenate(days)
            combos, inverse = np.unique(keys, axis=0, return_inverse=True)
            profiles = []
            for key in combos:
                week = list(base[key[0]].days)
                for d in range(7):
                    if key[d + 1] >= 0:
                        week[d] = self._days[d].values[key[d + 1]]
                profiles.append(WeekHours(tuple(week)))
            codes = inverse.reshape(-1)
        # Canonicalise: different texts meaning the same week share one profile.
        canon: dict[WeekHours, int] = {}
        remap = np.empty(len(profiles), dtype=np.int32)
        final: list[WeekHours] = []
        for k, p in enumerate(profiles):
            if p not in canon:
                canon[p] = len(final)
                final.append(p)
            remap[k] = canon[p]
        return remap[codes].astype(np.int32), final


def _check_provinces(chk: _Checker, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    from territory import china

    n = len(lon)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if "province" in chk.frame:
        text = chk.text("province")
        codes = china.normalise_province_codes(text)
        unknown = (text != "") & (codes == "")
        chk.add(unknown, "province", text,
                "unknown province; use a GB/T 2260 code ('44' or '440000') or a name "
                "('广东', 'Guangdong')")
        fill = (text == "") & ok
    else:
        codes = np.full(n, "", dtype=object)
        fill = ok
    if fill.any():
        codes[fill] = china.province_of(lon[fill], lat[fill])
    return codes


_TRUE = frozenset({"true", "1", "yes", "y", "t", "是", "x", "locked", "1.0"})
_FALSE = frozenset({"false", "0", "no", "n", "f", "否", "", "nan", "none", "0.0"})


def _bool_column(chk: _Checker, col: str) -> np.ndarray:
    """True/False from a column of booleans, 1/0 or words (blank is False)."""
    if col not in chk.frame:
        return np.zeros(len(chk.frame), dtype=bool)
    raw = chk.frame[col]
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.to_numpy(dtype=bool)
    words = pd.Series(_text_array(raw), dtype=object).str.lower()
    is_true = words.isin(_TRUE).to_numpy()
    bad = ~is_true & ~words.isin(_FALSE).to_numpy()
    chk.add(bad, col, raw, "expected true/false (or 1/0, yes/no, 是/否)")
    return is_true


# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Reps:
    """Validated reps, one row each (columns ``REP_COLUMNS`` plus any extra ones).

    Times are minutes from midnight; ``working_days`` is the compact text (``"mon-fri"``),
    ``workdays_mask`` its (n, 7) boolean form.
    """

    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def ids(self) -> np.ndarray:
        return self.frame["id"].to_numpy(dtype=object)

    @property
    def home_lonlat(self) -> np.ndarray:
        """(n, 2) array of home lon, lat."""
        return self.frame[["home_lon", "home_lat"]].to_numpy(dtype=float)

    @property
    def capacity(self) -> np.ndarray:
        return self.frame["capacity"].to_numpy(dtype=float)

    @property
    def workdays_mask(self) -> np.ndarray:
        days = self.frame["working_days"].to_numpy(dtype=object)
        mask = np.zeros((len(days), 7), dtype=bool)
        for i, d in enumerate(days):
            mask[i, list(parse_days(str(d)))] = True
        return mask

    def subset(self, positions: np.ndarray | Sequence[int]) -> Reps:
        """The reps at ``positions``."""
        return Reps(self.frame.iloc[np.asarray(positions, dtype=np.int64)].reset_index(drop=True))

    def available_minutes(self, calendar: Calendar) -> np.ndarray:
        """Working minutes of each rep over the calendar (after lunch), capped by max work."""
        day_min = np.minimum(
            self.frame["work_end"].to_numpy(float) - self.frame["work_start"].to_numpy(float)
            - self.frame["lunch_min"].to_numpy(float),
            self.frame["max_work_min"].to_numpy(float))
        mask = self.workdays_mask
        days = np.array([mask[:, wd] for wd in calendar.weekdays]).T  # (n, D)
        return day_min * days.sum(axis=1)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, allow_outside_china: bool = False) -> Reps:
        """Validate a table of reps and fill defaults (see the module docstring).

        ``lon``/``lat`` are accepted for ``home_lon``/``home_lat``.

        Raises
        ------
        InvalidInputError
            Listing every offending row, field and value (a rep without a home among them).
        """
        if not isinstance(frame, pd.DataFrame):
            raise InvalidInputError(f"Expected a table of reps, got {type(frame).__name__}.")
        if len(frame) == 0:
            raise InvalidInputError("No reps: the table is empty.",
                                    hint="Give at least one row with id, home_lon, home_lat.")
        _check_unique_columns(frame, "reps")
        frame = frame.rename(columns={k: v for k, v in
                                      (("lon", "home_lon"), ("lat", "home_lat"))
                                      if k in frame and v not in frame})
        if "id" not in frame:
            raise InvalidInputError(
                f"The reps table lacks the 'id' column; its columns are {list(frame.columns)}.",
                hint="Rename the column or pass columns={'your_name': 'id'} to read_reps.")
        chk = _Checker(frame, "Rep")
        ids = _check_ids(chk)
        if "home_lon" not in frame or "home_lat" not in frame:
            raise InvalidInputError(
                "The reps table has no home coordinates (home_lon, home_lat); "
                f"its columns are {list(frame.columns)}.",
                hint="Every rep needs a home base: add home_lon/home_lat (or lon/lat).")
        # A blank cell (NaN, None or empty text) in either coordinate means no home at all:
        # say so once instead of two "missing number" lines.
        blank_home = _blank(frame["home_lon"]) | _blank(frame["home_lat"])
        chk.add(blank_home, "home_lon,home_lat",
                [f"({a}, {b})" for a, b in zip(frame["home_lon"], frame["home_lat"],
                                              strict=True)],
                "rep has no home; give the home (or office) coordinates")
        sub = _Checker(frame.loc[~blank_home] if blank_home.any() else frame, "Rep")
        sub.ids = ids[~blank_home]
        lon_ok, lat_ok = _check_coordinates(sub, "home_lon", "home_lat",
                                            allow_outside_china=allow_outside_china,
                                            what="reps")
        chk.absorb(sub)
        lon = np.full(len(frame), np.nan)
        lat = np.full(len(frame), np.nan)
        lon[~blank_home], lat[~blank_home] = lon_ok, lat_ok

        work_start = _clock_column(chk, "work_start", "08:30")
        work_end = _clock_column(chk, "work_end", "17:30")
        lunch_start = _clock_column(chk, "lunch_start", "11:30")
        lunch_end = _clock_column(chk, "lunch_end", "13:30")
        lunch_min = chk.numeric("lunch_min", default=45.0, minimum=0.0, maximum=DAY_MIN,
                                why_maximum=" (minutes in a day)")
        span = work_end - work_start
        # Report the pair as clock times: one of the two may be a default the user never saw.
        chk.add(span <= 0, "work_start,work_end",
                _Lazy(lambda i: f"{format_clock(work_start[i])}-{format_clock(work_end[i])}"),
                "working day ends before it starts")
        chk.add((lunch_end - lunch_start) < lunch_min, "lunch_start,lunch_end",
                _Lazy(lambda i: f"{format_clock(lunch_start[i])}-{format_clock(lunch_end[i])}"
                                f" for lunch_min={lunch_min[i]:g}"),
                "lunch window shorter than lunch_min; widen the window or shorten lunch_min")
        # A lunch window outside the working day cannot hold the break (unless lunch_min is 0).
        outside = (span > 0) & (lunch_min > 0) & (
            (np.maximum(lunch_start, work_start) + lunch_min) > np.minimum(lunch_end, work_end))
        chk.add(outside & ~((lunch_end - lunch_start) < lunch_min), "lunch_start,lunch_end",
                _Lazy(lambda i: f"{format_clock(lunch_start[i])}-{format_clock(lunch_end[i])}"
                                f" in working day {format_clock(work_start[i])}-"
                                f"{format_clock(work_end[i])}"),
                "lunch window does not fit inside the working day; move it or set lunch_min=0")
        max_work = chk.numeric("max_work_min", default=math.nan, positive=True,
                               maximum=DAY_MIN, why_maximum=" (minutes in a day)")
        max_work = np.where(np.isnan(max_work), span, max_work)
        capacity = chk.numeric("capacity", default=1.0, positive=True)
        nights = chk.numeric("max_nights_week", default=2.0, minimum=0.0, integer=True,
                             maximum=7.0, why_maximum=" (nights in a week)")

        days_txt = chk.text("working_days", "mon-fri")
        days_out = np.empty(len(frame), dtype=object)
        bad = np.zeros(len(frame), dtype=bool)
        for i, t in enumerate(days_txt):
            try:
                d = parse_days(t or "mon-fri")
                days_out[i] = format_days(d)
                bad[i] = not d
            except ValueError:
                bad[i] = True
                days_out[i] = ""
        chk.add(bad, "working_days", days_txt,
                "cannot read working days; write e.g. 'mon-fri' or '周一至周五'")

        province = chk.text("province")
        if "province" in frame:
            from territory import china

            codes = china.normalise_province_codes(province)
            chk.add((province != "") & (codes == ""), "province", province,
                    "unknown province; use a GB/T 2260 code or a name")
            province = codes
        region = chk.text("region")
        if (region == "").any() and (province != "").any():
            from territory import china

            reg_map = china.region_of_province()
            fill = (region == "") & (province != "")
            region[fill] = [reg_map.get(p, "") for p in province[fill]]

        chk.raise_if_any(
            f"{len(chk.problems)} problem(s) in the reps table ({len(frame)} rows); "
            "nothing was changed:", hint="Fix the rows above and read the file again.")
        out = pd.DataFrame({
            "id": ids, "home_lon": lon, "home_lat": lat,
            "work_start": work_start.astype(np.int64), "work_end": work_end.astype(np.int64),
            "working_days": days_out, "lunch_start": lunch_start.astype(np.int64),
            "lunch_end": lunch_end.astype(np.int64), "lunch_min": lunch_min,
            "max_work_min": max_work, "capacity": capacity,
            "max_nights_week": nights.astype(np.int64), "province": province, "region": region,
        })
        for c in frame.columns:
            if c not in REP_COLUMNS:
                out[c] = frame[c].to_numpy()
        return cls(out)


def _clock_column(chk: _Checker, col: str, default: str) -> np.ndarray:
    """Minutes from midnight; blank cells take ``default``, unreadable ones are reported (NaN).

    NaN rather than the default for a bad cell, so that the checks comparing two clock
    columns do not add a second, misleading problem for the same row.
    """
    n = len(chk.frame)
    out = np.full(n, float(parse_clock(default)))
    if col not in chk.frame:
        return out
    raw = chk.frame[col]
    values = raw.to_numpy(dtype=object)
    bad = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(~_blank(raw)):
        v = values[i]
        if isinstance(v, dt.time):
            v = f"{v.hour}:{v.minute:02d}" if not v.second else str(v)
        try:
            out[i] = parse_clock(v)
        except (TypeError, ValueError):
            bad[i] = True
            out[i] = np.nan
    chk.add(bad, col, values, "not a time of day; write e.g. '08:30'")
    return out


# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """The working days of one call cycle.

    ``weekdays[d]`` is the weekday (0 = Monday) of cycle day ``d``; ``weeks[d]`` its week
    number (for per-week limits such as nights away); ``dates`` the calendar dates when the
    cycle has a start date.
    """

    weekdays: tuple[int, ...]
    weeks: tuple[int, ...]
    dates: tuple[dt.date, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.weekdays) != len(self.weeks) or not self.weekdays:
            raise ValueError("a calendar needs at least one working day")
        if self.dates is not None and len(self.dates) != len(self.weekdays):
            raise ValueError("dates and weekdays differ in length")

    @classmethod
    def weekly(
        cls,
        n_weeks: int = 4,
        *,
        start: dt.date | str | None = None,
        workdays: str | Iterable[int] = "mon-fri",
        holidays: Iterable[dt.date | str] = (),
    ) -> Calendar:
        """A cycle of ``n_weeks`` weeks on ``workdays``, without ``holidays``.

        With no ``start`` the cycle is abstract (weekdays only; holidays need a start).
        ``start`` is moved back to the Monday of its week.
        """
        days = parse_days(workdays)
        if not days:
            raise ValueError("no working day in the week")
        if n_weeks < 1:
            raise ValueError("n_weeks must be at least 1")
        hol = {dt.date.fromisoformat(h) if isinstance(h, str) else h for h in holidays}
        if start is None:
            if hol:
                raise ValueError("holidays need a start date for the cycle")
            wd = tuple(d for _ in range(n_weeks) for d in days)
            wk = tuple(w for w in range(n_weeks) for _ in days)
            return cls(wd, wk, None)
        s = dt.date.fromisoformat(start) if isinstance(start, str) else start
        monday = s - dt.timedelta(days=s.weekday())
        dates = [monday + dt.timedelta(days=7 * w + d) for w in range(n_weeks) for d in days]
        dates = [d for d in dates if d not in hol and d >= s]
        if not dates:
            raise ValueError("every day of the cycle is a holiday")
        return cls(tuple(d.weekday() for d in dates),
                   tuple((d - monday).days // 7 for d in dates), tuple(dates))

    @property
    def n_days(self) -> int:
        return len(self.weekdays)

    @property
    def n_weeks(self) -> int:
        return max(self.weeks) + 1

    def with_start(self, start: dt.date) -> Calendar:
        """The same pattern of weekdays laid on real dates from the Monday of ``start``."""
        if self.dates is not None:
            return self
        monday = start - dt.timedelta(days=start.weekday())
        dates = tuple(monday + dt.timedelta(days=7 * w + d)
                      for w, d in zip(self.weeks, self.weekdays, strict=True))
        return Calendar(self.weekdays, self.weeks, dates)

    def to_dict(self) -> dict[str, Any]:
        return {"weekdays": list(self.weekdays), "weeks": list(self.weeks),
                "dates": None if self.dates is None else [d.isoformat() for d in self.dates]}


@dataclass(frozen=True, eq=False)
class Scenario:
    """Accounts, reps, the call-cycle calendar and the travel model: one planning problem."""

    accounts: Accounts
    reps: Reps
    calendar: Calendar = field(default_factory=Calendar.weekly)
    travel: TravelModel = field(default_factory=TravelModel)
    name: str = "scenario"

    def summary(self) -> dict[str, Any]:
        """Counts and totals at a glance."""
        a = self.accounts
        return {
            "name": self.name,
            "accounts": len(a),
            "reps": len(self.reps),
            "days": self.calendar.n_days,
            "visits": int(a.visits.sum()),
            "visit_hours": float((a.visits * a.visit_min).sum() / 60.0),
            "potential": float(a.potential.sum()),
            "provinces": int(pd.Series(a.province).nunique()),
        }
