"""Output writers for analysts: assignment CSV, Excel workbook, calendars and GIS layers.

Every writer takes plain pandas / geopandas tables with documented columns, so it serves any
plan: solver output, a plan edited by hand in a spreadsheet, or last year's alignment.

==========================  ===================================================================
function                    writes
==========================  ===================================================================
``write_assignment_csv``    ``account_id, territory, rep_id`` (+ extra columns), UTF-8 with BOM
``write_workbook``          several tables as formatted sheets of one ``.xlsx``
``write_ics``               one rep's visits as an iCalendar (RFC 5545) file
``write_ics_all``           ``calendars/<rep_id>.ics`` for every rep of a schedule
``write_geo``               GeoDataFrames as GeoJSON or GeoPackage layers (EPSG:4326)
``territory_polygons``      territory polygons from account points (Voronoi cells or hulls)
``route_lines``             one LineString per rep and day (home -> visits -> home or stay)
``territory_colours``       a qualitative colour per polygon, neighbours different
==========================  ===================================================================

Schedules
---------
``write_ics`` and ``route_lines`` read a *schedule*: one row per stop.

=================  ==============================================================================
column             meaning
=================  ==============================================================================
``rep_id``         the rep (required)
``date``           ``datetime.date`` (or ISO text / Timestamp) of the stop; or else
``day``            cycle day (int from 0), turned into a date by ``dates=`` or ``start_date=``
``sequence``       stop number within the day (from 1); derived from ``start`` when absent
``account_id``     the account visited (required for visits)
``arrival``        planned arrival: minutes from midnight (int/float) or ``"HH:MM"``; may be
                   earlier than ``start`` (waiting for the account to open)
``start``          start of the visit (minutes or ``"HH:MM"``)
``departure``      end of the visit (minutes or ``"HH:MM"``)
``kind``           ``"visit"`` (default), ``"lunch"`` or ``"overnight"`` (optional)
``name``           account name (or ``account_name``); optional, else from ``account_info``
``address``        optional, the event's LOCATION
``lon``, ``lat``   optional WGS-84 degrees, the event's GEO
``visit``          optional: number of this visit to the account within the cycle
``km``             optional: km driven to reach this stop (summed per day by ``route_lines``)
=================  ==============================================================================
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
import os
import re
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from solvers._unique import unique_rows
from territory.errors import InvalidInputError, Problem
from territory.hours import format_clock, parse_clock, parse_days
from territory.io import write_csv
from territory.travel import haversine_km

__all__ = [
    "PALETTE",
    "route_lines",
    "sanitize_filename",
    "sanitize_sheet_name",
    "territory_colours",
    "territory_polygons",
    "write_assignment_csv",
    "write_geo",
    "write_ics",
    "write_ics_all",
    "write_workbook",
]

PathLike = str | os.PathLike[str]

#: Qualitative palette (Tableau 10): distinct hues that stay readable as translucent fills.
PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
)

# Same projection as ``territory.geo.project_km`` (Albers equal-area for China, km): Voronoi
# cells and hulls are computed in the plane so that a degree of longitude in Heilongjiang does
# not count as much as one in Hainan.
_ALBERS_CHINA = ("+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 "
                 "+datum=WGS84 +units=km +no_defs")


def _mkdir_for(path: PathLike) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _require_columns(frame: Any, columns: Iterable[str], what: str, hint: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"The {what} must be a pandas DataFrame, got "
                                f"{type(frame).__name__}.", hint=hint)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"The {what} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{[str(c) for c in frame.columns]}.", hint=hint)


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float | np.floating):
        return bool(np.isnan(v))
    return False


def _text(v: Any) -> str:
    """A cell as text ('' when missing); integral floats lose their '.0' (ids read as floats)."""
    if _is_missing(v):
        return ""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


# ----------------------------------------------------------------------------------------------
# CSV


def write_assignment_csv(frame: pd.DataFrame, path: PathLike) -> Path:
    """Write an assignment table as CSV in UTF-8 with a BOM (Excel shows Chinese names).

    Parameters
    ----------
    frame:
        Columns ``account_id``, ``territory`` and optionally ``rep_id`` (written first, in this
        order), then any extra columns (``name``, ``province``, ...) in their order.
    path:
        The ``.csv`` file; parent folders are created.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InvalidInputError
        A required column is missing, an ``account_id`` is missing or repeated (an account
        belongs to exactly one territory), or the file cannot be written.
    """
    _require_columns(frame, ("account_id", "territory"), "assignment table",
                     hint="Give the columns account_id and territory (and rep_id), e.g. "
                          "plan.assignment_frame().")
    ids = frame["account_id"]
    problems = [Problem(row=label, id=None, field="account_id", value=None,
                        message="missing; every row needs an account id")
                for label in frame.index[ids.isna().to_numpy()][:50]]
    text_ids = ids.map(_text)
    dup = text_ids.duplicated(keep=False).to_numpy() & ids.notna().to_numpy()
    problems += [Problem(row=label, id=str(v), field="account_id", value=v,
                         message="appears more than once; an account belongs to one territory")
                 for label, v in zip(frame.index[dup][:50], ids[dup][:50], strict=True)]
    if problems:
        raise InvalidInputError("The assignment table has missing or repeated account ids.",
                                problems, kind="Account",
                                hint="Give each account one row.")
    first = [c for c in ("account_id", "territory", "rep_id") if c in frame.columns]
    out = frame[first + [c for c in frame.columns if c not in first]]
    return write_csv(out, _mkdir_for(path))


# ----------------------------------------------------------------------------------------------
# Excel

#: Excel's limits: rows per sheet (header included), columns, characters per cell and per
#: sheet name.
EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_COLS = 16_384
_EXCEL_MAX_TEXT = 32_767
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
# Ranges of East Asian wide/full-width characters (CJK, kana, hangul, full-width forms): they
# take two character cells in a spreadsheet column.
_WIDE = re.compile("[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff"
                   "\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60"
                   "\uffe0-\uffe6\U00020000-\U0003fffd]")
_PCT_FORMAT = "0.0%"
_ONE_DECIMAL = "#,##0.0"
_COORD_FORMAT = "0.000000"
_DATE_FORMAT = "yyyy-mm-dd"
_DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
_ONE_DECIMAL_TOKENS = {"km", "h", "hours", "hour", "hrs"}
_COORD_TOKENS = {"lon", "lat", "lng", "longitude", "latitude"}


def sanitize_sheet_name(name: Any, taken: Iterable[str] = ()) -> str:
    """A valid Excel sheet name for ``name``: at most 31 characters, none of ``[]:*?/\\``,
    not starting or ending with an apostrophe, not ``History``, and unique (case-insensitive)
    among ``taken``.
    """
    text = _SHEET_BAD.sub("_", str(name)).strip().strip("'").strip() or "Sheet"
    if text.lower() == "history":  # reserved by Excel for change tracking
        text = "History_"
    text = text[:31]
    used = {t.lower() for t in taken}
    candidate, k = text, 2
    while candidate.lower() in used:
        suffix = f"~{k}"
        candidate = text[:31 - len(suffix)] + suffix
        k += 1
    return candidate


def _display_width(values: pd.Series) -> int:
    """Widest text of a column in character cells (wide CJK characters count two)."""
    if len(values) == 0:
        return 0
    text = values.astype(str)
    widths = text.str.len() + text.str.count(_WIDE)
    return int(widths.max())


def _number_format(name: str, series: pd.Series) -> str | None:
    """The Excel number format of a column, from its name and type (None: General)."""
    key = name.lower()
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_datetime64_any_dtype(series):
        return _DATETIME_FORMAT
    if not pd.api.types.is_numeric_dtype(series):
        return None
    if key.endswith(("_pct", "_dev")):
        return _PCT_FORMAT
    if not pd.api.types.is_float_dtype(series):
        return None  # integers: counts and numeric ids, no separators that would mangle ids
    tokens = set(re.split(r"[_\s]+", key))
    if tokens & _COORD_TOKENS:
        return _COORD_FORMAT
    if tokens & _ONE_DECIMAL_TOKENS:
        return _ONE_DECIMAL
    return None


def _formatted_width(series: pd.Series, fmt: str | None) -> int:
    """Width of a numeric column as Excel shows it with ``fmt`` (the extremes are widest)."""
    values = pd.to_numeric(series, errors="coerce").dropna()
    values = values[np.isfinite(values.to_numpy(dtype=float))]
    if len(values) == 0:
        return 0
    probes = [float(values.min()), float(values.max())]
    if fmt == _PCT_FORMAT:
        return max(len(f"{100 * v:.1f}%") for v in probes)
    if fmt == _ONE_DECIMAL:
        return max(len(f"{v:,.1f}") for v in probes)
    if fmt == _COORD_FORMAT:
        return max(len(f"{v:.6f}") for v in probes)
    if pd.api.types.is_integer_dtype(series) or all(v.is_integer() for v in probes):
        return max(len(str(int(v))) for v in probes)
    return 11  # Excel's General shows at most about 11 characters of a float


def _excel_value(v: Any) -> Any:
    """A cell value openpyxl accepts (None for missing; numpy scalars unwrapped)."""
    if _is_missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        v = v.replace(tzinfo=None)  # Excel has no time zones: keep the wall-clock time
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, str | bool | int | float | dt.date | dt.time):
        return v
    return str(v)


def _openpyxl() -> Any:
    try:
        import openpyxl
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("Excel output needs openpyxl: pip install "
                          "'territory-planner[excel]'") from exc
    return openpyxl


def write_workbook(path: PathLike, sheets: Mapping[str, pd.DataFrame], *,
                   title: str | None = None) -> Path:
    """Write tables as formatted sheets of one Excel workbook.

    Each sheet gets a bold, frozen header row and an auto filter; columns are sized to their
    content (wide CJK characters count double, capped at 60); text stays text (a value such as
    ``"=1+1"`` is not turned into a formula). Number formats follow the column names:

    * ``*_pct``, ``*_dev``: percent with one decimal; the values are **fractions** (0.043 shows
      as 4.3 %), as in the territory tables;
    * floats named with a ``km``, ``h`` or ``hours`` word (``travel_km``, ``work_h``): one
      decimal with thousands separators;
    * floats named ``lon``/``lat`` (or ``*_lon``, ``*_lat``): six decimals;
    * dates ``yyyy-mm-dd``, date-times ``yyyy-mm-dd hh:mm``; everything else General.

    Geometry columns are left out (a workbook is no place for polygons; use ``write_geo``);
    a named index is written as the first column(s).

    Parameters
    ----------
    path:
        The ``.xlsx`` file; parent folders are created.
    sheets:
        Sheet name -> table, in the order of the sheets (e.g. ``summary``, ``territories``,
        ``accounts``, ``schedule``). Names are made valid for Excel with
        ``sanitize_sheet_name`` (31 characters, no ``[]:*?/\\``, unique).
    title:
        Stored as the workbook's document title.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    ImportError
        openpyxl (the ``excel`` extra) is not installed.
    InvalidInputError
        No sheets, a value is not a DataFrame, a table exceeds Excel's 1,048,575 data rows or
        16,384 columns, or the file cannot be written.
    """
    openpyxl = _openpyxl()
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    if not sheets:
        raise InvalidInputError("write_workbook needs at least one sheet.",
                                hint="Pass sheets={'summary': frame, ...}.")
    wb = openpyxl.Workbook(write_only=True)
    if title:
        wb.properties.title = str(title)
    wb.properties.creator = "territory-planner"
    bold = Font(bold=True)
    taken: list[str] = []
    for raw_name, table in sheets.items():
        if isinstance(table, pd.Series):
            table = table.to_frame()
        if not isinstance(table, pd.DataFrame):
            raise InvalidInputError(
                f"Sheet {raw_name!r}: expected a DataFrame, got {type(table).__name__}.")
        frame = _sheet_frame(table)
        if len(frame) + 1 > EXCEL_MAX_ROWS or len(frame.columns) > EXCEL_MAX_COLS:
            raise InvalidInputError(
                f"Sheet {raw_name!r}: {len(frame):,} rows x {len(frame.columns):,} columns "
                f"exceed Excel's limit of {EXCEL_MAX_ROWS - 1:,} data rows and "
                f"{EXCEL_MAX_COLS:,} columns.",
                hint="Write such a table with write_assignment_csv or to Parquet.")
        name = sanitize_sheet_name(raw_name, taken)
        taken.append(name)
        ws = wb.create_sheet(name)
        headers = [str(c) for c in frame.columns]
        formats = [_number_format(h, frame[c]) for h, c in zip(headers, frame.columns,
                                                                strict=True)]
        # Widths first: a write-only sheet takes column settings before its rows.
        for j, (h, c, fmt) in enumerate(zip(headers, frame.columns, formats, strict=True)):
            col = frame[c]
            if pd.api.types.is_bool_dtype(col):
                content = 5
            elif pd.api.types.is_numeric_dtype(col):
                content = _formatted_width(col, fmt)
            elif pd.api.types.is_datetime64_any_dtype(col):
                content = 16
            else:
                content = _display_width(col.dropna())
            header = _display_width(pd.Series([h])) + 2  # bold text and the filter button
            ws.column_dimensions[get_column_letter(j + 1)].width = float(
                min(max(content, header, 4) + 2, 60))
        ws.freeze_panes = "A2"
        last = get_column_letter(max(len(headers), 1))
        ws.auto_filter.ref = f"A1:{last}{len(frame) + 1}"
        head_row = []
        for h in headers:
            cell = WriteOnlyCell(ws, value=ILLEGAL_CHARACTERS_RE.sub("", h))
            cell.font = bold
            head_row.append(cell)
        ws.append(head_row)
        columns = [_excel_column(ws, frame[c], fmt, WriteOnlyCell, ILLEGAL_CHARACTERS_RE)
                   for c, fmt in zip(frame.columns, formats, strict=True)]
        for row in zip(*columns, strict=True):
            ws.append(list(row))
    out = _mkdir_for(path)
    try:
        wb.save(out)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot be written ({exc}).") from None
    return out


def _sheet_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The columns to write: a named index becomes data, geometry is dropped."""
    frame = table
    if frame.index.name is not None or any(n is not None for n in frame.index.names[1:]):
        frame = frame.reset_index()
    geometry = [c for c in frame.columns
                if isinstance(frame[c].dtype, gpd.array.GeometryDtype)]
    if geometry:
        frame = pd.DataFrame(frame.drop(columns=geometry))
    return frame


def _excel_column(ws: Any, series: pd.Series, fmt: str | None, cell_type: Any,
                  illegal: re.Pattern[str]) -> list[Any]:
    """Cell values of one column, as WriteOnlyCells where a format or text type is needed."""
    values = [_excel_value(v) for v in series.to_numpy(dtype=object)]
    out: list[Any] = []
    for v in values:
        if isinstance(v, str):
            v = illegal.sub("", v)[:_EXCEL_MAX_TEXT]
            if v.startswith("="):
                cell = cell_type(ws, value=v)
                cell.data_type = "s"  # keep "=..." as text, never a formula
                out.append(cell)
            else:
                out.append(v)
        elif v is None:
            out.append(None)
        elif isinstance(v, dt.date) and not isinstance(v, dt.datetime) and fmt is None:
            cell = cell_type(ws, value=v)
            cell.number_format = _DATE_FORMAT
            out.append(cell)
        elif fmt is not None and not isinstance(v, bool):
            cell = cell_type(ws, value=v)
            cell.number_format = fmt
            out.append(cell)
        else:
            out.append(v)
    return out


# ----------------------------------------------------------------------------------------------
# iCalendar

_KINDS = ("visit", "lunch", "overnight")
_PRODID = "-//territory-planner//territory-planner {version}//EN"
_MAX_OCTETS = 75


def _ics_escape(text: str) -> str:
    """RFC 5545 TEXT escaping; other control characters are not allowed and are dropped."""
    text = (str(text).replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
            .replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n"))
    return "".join(ch for ch in text if ch == "\t" or unicodedata.category(ch) != "Cc")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets (RFC 5545 3.1) without splitting a UTF-8 character."""
    if len(line.encode("utf-8")) <= _MAX_OCTETS:
        return line
    parts: list[str] = []
    current: list[str] = []
    size = 0
    limit = _MAX_OCTETS  # continuation lines start with a space, which counts
    for ch in line:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, _MAX_OCTETS - 1
        current.append(ch)
        size += n
    parts.append("".join(current))
    return "\r\n ".join(parts)


def _minutes(value: Any) -> float:
    """Minutes from midnight of a number or ``"HH:MM"`` text; NaN when missing.

    Numbers may pass 1440 (the next morning, for an overnight stay).

    Raises
    ------
    ValueError
        Not a time.
    """
    if _is_missing(value):
        return math.nan
    if isinstance(value, str):
        if not value.strip():
            return math.nan
        return float(parse_clock(value))
    if isinstance(value, dt.time):
        return value.hour * 60.0 + value.minute
    if isinstance(value, dt.timedelta | pd.Timedelta):
        return value.total_seconds() / 60.0
    number = float(value)
    if number < 0 or not math.isfinite(number):
        raise ValueError(f"{value!r} is not a time of day in minutes (>= 0)")
    return number


def _as_date(value: Any) -> dt.date | None:
    if _is_missing(value):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value).date()
    return dt.date.fromisoformat(str(value).strip()[:10])


def _cycle_dates(dates: Any, start_date: Any, workdays: str | Iterable[int], n_days: int
                 ) -> list[dt.date] | None:
    """The date of each cycle day 0..n_days-1, or None when neither source is given."""
    if dates is not None:
        seq = getattr(dates, "dates", dates)  # a territory.model.Calendar carries .dates
        if seq is None:
            raise InvalidInputError("The calendar given as dates= has no dates.",
                                    hint="Build it with a start date, e.g. "
                                         "Calendar.weekly(4, start='2026-03-02').")
        given: list[dt.date] = []
        for k, value in enumerate(seq):
            day = _as_date(value)
            if day is None:
                raise InvalidInputError(f"dates= has no date for cycle day {k}.")
            given.append(day)
        return given
    if start_date is None:
        return None
    try:
        day0 = _as_date(start_date)
        days = set(parse_days(workdays))
    except ValueError as exc:
        raise InvalidInputError(f"start_date={start_date!r} / workdays={workdays!r}: {exc}",
                                hint="Give start_date as a date or 'YYYY-MM-DD' and workdays "
                                     "like 'mon-fri'.") from None
    if day0 is None or not days:
        raise InvalidInputError("start_date is missing or workdays has no working day.")
    out: list[dt.date] = []
    d = day0
    while len(out) < n_days:
        if d.weekday() in days:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _account_lookup(info: Any) -> pd.DataFrame | None:
    """Account attributes indexed by account id (text): name, address, lon, lat if present.

    ``info`` is a DataFrame with ``account_id`` or ``id`` (or the ids as index), an object with
    a ``.frame`` (``territory.model.Accounts``), or None.
    """
    if info is None:
        return None
    frame = getattr(info, "frame", info)
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"account_info must be a DataFrame, got {type(info).__name__}.")
    key = next((c for c in ("account_id", "id") if c in frame.columns), None)
    ids = frame[key] if key is not None else frame.index.to_series()
    out = pd.DataFrame(index=pd.Index(ids.map(_text).to_numpy(), name="account_id"))
    for col, names in (("name", ("name", "account_name")), ("address", ("address",)),
                       ("lon", ("lon",)), ("lat", ("lat",))):
        src = next((n for n in names if n in frame.columns), None)
        if src is not None:
            out[col] = frame[src].to_numpy()
    return out[~out.index.duplicated(keep="first")]


_SCHEDULE_HINT = ("A schedule has one row per stop with rep_id, date (or day with dates= or "
                  "start_date=), sequence, account_id, arrival, start and departure; see "
                  "territory.reports.")


def _prepare_schedule(schedule: pd.DataFrame, *, account_info: Any = None, dates: Any = None,
                      start_date: Any = None, workdays: str | Iterable[int] = "mon-fri",
                      need_times: bool = True, need_dates: bool = True,
                      need_accounts: bool = True) -> pd.DataFrame:
    """Normalised schedule: text ids, dates, minutes, kind, name/address/lon/lat filled from
    ``account_info``; the original row label in ``row``.

    Raises
    ------
    InvalidInputError
        Missing columns, or rows whose values cannot be read (all listed).
    """
    _require_columns(schedule, ("rep_id",), "schedule", _SCHEDULE_HINT)
    if "date" not in schedule.columns and "day" not in schedule.columns:
        raise InvalidInputError("The schedule has neither a 'date' nor a 'day' column.",
                                hint=_SCHEDULE_HINT)
    n = len(schedule)
    rows = schedule.index.to_numpy()
    out = pd.DataFrame({"row": rows})
    out["rep_id"] = schedule["rep_id"].map(_text).to_numpy()
    kind = (schedule["kind"].map(_text).str.strip().str.lower().replace("", "visit")
            if "kind" in schedule.columns else pd.Series(["visit"] * n))
    out["kind"] = kind.to_numpy()
    out["account_id"] = (schedule["account_id"].map(_text).to_numpy()
                         if "account_id" in schedule.columns else "")
    problems: list[Problem] = []

    def bad(i: int, field: str, value: Any, message: str) -> None:
        if isinstance(value, np.generic):
            value = value.item()  # messages show 1.5, not np.float64(1.5)
        problems.append(Problem(row=rows[i], id=out["account_id"].iat[i] or None, field=field,
                                value=value, message=message))

    for i, (r, k) in enumerate(zip(out["rep_id"], out["kind"], strict=True)):
        if not r:
            bad(i, "rep_id", schedule["rep_id"].iat[i], "missing; every stop needs its rep")
        if k not in _KINDS:
            bad(i, "kind", schedule["kind"].iat[i], f"expected one of {list(_KINDS)}")
        elif k == "visit" and need_accounts and not out["account_id"].iat[i]:
            bad(i, "account_id", None, "missing; a visit needs the account visited")
    day = None
    if "day" in schedule.columns:
        day = pd.to_numeric(schedule["day"], errors="coerce").to_numpy(dtype=float)
        wrong = ~np.isnan(day) & ((day < 0) | (day != np.round(day)))
        for j in np.flatnonzero(wrong):
            bad(int(j), "day", schedule["day"].iat[int(j)], "expected a whole number >= 0")
        out["day"] = pd.array(np.where(wrong, np.nan, day), dtype="Int64")
    n_days = int(np.nanmax(day)) + 1 if day is not None and np.isfinite(day).any() else 0
    cycle = _cycle_dates(dates, start_date, workdays, n_days)
    dates_out: list[dt.date | None] = [None] * n
    given = schedule["date"].to_numpy(dtype=object) if "date" in schedule.columns else None
    for i in range(n):
        d = None
        if given is not None:
            try:
                d = _as_date(given[i])
            except (ValueError, TypeError):
                bad(i, "date", given[i], "not a date; expected YYYY-MM-DD")
                continue
        if d is None and day is not None and not np.isnan(day[i]) and cycle is not None:
            k = int(day[i])
            if k < len(cycle):
                d = cycle[k]
            else:
                bad(i, "day", int(day[i]), f"beyond the {len(cycle)} dates given in dates=")
                continue
        if d is None and need_dates:
            if day is not None and pd.isna(out["day"].iat[i]) and not np.isnan(day[i]):
                continue  # the day itself is wrong, reported above
            if day is not None and not np.isnan(day[i]):
                bad(i, "day", int(day[i]), "has no date; pass dates= (e.g. "
                    "scenario.calendar.dates) or start_date=")
            else:
                bad(i, "date", None, "missing; every stop needs its date or day")
        dates_out[i] = d
    out["date"] = dates_out
    for col in ("arrival", "start", "departure"):
        values = np.full(n, np.nan)
        if col in schedule.columns:
            src = schedule[col].to_numpy(dtype=object)
            for i in range(n):
                try:
                    values[i] = _minutes(src[i])
                except (ValueError, TypeError) as exc:
                    bad(i, col, src[i], f"{exc}; expected minutes from midnight or 'HH:MM'")
        out[col] = values
    if need_times:
        for i in range(n):
            k = out["kind"].iat[i]
            if k == "overnight":
                continue
            s, e = out["start"].iat[i], out["departure"].iat[i]
            if math.isnan(s):
                bad(i, "start", None, "missing; give the start time of the stop")
            elif math.isnan(e):
                bad(i, "departure", None, "missing; give the departure time of the stop")
            elif e < s:
                bad(i, "departure", format_clock(e), f"before start {format_clock(s)}")
    if "sequence" in schedule.columns:
        seq = pd.to_numeric(schedule["sequence"], errors="coerce").to_numpy(dtype=float)
        for j in np.flatnonzero(np.isnan(seq)):
            bad(int(j), "sequence", schedule["sequence"].iat[int(j)], "expected a number")
        out["sequence"] = seq
    else:
        out["sequence"] = np.nan
    for col, names in (("name", ("name", "account_name")), ("address", ("address",)),
                       ("lon", ("lon",)), ("lat", ("lat",)), ("visit", ("visit",)),
                       ("km", ("km",))):
        src = next((c for c in names if c in schedule.columns), None)
        if src is not None:
            out[col] = schedule[src].to_numpy()
        elif col != "visit" and col != "km":
            out[col] = np.nan if col in ("lon", "lat") else None
    if problems:
        raise InvalidInputError(f"The schedule has {len(problems)} unreadable value(s).",
                                problems, kind="Account", hint=_SCHEDULE_HINT)
    lookup = _account_lookup(account_info)
    if lookup is not None:
        found = lookup.reindex(out["account_id"])
        for col in ("name", "address", "lon", "lat"):
            if col in found.columns:
                have = out[col].map(lambda v: not _is_missing(v) and v != "").to_numpy()
                out[col] = np.where(have, out[col].to_numpy(dtype=object),
                                    found[col].to_numpy(dtype=object))
    out["lon"] = pd.to_numeric(out["lon"], errors="coerce")
    out["lat"] = pd.to_numeric(out["lat"], errors="coerce")
    if "sequence" in out and out["sequence"].isna().all():
        # No sequence given: number the stops of each day by start time (else row order).
        keys = out.assign(
            _d=out["date"].map(lambda d: d.toordinal() if d else -1).to_numpy(),
            _c=out["day"].fillna(-1).to_numpy(dtype=np.int64) if "day" in out else -1)
        order = keys.sort_values(["rep_id", "_d", "_c", "start"], kind="stable")
        out.loc[order.index, "sequence"] = (
            order.groupby(["rep_id", "_d", "_c"]).cumcount() + 1).to_numpy()
    return out


def _vtimezone(tz: str, offsets: set[dt.timedelta], name: str) -> list[str]:
    """A VTIMEZONE for a zone with one UTC offset over the schedule (e.g. Asia/Shanghai)."""
    (offset,) = offsets
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    text = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return ["BEGIN:VTIMEZONE", f"TZID:{tz}", f"X-LIC-LOCATION:{tz}", "BEGIN:STANDARD",
            f"TZOFFSETFROM:{text}", f"TZOFFSETTO:{text}", f"TZNAME:{_ics_escape(name)}",
            "DTSTART:19700101T000000", "END:STANDARD", "END:VTIMEZONE"]


def _uid(rep: str, date: dt.date, account: str, sequence: float, kind: str) -> str:
    seq = "" if math.isnan(sequence) else f"{sequence:g}"
    key = "\x1f".join((rep, date.isoformat(), account, seq, kind))
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()
    return digest[:32] + "@territory-planner"


def _calendar_text(rows: pd.DataFrame, *, rep_id: str, calendar_name: str | None, tz: str,
                   dtstamp: dt.datetime | None) -> str:
    """The iCalendar text (CRLF, folded) of one rep's normalised schedule rows."""
    from territory import __version__

    try:
        zone = zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"tz={tz!r} is not a known IANA time zone.",
                                hint="Use e.g. 'Asia/Shanghai' (all of China keeps "
                                     "Beijing time).") from None
    stamp = (dtstamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    rows = rows.assign(_ord=rows["date"].map(dt.date.toordinal))
    rows = rows.sort_values(["_ord", "start", "sequence"], kind="stable", na_position="last")
    n_visits = rows.loc[rows["kind"] == "visit"].groupby("_ord").size()

    events: list[tuple[pd.Series, dt.datetime | None, dt.datetime | None]] = []
    for _, r in rows.iterrows():
        day0 = dt.datetime.combine(r["date"], dt.time())
        start = r["start"] if not math.isnan(r["start"]) else r["arrival"]
        begin = None if math.isnan(start) else day0 + dt.timedelta(minutes=float(start))
        end = None
        if not math.isnan(r["departure"]) and begin is not None:
            end = day0 + dt.timedelta(minutes=float(r["departure"]))
            if end < begin:  # an overnight stay ends the next morning
                end += dt.timedelta(days=1)
        events.append((r, begin, end))
    stamps = [t for _, b, e in events for t in (b, e) if t is not None]
    sample = stamps[0] if stamps else dt.datetime(2000, 1, 1)
    offsets = {o for t in (stamps or [sample])
               if (o := t.replace(tzinfo=zone).utcoffset()) is not None}
    # One offset (all of China): local times with TZID and a VTIMEZONE. A zone whose offset
    # changes within the schedule (daylight saving) would need its rules spelled out; UTC
    # times are exact and every client converts them.
    local = len(offsets) == 1

    def when(prop: str, t: dt.datetime) -> str:
        if local:
            return f"{prop};TZID={tz}:{t:%Y%m%dT%H%M%S}"
        return f"{prop}:{t.replace(tzinfo=zone).astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"

    lines = ["BEGIN:VCALENDAR", "VERSION:2.0",
             "PRODID:" + _PRODID.format(version=__version__), "CALSCALE:GREGORIAN",
             "METHOD:PUBLISH",
             "X-WR-CALNAME:" + _ics_escape(calendar_name or f"Visits {rep_id}")]
    if local:
        lines.append(f"X-WR-TIMEZONE:{tz}")
        lines += _vtimezone(tz, offsets, sample.replace(tzinfo=zone).tzname() or tz)
    seen: dict[str, Any] = {}
    for r, begin, end in events:
        kind = r["kind"]
        uid = _uid(rep_id, r["date"], r["account_id"], float(r["sequence"]), kind)
        if uid in seen:
            raise InvalidInputError(
                f"Rep {rep_id!r}: rows {seen[uid]!r} and {r['row']!r} are the same stop "
                f"(date {r['date']}, account {r['account_id']!r}, sequence "
                f"{r['sequence']:g}, {kind}).", hint="Give each stop of a day its own sequence.")
        seen[uid] = r["row"]
        name = _text(r["name"]) if "name" in r else ""
        address = _text(r["address"]) if "address" in r else ""
        lon, lat = r["lon"], r["lat"]
        has_geo = (not _is_missing(lon) and not _is_missing(lat)
                   and -180 <= lon <= 180 and -90 <= lat <= 90)
        label = name or r["account_id"]
        if kind == "visit":
            summary = label
        elif kind == "lunch":
            summary = "Lunch break"
        else:
            summary = f"Overnight stay: {label}" if label else "Overnight stay"
        desc: list[str] = []
        if kind == "visit":
            total = int(n_visits.get(r["_ord"], 0))
            if not math.isnan(r["sequence"]):
                desc.append(f"Visit {r['sequence']:g} of {total} on {r['date']:%a %Y-%m-%d}")
            if "visit" in r and not _is_missing(r["visit"]):
                desc.append(f"Visit number in the cycle: {_text(r['visit'])}")
            arrival = r["arrival"] if not math.isnan(r["arrival"]) else r["start"]
            wait = r["start"] - arrival
            desc.append(f"Planned arrival {format_clock(arrival)}"
                        + (f" (wait {wait:.0f} min)" if wait >= 1 else ""))
            desc.append(f"Visit {format_clock(r['start'])}-{format_clock(r['departure'])} "
                        f"({r['departure'] - r['start']:.0f} min)")
            desc.append(f"Account {r['account_id']}" + (f": {name}" if name else ""))
        elif r["account_id"]:
            desc.append(f"Near account {r['account_id']}" + (f": {name}" if name else ""))
        if address:
            desc.append(f"Address: {address}")
        desc.append(f"Rep {rep_id}")
        lines += ["BEGIN:VEVENT", f"UID:{uid}", f"DTSTAMP:{stamp:%Y%m%dT%H%M%SZ}"]
        if begin is None:  # an overnight stay without times: an all-day, free event
            lines += [f"DTSTART;VALUE=DATE:{r['date']:%Y%m%d}",
                      f"DTEND;VALUE=DATE:{r['date'] + dt.timedelta(days=1):%Y%m%d}",
                      "TRANSP:TRANSPARENT"]
        else:
            lines.append(when("DTSTART", begin))
            # RFC 5545 wants DTEND later than DTSTART; a zero-length stop has none.
            if end is not None and end > begin:
                lines.append(when("DTEND", end))
            if kind == "overnight":
                lines.append("TRANSP:TRANSPARENT")
        lines.append("SUMMARY:" + _ics_escape(summary))
        location = address or name
        if location:
            lines.append("LOCATION:" + _ics_escape(location))
        if has_geo:
            lines.append(f"GEO:{float(lat):.6f};{float(lon):.6f}")
        lines.append("DESCRIPTION:" + _ics_escape("\n".join(desc)))
        lines += [f"CATEGORIES:{kind.upper()}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)


def write_ics(schedule: pd.DataFrame, path: PathLike, *, rep_id: Any,
              calendar_name: str | None = None, tz: str = "Asia/Shanghai",
              account_info: Any = None, dates: Any = None, start_date: Any = None,
              workdays: str | Iterable[int] = "mon-fri",
              dtstamp: dt.datetime | None = None) -> Path:
    """Write one rep's stops as an iCalendar (RFC 5545) file, one VEVENT per stop.

    Events run from ``start`` to ``departure`` in local time (``TZID`` and a ``VTIMEZONE``;
    Asia/Shanghai is UTC+8 all year); the planned arrival is in the description. UIDs are a
    hash of rep, date, account, sequence and kind, so importing a re-exported plan updates the
    events rather than duplicating them (a stop that moves to another day or position is a new
    event). Lunch rows become "Lunch break" events; overnight rows become free (transparent)
    events, all-day when they carry no times. Lines end in CRLF and are folded at 75 octets
    without splitting a UTF-8 character.

    Parameters
    ----------
    schedule:
        One row per stop (see the module docstring); rows of other reps are ignored.
    path:
        The ``.ics`` file; parent folders are created.
    rep_id:
        Whose stops to write (compared as text).
    calendar_name:
        Shown by calendar apps (``X-WR-CALNAME``); default ``"Visits <rep_id>"``.
    tz:
        IANA time zone of the schedule's clock times. A zone whose UTC offset changes within
        the schedule is written in UTC instead.
    account_info:
        Table with ``account_id`` (or ``id``, or the index) and any of ``name``/
        ``account_name``, ``address``, ``lon``, ``lat`` (e.g. ``scenario.accounts``), filling
        what the schedule lacks.
    dates:
        Date of each cycle day, for a schedule with ``day`` instead of ``date``: a sequence
        indexed by day, or a ``Calendar`` with dates.
    start_date, workdays:
        Instead of ``dates``: day 0 is the first working day on or after ``start_date`` and
        each next day the next working day (``workdays``, e.g. ``"mon-fri"``; no holidays).
    dtstamp:
        Time stamp of the export (``DTSTAMP``), default now; fix it for reproducible files.

    Returns
    -------
    Path
        The path written. A rep without stops gets a valid calendar without events.

    Raises
    ------
    InvalidInputError
        Missing columns, unreadable or inconsistent rows (all listed), two rows for the same
        stop, an unknown time zone, or the file cannot be written.
    """
    rows = _prepare_schedule(schedule, account_info=account_info, dates=dates,
                             start_date=start_date, workdays=workdays)
    rep = _text(rep_id)
    text = _calendar_text(rows.loc[rows["rep_id"] == rep], rep_id=rep,
                          calendar_name=calendar_name, tz=tz, dtstamp=dtstamp)
    out = _mkdir_for(path)
    try:
        out.write_bytes(text.encode("utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot be written ({exc}).") from None
    return out


_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}


def sanitize_filename(name: Any, max_chars: int = 100) -> str:
    """A file name (without extension) for ``name`` that is valid on Windows, macOS and Linux.

    Path separators, ``<>:"|?*`` and control characters become ``_``; leading and trailing
    dots and spaces go; reserved Windows names (``CON``, ``COM1``...) get a leading ``_``.
    Chinese and other letters are kept.
    """
    text = unicodedata.normalize("NFC", str(name))
    text = re.sub(r'[<>:"/\\|?*\x00-\x1f\x7f]', "_", text).strip(" .")[:max_chars].strip(" .")
    if not text:
        text = "_"
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def write_ics_all(schedule: pd.DataFrame, folder: PathLike, *,
                  calendar_name: str = "Visits {rep_id}", tz: str = "Asia/Shanghai",
                  account_info: Any = None, dates: Any = None, start_date: Any = None,
                  workdays: str | Iterable[int] = "mon-fri",
                  dtstamp: dt.datetime | None = None) -> dict[str, Path]:
    """Write ``<folder>/calendars/<rep_id>.ics`` for every rep in the schedule.

    File names are ``sanitize_filename(rep_id)``; when two reps would share a name (``A/1``
    and ``A_1``, or names differing only in case), a short hash of the id is appended.

    Parameters
    ----------
    calendar_name:
        Name of each calendar; ``{rep_id}`` is replaced by the rep's id.
    schedule, tz, account_info, dates, start_date, workdays, dtstamp:
        As for ``write_ics``.

    Returns
    -------
    dict
        rep id -> path written, in the order the reps first appear.

    Raises
    ------
    InvalidInputError
        As for ``write_ics``.
    """
    rows = _prepare_schedule(schedule, account_info=account_info, dates=dates,
                             start_date=start_date, workdays=workdays)
    target = Path(folder) / "calendars"
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    used: set[str] = set()
    stamp = dtstamp or dt.datetime.now(dt.UTC)  # one stamp for the whole export
    for rep, group in rows.groupby("rep_id", sort=False):
        base = sanitize_filename(rep)
        if base.lower() in used:
            tag = hashlib.sha1(str(rep).encode(), usedforsecurity=False).hexdigest()[:8]
            base = f"{base}-{tag}"
        used.add(base.lower())
        text = _calendar_text(group, rep_id=str(rep),
                              calendar_name=calendar_name.replace("{rep_id}", str(rep)),
                              tz=tz, dtstamp=stamp)
        out = target / f"{base}.ics"
        try:
            out.write_bytes(text.encode("utf-8"))
        except OSError as exc:
            raise InvalidInputError(f"{out}: cannot be written ({exc}).") from None
        written[str(rep)] = out
    return written


# ----------------------------------------------------------------------------------------------
# GIS layers

_GEO_DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG"}


def _geo_ready(gdf: gpd.GeoDataFrame, name: str) -> gpd.GeoDataFrame:
    """EPSG:4326, text column names, and nested values (lists, dicts) as JSON text."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InvalidInputError(f"Layer {name!r}: expected a GeoDataFrame, got "
                                f"{type(gdf).__name__}.")
    out = gdf.copy()
    if out.crs is None:
        out = out.set_crs("EPSG:4326")  # as everywhere in territory: no CRS means lon/lat
    elif not out.crs.equals("EPSG:4326"):
        out = out.to_crs("EPSG:4326")
    out.columns = [c if c == out.geometry.name else str(c) for c in out.columns]
    for c in out.columns:
        if c == out.geometry.name or out[c].dtype != object:
            continue
        if out[c].map(lambda v: isinstance(v, list | tuple | dict | set)).any():
            out[c] = out[c].map(lambda v: json.dumps(list(v) if isinstance(v, set | tuple)
                                                     else v, ensure_ascii=False, default=str)
                                if isinstance(v, list | tuple | dict | set) else v)
    return out


def write_geo(gdf: gpd.GeoDataFrame | Mapping[str, gpd.GeoDataFrame], path: PathLike, *,
              layer: str | None = None) -> Path:
    """Write GeoDataFrames as GeoJSON or GeoPackage (by extension), in EPSG:4326.

    Parameters
    ----------
    gdf:
        One GeoDataFrame, or layer name -> GeoDataFrame (GeoPackage only), e.g.
        ``{"territories": polys, "accounts": points, "routes": lines}``. A frame without CRS
        is taken as lon/lat; another CRS is transformed. Lists and dicts in cells are written
        as JSON text.
    path:
        ``.geojson`` / ``.json`` (one layer; an existing file is replaced) or ``.gpkg``
        (an existing GeoPackage keeps its other layers; a layer of the same name is replaced).
    layer:
        Layer name of a single frame; default the file name without extension.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InvalidInputError
        Unsupported extension, several layers for GeoJSON, a value that is not a
        GeoDataFrame, or the file cannot be written.
    """
    import pyogrio

    out = Path(path)
    driver = _GEO_DRIVERS.get(out.suffix.lower())
    if driver is None:
        raise InvalidInputError(f"{out}: unsupported file type {out.suffix or '(none)'!r}.",
                                hint="Use .gpkg (several layers), .geojson or .json.")
    layers = (dict(gdf) if isinstance(gdf, Mapping)
              else {layer or out.stem: gdf})
    if not layers:
        raise InvalidInputError("write_geo needs at least one layer.")
    if driver == "GeoJSON" and len(layers) > 1:
        raise InvalidInputError(f"{out}: GeoJSON holds one layer, got {list(layers)}.",
                                hint="Write a .gpkg, or one .geojson per layer.")
    _mkdir_for(out)
    for name, frame in layers.items():
        ready = _geo_ready(frame, str(name))
        try:
            if driver == "GeoJSON":
                pyogrio.write_dataframe(ready, out, driver=driver)
            else:
                pyogrio.write_dataframe(ready, out, driver=driver, layer=str(name))
        except Exception as exc:  # GDAL errors have many types; all mean "cannot write"
            raise InvalidInputError(f"{out}: cannot write layer {name!r} ({exc}).") from None
    return out


@functools.lru_cache(maxsize=1)
def _transformer() -> Any:
    import pyproj

    return pyproj.Transformer.from_crs("EPSG:4326", _ALBERS_CHINA, always_xy=True)


def _to_km(lonlat: np.ndarray) -> np.ndarray:
    x, y = _transformer().transform(lonlat[:, 0], lonlat[:, 1])
    return np.column_stack([x, y])


def _to_lonlat(xy: np.ndarray) -> np.ndarray:
    lon, lat = _transformer().transform(xy[:, 0], xy[:, 1], direction="INVERSE")
    return np.column_stack([lon, lat])


@functools.lru_cache(maxsize=1)
def _china_km() -> Any:
    """Union of the bundled provinces in the planar km projection (cached: about 0.5 s)."""
    from territory import china

    union = shapely.union_all(china.provinces().geometry.to_numpy())
    land = shapely.make_valid(shapely.transform(union, _to_km))
    shapely.prepare(land)
    return land


def _polygonal(geom: Any) -> Any:
    """Only the polygon parts of a geometry (make_valid may add lines or points)."""
    if geom is None or geom.is_empty:
        return shapely.MultiPolygon()
    geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.MultiPolygon()


def _labels(territory: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes per point, -1 = none; sorted distinct labels). Missing labels: None, NaN, '',
    and negative integers (the -1 of unassigned accounts)."""
    values = pd.Series(np.asarray(territory, dtype=object).reshape(-1))
    if len(values) != n:
        raise InvalidInputError(f"territory has {len(values)} labels for {n} points.",
                                hint="Give one territory label per account.")
    missing = values.map(lambda v: _is_missing(v) or v == ""
                         or (isinstance(v, int | np.integer) and not isinstance(v, bool)
                             and v < 0)).to_numpy(dtype=bool)
    try:
        codes, uniques = pd.factorize(values.where(~missing), sort=True)
    except TypeError:  # labels of mixed types cannot be sorted
        codes, uniques = pd.factorize(values.where(~missing))
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def territory_polygons(lonlat: np.ndarray, territory: Any, *,
                       method: Literal["voronoi", "hull"] = "voronoi", clip: bool = True,
                       buffer_km: float | None = None) -> gpd.GeoDataFrame:
    """Polygons of territories drawn from their accounts' locations.

    ``"voronoi"``: each account gets the part of the plane nearer to it than to any other
    account (computed in an equal-area projection); a territory is the union of its accounts'
    cells, so neighbouring territories share their borders exactly. With ``clip`` each cell is
    cut to ``buffer_km`` around its account (so a territory does not cover empty desert or
    sea) and to the bundled China provinces. Accounts at the same place count once: the place
    goes to the territory holding most of them (ties: the first label).

    ``"hull"``: a concave hull of each territory's accounts, widened by ``buffer_km``; hulls
    of neighbours may overlap.

    Every territory with at least one located account gets exactly one row. Its polygon is
    valid (``make_valid``), possibly a MultiPolygon. A territory whose shape lies wholly
    outside the provinces (accounts at sea) keeps its unclipped shape; one whose every
    account shares its place with a larger territory gets a small disc of radius
    ``buffer_km / 10`` around them (which overlaps that territory).

    Parameters
    ----------
    lonlat:
        (n, 2) WGS-84 lon/lat of the accounts; rows with NaN are ignored.
    territory:
        (n,) territory label per account (strings or ints); missing labels (None, NaN,
        ``""``, negative ints such as the -1 of unassigned accounts) are ignored.
    method:
        ``"voronoi"`` or ``"hull"``.
    clip:
        Cut to ``buffer_km`` around the accounts and to China's land (``"voronoi"``), to
        China's land (``"hull"``). Without it Voronoi cells fill the accounts' bounding box
        widened by ``buffer_km``.
    buffer_km:
        Default 50 km (``"voronoi"``) or 5 km (``"hull"``).

    Returns
    -------
    geopandas.GeoDataFrame
        ``territory`` (the label), ``accounts`` (number of located accounts), ``geometry``
        (EPSG:4326), one row per territory in label order.

    Raises
    ------
    InvalidInputError
        ``lonlat`` is not (n, 2), labels do not match the points, an unknown ``method`` or a
        non-positive ``buffer_km``.
    """
    xy_ll = np.asarray(lonlat, dtype=float)
    if xy_ll.ndim != 2 or xy_ll.shape[1] != 2:
        raise InvalidInputError(f"lonlat must be an (n, 2) array, got shape {xy_ll.shape}.")
    if method not in ("voronoi", "hull"):
        raise InvalidInputError(f"method={method!r}; expected 'voronoi' or 'hull'.")
    radius = float(buffer_km if buffer_km is not None
                   else (50.0 if method == "voronoi" else 5.0))
    if not radius > 0:
        raise InvalidInputError(f"buffer_km={buffer_km!r}; expected > 0.")
    codes, labels = _labels(territory, len(xy_ll))
    ok = (codes >= 0) & np.isfinite(xy_ll).all(axis=1)
    xy = _to_km(xy_ll[ok]) if ok.any() else np.zeros((0, 2))
    code = codes[ok]
    counts = np.bincount(code, minlength=len(labels))
    if method == "voronoi":
        shapes = _voronoi_shapes(xy, code, len(labels), radius, clip)
    else:
        shapes = _hull_shapes(xy, code, len(labels), radius)
    land = _china_km() if clip else None
    rows_label, rows_count, geoms = [], [], []
    for k in range(len(labels)):
        if counts[k] == 0:
            continue
        shape = _polygonal(shapes[k])
        if land is not None and not shape.is_empty:
            inside = _polygonal(shapely.intersection(shape, land))
            if not inside.is_empty:
                shape = inside
        geom = _polygonal(shapely.transform(shape, _to_lonlat))
        rows_label.append(labels[k])
        rows_count.append(int(counts[k]))
        geoms.append(geom)
    return gpd.GeoDataFrame({"territory": rows_label, "accounts": rows_count},
                            geometry=geoms, crs="EPSG:4326")


def _voronoi_shapes(xy: np.ndarray, code: np.ndarray, p: int, radius: float, clip: bool
                    ) -> list[Any]:
    """Per territory code, the union of its accounts' (clipped) Voronoi cells, in km."""
    shapes: list[Any] = [shapely.MultiPolygon()] * p
    if len(xy) == 0:
        return shapes
    # Distinct places (to 1 m): GEOS merges coincident points, so a cell must map to a place.
    rounded = np.round(xy, 3)
    inverse, n_places = unique_rows(np.round(rounded * 1000.0).astype(np.int64))
    places = np.empty((n_places, 2))
    places[inverse] = rounded
    pair, pair_count = np.unique(inverse * p + code, return_counts=True)
    place_of, code_of = pair // p, pair % p
    # Majority label per place: sort by place, then most accounts, then smallest code.
    order = np.lexsort((code_of, -pair_count, place_of))
    first = np.r_[True, place_of[order][1:] != place_of[order][:-1]]
    place_code = np.empty(len(places), dtype=np.int64)
    place_code[place_of[order][first]] = code_of[order][first]
    lo, hi = places.min(axis=0) - 2 * radius, places.max(axis=0) + 2 * radius
    frame = shapely.box(lo[0], lo[1], hi[0], hi[1])
    if len(places) == 1:
        cells, exact = np.array([frame], dtype=object), True
    else:
        cells, exact = _voronoi_cells(places, frame)
    clipped = np.zeros(len(places), dtype=bool)
    discs = np.zeros(0, dtype=object)
    if clip:
        # A point of a cell within `radius` of any account is within `radius` of the cell's
        # own account (its nearest), so cutting a territory to its own accounts' discs equals
        # cutting it to all discs; and only the discs of cells reaching farther than `radius`
        # cut anything (in towns cells are far smaller): unioning every account's disc per
        # territory dominated the report at 10^5 to 10^6 accounts.
        coords, owner = shapely.get_coordinates(cells, return_index=True)
        reach = np.zeros(len(places))
        np.maximum.at(reach, owner, np.hypot(*(coords - places[owner]).T))
        # (the discs are 32-gons inscribed in the circle)
        clipped = reach > radius * np.cos(np.pi / 32)
        discs = np.empty(len(places), dtype=object)
        discs[clipped] = shapely.buffer(shapely.points(places[clipped]), radius, quad_segs=8)
    order = np.argsort(place_code, kind="stable")
    bounds = np.searchsorted(place_code[order], np.arange(p + 1))
    for k in np.unique(place_code):
        mine = order[bounds[k]:bounds[k + 1]]
        # The cells of one diagram share their edges exactly, so a coverage union is fast
        # and leaves no slivers; borders between territories stay identical on both sides.
        region = (shapely.coverage_union_all(cells[mine]) if exact
                  else shapely.union_all(cells[mine]))
        cut = mine[clipped[mine]]
        if not clip:
            shapes[k] = shapely.intersection(region, frame)
        elif len(cut):
            whole = mine[~clipped[mine]]
            keep = shapely.union_all(np.concatenate([discs[cut], cells[whole]]))
            shapes[k] = shapely.intersection(region, keep)
        else:
            shapes[k] = region
    # Territories outvoted at every one of their places still get a visible shape.
    present = np.zeros(p, dtype=bool)
    present[place_code] = True
    for k in np.unique(code):
        if not present[k]:
            pts = shapely.multipoints(xy[code == k])
            shapes[k] = shapely.buffer(pts, radius / 10.0, quad_segs=8)
    return shapes


def _voronoi_cells(places: np.ndarray, frame: Any) -> tuple[np.ndarray, bool]:
    """Voronoi cell of each distinct place, in the order of ``places``, and whether the
    cells form an exact coverage (shared edges identical)."""
    points = shapely.points(places)
    try:
        diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame,
                                           ordered=True)
        cells = shapely.get_parts(diagram)
        if len(cells) == len(places) and bool(shapely.contains_properly(cells, points).all()):
            return cells, True
    except shapely.errors.GEOSException:
        pass
    # Fallback for degenerate inputs (GEOS versions without ordered output, precision
    # collapse): match cells to places by containment, nearest place for leftovers.
    diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame)
    parts = shapely.get_parts(diagram)
    tree = shapely.STRtree(points)
    out = np.array([shapely.Polygon()] * len(places), dtype=object)
    for cell in parts:
        hit = tree.query(cell, predicate="contains")
        if len(hit) == 0:
            hit = np.array([tree.nearest(shapely.point_on_surface(cell))])
        j = int(hit[0])
        out[j] = cell if out[j].is_empty else shapely.union(out[j], cell)
    empty = shapely.is_empty(out)
    out[empty] = shapely.buffer(points[empty], 1e-3)
    return out, False


def _hull_shapes(xy: np.ndarray, code: np.ndarray, p: int, radius: float) -> list[Any]:
    shapes: list[Any] = [shapely.MultiPolygon()] * p
    order = np.argsort(code, kind="stable")
    bounds = np.searchsorted(code[order], np.arange(p + 1))
    for k in range(p):
        idx = order[bounds[k]:bounds[k + 1]]
        if len(idx) == 0:
            continue
        pts = shapely.multipoints(np.unique(np.round(xy[idx], 3), axis=0))
        hull = shapely.concave_hull(pts, ratio=0.3) if len(idx) >= 4 else pts.convex_hull
        # Widening turns the hull of one or two accounts, or of collinear ones, into an area.
        shapes[k] = shapely.buffer(hull, radius, quad_segs=8)
    return shapes


def territory_colours(geoms: Any, palette: Sequence[str] = PALETTE,
                      gap_deg: float = 0.02) -> list[str]:
    """A colour per polygon such that neighbours differ when the palette allows it.

    Greedy colouring of the adjacency graph (polygons within ``gap_deg`` degrees of each
    other), most-connected polygons first, each taking the least used colour its neighbours
    leave free (so up to ``len(palette)`` polygons all differ). Deterministic.

    Parameters
    ----------
    geoms:
        A GeoSeries/GeoDataFrame or an array of shapely geometries.
    palette:
        Colours to use, in order of preference.
    gap_deg:
        Polygons closer than this count as neighbours (Voronoi territories clipped to
        discs can be separated by a thin gap).
    """
    arr = np.asarray(getattr(geoms, "geometry", geoms), dtype=object)
    n = len(arr)
    if n == 0:
        return []
    valid = np.array([g is not None and not g.is_empty for g in arr])
    tree = shapely.STRtree(np.where(valid, arr, shapely.Point()))
    left, right = tree.query(np.where(valid, arr, shapely.Point()), predicate="dwithin",
                             distance=gap_deg)
    keep = left != right
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip(left[keep], right[keep], strict=True):
        neighbours[int(a)].add(int(b))
    order = sorted(range(n), key=lambda i: (-len(neighbours[i]), i))
    colour = [-1] * n
    count = [0] * len(palette)
    for i in order:
        used = {colour[j] for j in neighbours[i]}
        free = [c for c in range(len(palette)) if c not in used]
        if free:
            # The least used free colour: a small map gets all-different colours, a large
            # one an even mix, and neighbours still differ.
            c = min(free, key=lambda c: (count[c], c))
        else:  # more neighbours than colours: the colour least used around it
            c = min(range(len(palette)),
                    key=lambda c: (sum(colour[j] == c for j in neighbours[i]), c))
        colour[i] = c
        count[c] += 1
    return [palette[c] for c in colour]


# ----------------------------------------------------------------------------------------------
# route lines


def _point_table(source: Any, what: str, id_names: Sequence[str], lon_names: Sequence[str],
                 lat_names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """id (text) -> (lon, lat) from a Mapping or a DataFrame (or an object with ``.frame``)."""
    if source is None:
        return {}
    if isinstance(source, Mapping):
        return {_text(k): (float(v[0]), float(v[1])) for k, v in source.items()}
    frame = getattr(source, "frame", source)
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(f"{what}: expected a DataFrame or a mapping id -> (lon, lat), "
                                f"got {type(source).__name__}.")
    key = next((c for c in id_names if c in frame.columns), None)
    lon = next((c for c in lon_names if c in frame.columns), None)
    lat = next((c for c in lat_names if c in frame.columns), None)
    if lon is None or lat is None:
        raise InvalidInputError(f"{what}: no longitude/latitude columns; its columns are "
                                f"{[str(c) for c in frame.columns]}.",
                                hint=f"Name them {lon_names[0]} and {lat_names[0]}.")
    ids = frame[key] if key is not None else frame.index.to_series()
    return {_text(i): (float(x), float(y)) for i, x, y in
            zip(ids.to_numpy(), frame[lon].to_numpy(dtype=float),
                frame[lat].to_numpy(dtype=float), strict=True)}


def _day_keys(rows: pd.DataFrame) -> list[Any]:
    """Per row the day it belongs to: the cycle day (int) when known, else the date."""
    days = rows["day"] if "day" in rows else pd.Series([None] * len(rows), dtype=object)
    return [int(k) if not pd.isna(k) else d
            for k, d in zip(days.to_numpy(dtype=object), rows["date"], strict=True)]


def route_lines(schedule: pd.DataFrame, lonlat_of_account: Any, homes: Any,
                stays: pd.DataFrame | None = None, *, dates: Any = None,
                start_date: Any = None, workdays: str | Iterable[int] = "mon-fri"
                ) -> gpd.GeoDataFrame:
    """One LineString per rep and day: start -> visits in sequence -> end.

    A day ends at the rep's home, or where the rep sleeps that night: a row of ``stays`` for
    that rep and day, or an ``overnight`` row of the schedule. A day starts where the rep's
    previous day (``day - 1``, or the previous date in the schedule) ended, else at home.
    Lunch rows are not drawn.

    Parameters
    ----------
    schedule:
        One row per stop: ``rep_id``, ``day`` and/or ``date``, ``sequence``, ``account_id``;
        optional ``kind``, ``lon``/``lat`` (used before the lookup), ``km`` (summed per day).
    lonlat_of_account:
        Account id -> (lon, lat): a mapping, or a table with ``account_id``/``id`` (or the
        index) and ``lon``/``lat`` (e.g. ``scenario.accounts``).
    homes:
        Rep id -> (lon, lat): a mapping, or a table with ``rep_id``/``id`` and
        ``home_lon``/``home_lat`` (or ``lon``/``lat``), e.g. ``scenario.reps``.
    stays:
        Optional table ``rep_id``, ``day`` or ``date``, and ``lon``/``lat`` or
        ``account_id``: where the rep sleeps after that day.
    dates, start_date, workdays:
        Fill the ``date`` column from ``day`` (as for ``write_ics``); optional here.

    Returns
    -------
    geopandas.GeoDataFrame
        ``rep_id``, ``day`` (nullable int), ``date``, ``visits`` (stops drawn), ``start``
        and ``end`` (``"home"`` or ``"stay"``), ``line_km`` (great-circle length of the
        line), ``km`` (sum of the schedule's ``km`` when it has that column), ``geometry``
        (EPSG:4326), sorted by rep and day.

    Raises
    ------
    InvalidInputError
        Missing columns, unreadable rows, an account without coordinates or a rep without a
        home (all listed).
    """
    rows = _prepare_schedule(schedule, dates=dates, start_date=start_date, workdays=workdays,
                             need_times=False, need_dates=False)
    acc = _point_table(lonlat_of_account, "lonlat_of_account", ("account_id", "id"),
                       ("lon", "lng", "longitude"), ("lat", "latitude"))
    home = _point_table(homes, "homes", ("rep_id", "id"), ("home_lon", "lon", "lng"),
                        ("home_lat", "lat"))
    rows["daykey"] = _day_keys(rows)
    # A stay given by date for a schedule keyed by day: translate through the schedule.
    day_of_date = {(r, d): k for r, d, k in zip(rows["rep_id"], rows["date"], rows["daykey"],
                                                strict=True)
                   if d is not None and isinstance(k, int)}
    problems: list[Problem] = []

    def where(r: Any) -> tuple[float, float] | None:
        if not math.isnan(r.lon) and not math.isnan(r.lat):
            return float(r.lon), float(r.lat)
        return acc.get(r.account_id)

    stay_at: dict[tuple[str, Any], tuple[float, float]] = {}
    for r in rows.loc[rows["kind"] == "overnight"].itertuples():
        p = where(r)
        if p is not None:
            stay_at[(r.rep_id, r.daykey)] = p
    if stays is not None:
        stay_rows = _prepare_schedule(stays, dates=dates, start_date=start_date,
                                      workdays=workdays, need_times=False, need_dates=False,
                                      need_accounts=False)
        stay_rows["daykey"] = _day_keys(stay_rows)
        for r in stay_rows.itertuples():
            p = where(r)
            if p is None:
                problems.append(Problem(row=r.row, id=r.account_id or None, field="lon/lat",
                                        value=None, message="stay without a location; give "
                                        "lon/lat or a known account_id"))
            else:
                key = day_of_date.get((r.rep_id, r.daykey), r.daykey)
                stay_at[(r.rep_id, key)] = p
    visits = rows.loc[rows["kind"] == "visit"]
    undated = visits["daykey"].map(lambda k: k is None).to_numpy(dtype=bool)
    problems += [Problem(row=r, id=None, field="day", value=None,
                         message="missing; give the stop's day or date")
                 for r in visits.loc[undated, "row"]]
    records = []
    for (rep, key), group in visits.loc[~undated].groupby(["rep_id", "daykey"], sort=False):
        if isinstance(key, np.integer):
            key = int(key)  # groupby hands out numpy scalars
        if rep not in home:
            problems.append(Problem(row=group["row"].iat[0], id=None, field="rep_id",
                                    value=rep, message="has no home in homes"))
            continue
        group = group.sort_values(["sequence", "start"], kind="stable")
        pts: list[tuple[float, float]] = []
        for r in group.itertuples():
            p = where(r)
            if p is None or not all(map(math.isfinite, p)):
                problems.append(Problem(row=r.row, id=r.account_id, field="account_id",
                                        value=r.account_id, message="has no coordinates"))
            else:
                pts.append(p)
        records.append((rep, key, group, pts))
    if problems:
        raise InvalidInputError("route_lines cannot place every stop.", problems,
                                kind="Account",
                                hint="Give every account lon/lat (lonlat_of_account) and every "
                                     "rep a home (homes).")

    def sort_key(key: Any) -> tuple[int, int]:
        return (0, key) if isinstance(key, int) else (1, key.toordinal())

    records.sort(key=lambda t: (t[0], sort_key(t[1])))
    out: dict[str, list[Any]] = {k: [] for k in ("rep_id", "day", "date", "visits", "start",
                                                 "end", "line_km", "km", "geometry")}
    previous: dict[str, Any] = {}
    for rep, key, group, pts in records:
        prev_key = previous.get(rep)
        if isinstance(key, int):
            before = stay_at.get((rep, key - 1))
        else:
            before = stay_at.get((rep, prev_key)) if prev_key is not None else None
        previous[rep] = key
        after = stay_at.get((rep, key))
        begin = before or home[rep]
        end = after or home[rep]
        line = np.array([begin, *pts, end], dtype=float)
        legs = haversine_km(line[:-1, 0], line[:-1, 1], line[1:, 0], line[1:, 1])
        day_val = key if isinstance(key, int) else None
        dates_in = [d for d in group["date"] if d is not None]
        out["rep_id"].append(rep)
        out["day"].append(day_val)
        out["date"].append(dates_in[0] if dates_in else None)
        out["visits"].append(len(pts))
        out["start"].append("stay" if before else "home")
        out["end"].append("stay" if after else "home")
        out["line_km"].append(float(legs.sum()))
        out["km"].append(float(pd.to_numeric(group["km"], errors="coerce").sum())
                         if "km" in group else math.nan)
        out["geometry"].append(shapely.LineString(line))
    result = gpd.GeoDataFrame({k: v for k, v in out.items() if k != "geometry"},
                              geometry=out["geometry"], crs="EPSG:4326")
    result["day"] = pd.array(result["day"], dtype="Int64")
    if "km" not in rows:
        result = result.drop(columns="km")
    return result
