"""The call-cycle problem of one field rep: who is visited on which working day, in which order.

Model
-----
Locations ``0..n``: ``0`` is the rep's home, ``a + 1`` is account ``a`` (accounts are numbered
``0..n-1`` everywhere in this package; only the travel matrices are indexed by location).

The horizon has ``D`` working days ``d = 0..D-1`` (default 20: four weeks Monday-Friday; the
caller builds the calendar with its holidays) with weekday ``day_weekday[d]`` (0 = Monday) and week
``day_week[d]``.

Account ``a`` needs ``f_a = visits[a]`` visits of ``visit_min[a]`` minutes in the cycle. A visit
lies entirely inside one opening window of the weekday it falls on (``open_windows[a, w]``) and
inside the rep's working window ``[work_start[d], work_end[d]]``.

Spacing (two modes):

* windows (default): visit ``j`` (0-based) falls in the ``j``-th of ``f_a`` equal windows of the
  horizon, days ``floor(j D / f_a) .. floor((j + 1) D / f_a) - 1``;
* gap (``min_gap_days`` given): any two visits of one account are at least ``min_gap_days``
  working days apart (day index difference); visits are numbered in day order.

The rep leaves home (or the previous night's stay) at or after ``work_start[d]`` and is back
(or at tonight's stay) by ``work_end[d]``. A lunch break of ``lunch_min`` minutes starts within
``[lunch_start, lunch_end - lunch_min]``; it may fall between two stops (while driving or
waiting, never during a visit), or before leaving / after coming back (lunch at home).
Work of a day = end - start - lunch (driving, visiting and waiting count; lunch does not) and
must not exceed ``max_work_min`` (default: no bound beyond the working window).

Overnight stays: after day ``d`` the rep may sleep near an account (at its location) instead of
going home, if day ``d + 1`` is the next calendar day of the same week; day ``d + 1`` then starts
there. A stay costs ``night_cost`` (objective units) and at most ``max_nights_per_week`` nights
fall in one week. Stays are only considered near accounts at least ``stay_min_drive_min`` minutes
from home (the planner never sleeps out for nearby accounts).

Fixed appointments ``(account, day, start)`` must start exactly then (they override the opening
hours: the account agreed to the time; the working window still applies). With a ``previous``
plan and ``frozen_days = k``, days ``0..k-1`` are copied from it unchanged.

Objective (minimised): ``sum over driven legs (minute_cost * minutes + km_cost * km)
+ night_cost * nights + sum over dropped visits of penalty``, where the penalty of a visit of
account ``a`` is proportional to ``value[a]`` and scaled so that the smallest penalty exceeds any
detour: serving a visit always beats saving travel, and when time runs out the least valuable
visits (per minute they need) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from solvers.errors import SolverInputError

if TYPE_CHECKING:
    from solvers.routing.cycle_plan import CallCyclePlan

__all__ = ["MINUTES_PER_DAY", "CallCycleProblem", "default_calendar", "windows_from_hours"]

MINUTES_PER_DAY = 1440


def default_calendar(weeks: int = 4, weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(day_weekday, day_week)`` of ``weeks`` weeks of ``weekdays`` (default 4 x Mon-Fri)."""
    wd = np.tile(np.asarray(weekdays, dtype=np.int64), weeks)
    wk = np.repeat(np.arange(weeks, dtype=np.int64), len(weekdays))
    return wd, wk


def windows_from_hours(hours: list[list[list[tuple[int, int]]]] | list[Any]) -> np.ndarray:
    """Pack per-account, per-weekday window lists into the ``(n, 7, K, 2)`` array form.

    ``hours[a][w]`` is a sequence of ``(open, close)`` minutes for account ``a`` on weekday
    ``w`` (0 = Monday); an empty sequence means closed. ``K`` is the largest number of windows
    of any day; shorter days are padded with ``-1``.
    """
    n = len(hours)
    k = max([1] + [len(day) for acc in hours for day in acc])
    out = np.full((n, 7, k, 2), -1, dtype=np.int64)
    for a, acc in enumerate(hours):
        if len(acc) != 7:
            raise SolverInputError(f"open_windows: account {a} has {len(acc)} weekdays, need 7")
        for w, day in enumerate(acc):
            for i, (lo, hi) in enumerate(sorted(day)):
                out[a, w, i] = (lo, hi)
    return out


def _readonly(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x)
    x.setflags(write=False)
    return x


def _per_day(value: Any, d: int, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(d, arr)
    if arr.shape != (d,):
        raise SolverInputError(f"{name}: expected a scalar or shape ({d},), got {arr.shape}")
    if not np.all(np.isfinite(arr.astype(float))):
        raise SolverInputError(f"{name}: must be finite")
    if np.any(arr != np.round(arr)):
        raise SolverInputError(f"{name}: minutes from midnight must be whole minutes")
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class CallCycleProblem:
    """One rep's call-cycle planning problem (see the module docstring for the model).

    Parameters
    ----------
    minutes, km : ndarray, shape (n + 1, n + 1)
        Driving minutes and road km between locations (0 = home, ``a + 1`` = account ``a``).
    visits : ndarray of int, shape (n,)
        Visits per cycle (0 allowed).
    visit_min : ndarray of int, shape (n,)
        Minutes per visit (>= 1).
    open_windows : ndarray of int, shape (n, 7, K, 2), optional
        Opening windows ``[open, close)`` per weekday in minutes from midnight, ``-1`` padding;
        a weekday with no window is closed. Default: open all day, every day.
    value : ndarray of float, shape (n,), optional
        Value of one visit (>= 0; the drop penalty basis). Default 1.
    day_weekday, day_week : ndarray of int, shape (D,), optional
        Weekday (0 = Monday) and week index of each working day. Default four weeks Mon-Fri.
        ``day_week`` defaults to counting a new week whenever the weekday does not increase.
    work_start, work_end : int or ndarray (D,)
        Working window per day, minutes from midnight (default 08:30-17:30).
    lunch_min, lunch_start, lunch_end : int
        Break length and the window it must lie in (default 45 min within 11:30-13:30).
    max_work_min : int, optional
        Bound on end - start - lunch per day (default: none beyond the working window).
    min_gap_days : int, optional
        Gap spacing mode (see the module docstring); default ``None`` = window mode.
    night_cost : float
        Cost of one overnight stay, in objective units (default 120: two hours of driving).
    max_nights_per_week : int
        Nights away from home per week (default 2; 0 disables stays).
    stay_min_drive_min : float
        Stays are only considered near accounts at least this many minutes from home (150).
    minute_cost, km_cost : float
        Travel cost per driving minute and per km (default 1 and 0: the objective is minutes).
    appointments : ndarray of int, shape (m, 3), optional
        Fixed appointments ``(account, day, start minute)``.
    previous : CallCyclePlan, optional
        The plan to re-plan from; required when ``frozen_days > 0``.
    frozen_days : int
        Days ``0..frozen_days-1`` are copied from ``previous`` unchanged.

    Raises
    ------
    SolverInputError
        A field has the wrong shape, sign or range; the message names the field.
    """

    minutes: np.ndarray
    km: np.ndarray
    visits: np.ndarray
    visit_min: np.ndarray
    open_windows: np.ndarray | None = None
    value: np.ndarray | None = None
    day_weekday: np.ndarray | None = None
    day_week: np.ndarray | None = None
    work_start: Any = 510
    work_end: Any = 1050
    lunch_min: int = 45
    lunch_start: int = 690
    lunch_end: int = 810
    max_work_min: int | None = None
    min_gap_days: int | None = None
    night_cost: float = 120.0
    max_nights_per_week: int = 2
    stay_min_drive_min: float = 150.0
    minute_cost: float = 1.0
    km_cost: float = 0.0
    appointments: np.ndarray | None = None
    previous: CallCyclePlan | None = None
    frozen_days: int = 0

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        minutes = np.asarray(self.minutes, dtype=np.float64)
        if minutes.ndim != 2 or minutes.shape[0] != minutes.shape[1] or minutes.shape[0] < 1:
            raise SolverInputError(f"minutes: expected a square (n+1, n+1) matrix, got shape "
                                   f"{minutes.shape}")
        n = minutes.shape[0] - 1
        km = np.asarray(self.km, dtype=np.float64)
        if km.shape != minutes.shape:
            raise SolverInputError(f"km: expected shape {minutes.shape}, got {km.shape}")
        for name, mat in (("minutes", minutes), ("km", km)):
            if not np.all(np.isfinite(mat)) or np.any(mat < 0):
                bad = np.argwhere(~np.isfinite(mat) | (mat < 0))[0]
                raise SolverInputError(f"{name}[{bad[0]}, {bad[1]}] = {mat[tuple(bad)]}; "
                                       f"expected finite values >= 0")
        put("minutes", _readonly(minutes))
        put("km", _readonly(km))

        visits = np.asarray(self.visits)
        if visits.shape != (n,) or np.any(visits < 0) or np.any(visits != np.round(visits)):
            raise SolverInputError(f"visits: expected {n} whole numbers >= 0 (one per account), "
                                   f"got shape {visits.shape}")
        put("visits", _readonly(visits.astype(np.int64)))
        vmin = np.asarray(self.visit_min)
        if vmin.shape != (n,) or np.any(vmin < 1) or np.any(vmin != np.round(vmin)):
            raise SolverInputError(f"visit_min: expected {n} whole minutes >= 1, got "
                                   f"{vmin if vmin.size < 10 else vmin.shape}")
        put("visit_min", _readonly(vmin.astype(np.int64)))

        if self.open_windows is None:
            ow = np.zeros((n, 7, 1, 2), dtype=np.int64)
            ow[..., 1] = MINUTES_PER_DAY
        else:
            ow = np.asarray(self.open_windows)
            if ow.ndim != 4 or ow.shape[:2] != (n, 7) or ow.shape[3] != 2 or ow.shape[2] < 1:
                raise SolverInputError(f"open_windows: expected shape ({n}, 7, K, 2), got "
                                       f"{ow.shape}")
            ow = ow.astype(np.int64)
            pad = (ow[..., 0] < 0) | (ow[..., 1] < 0)
            if np.any(pad & ~((ow[..., 0] == -1) & (ow[..., 1] == -1))):
                a, w, k = np.argwhere(pad & ~((ow[..., 0] == -1) & (ow[..., 1] == -1)))[0]
                raise SolverInputError(f"open_windows[{a}, {w}, {k}] = {ow[a, w, k].tolist()}; "
                                       f"padding must be (-1, -1)")
            bad = ~pad & ((ow[..., 1] <= ow[..., 0]) | (ow[..., 1] > 2 * MINUTES_PER_DAY))
            if np.any(bad):
                a, w, k = np.argwhere(bad)[0]
                raise SolverInputError(f"open_windows[{a}, {w}, {k}] = {ow[a, w, k].tolist()}; "
                                       f"expected open < close (minutes from midnight)")
        put("open_windows", _readonly(ow))

        if self.value is None:
            val = np.ones(n)
        else:
            val = np.asarray(self.value, dtype=np.float64)
            if val.shape != (n,) or not np.all(np.isfinite(val)) or np.any(val < 0):
                raise SolverInputError(f"value: expected {n} finite numbers >= 0")
        put("value", _readonly(val))

        if self.day_weekday is None and self.day_week is None:
            wd, wk = default_calendar()
        else:
            if self.day_weekday is None:
                raise SolverInputError("day_weekday: required when day_week is given")
            wd = np.asarray(self.day_weekday)
            if wd.ndim != 1 or len(wd) < 1 or np.any((wd < 0) | (wd > 6)):
                raise SolverInputError("day_weekday: expected a 1-d array of weekdays 0..6")
            if self.day_week is None:
                wk = np.concatenate([[0], np.cumsum(np.diff(wd) <= 0)])
            else:
                wk = np.asarray(self.day_week)
                if wk.shape != wd.shape or np.any(np.diff(wk) < 0) or np.any(wk < 0):
                    raise SolverInputError("day_week: expected non-decreasing week indices >= 0, "
                                           "one per day")
        wd = wd.astype(np.int64)
        wk = wk.astype(np.int64)
        put("day_weekday", _readonly(wd))
        put("day_week", _readonly(wk))
        d = len(wd)
        ws = _per_day(self.work_start, d, "work_start")
        we = _per_day(self.work_end, d, "work_end")
        if np.any(ws < 0) or np.any(we > 2 * MINUTES_PER_DAY) or np.any(we <= ws):
            raise SolverInputError("work_start/work_end: expected 0 <= work_start < work_end "
                                   "(minutes from midnight)")
        put("work_start", _readonly(ws))
        put("work_end", _readonly(we))

        for name in ("lunch_min", "lunch_start", "lunch_end", "max_nights_per_week",
                     "frozen_days"):
            v = getattr(self, name)
            if int(v) != v or v < 0:
                raise SolverInputError(f"{name}={v!r}; expected a whole number >= 0")
            put(name, int(v))
        if self.lunch_min > 0 and self.lunch_end - self.lunch_start < self.lunch_min:
            raise SolverInputError(f"lunch_end - lunch_start = {self.lunch_end - self.lunch_start}"
                                   f" < lunch_min = {self.lunch_min}; widen the lunch window")
        if self.max_work_min is not None:
            if int(self.max_work_min) != self.max_work_min or self.max_work_min < 1:
                raise SolverInputError(f"max_work_min={self.max_work_min!r}; expected >= 1")
            put("max_work_min", int(self.max_work_min))
        if self.min_gap_days is not None:
            if int(self.min_gap_days) != self.min_gap_days or self.min_gap_days < 1:
                raise SolverInputError(f"min_gap_days={self.min_gap_days!r}; expected >= 1 "
                                       f"(or None for window spacing)")
            put("min_gap_days", int(self.min_gap_days))
        for name in ("night_cost", "stay_min_drive_min", "minute_cost", "km_cost"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise SolverInputError(f"{name}={v!r}; expected a finite number >= 0")
            put(name, v)
        if self.minute_cost == 0 and self.km_cost == 0:
            raise SolverInputError("minute_cost and km_cost are both 0; travel would be free")

        if self.appointments is None:
            ap = np.zeros((0, 3), dtype=np.int64)
        else:
            ap = np.asarray(self.appointments).reshape(-1, 3)
            if np.any(ap != np.round(ap)):
                raise SolverInputError("appointments: expected whole numbers (account, day, start)")
            ap = ap.astype(np.int64)
        for i, (a, day, start) in enumerate(ap):
            if not 0 <= a < n:
                raise SolverInputError(f"appointments[{i}]: account {a} out of range 0..{n - 1}")
            if not 0 <= day < d:
                raise SolverInputError(f"appointments[{i}]: day {day} out of range 0..{d - 1}")
            if start < ws[day] or start + vmin[a] > we[day]:
                raise SolverInputError(
                    f"appointments[{i}]: account {a} at {start} on day {day} does not fit the "
                    f"working window [{ws[day]}, {we[day]}] with its {vmin[a]}-minute visit")
        order = np.lexsort((ap[:, 2], ap[:, 1])) if len(ap) else np.zeros(0, dtype=np.int64)
        ap = ap[order]
        for i in range(1, len(ap)):
            (a0, d0, s0), (a1, d1, s1) = ap[i - 1], ap[i]
            if d0 == d1 and s0 + vmin[a0] + minutes[a0 + 1, a1 + 1] > s1:
                raise SolverInputError(
                    f"appointments: account {a0} at {s0} and account {a1} at {s1} on day {d0} "
                    f"overlap (visit plus travel); move one of them")
        put("appointments", _readonly(ap))

        if self.frozen_days > d:
            raise SolverInputError(f"frozen_days={self.frozen_days} exceeds the {d} days")
        if self.frozen_days > 0:
            if self.previous is None:
                raise SolverInputError("previous: required when frozen_days > 0")
            if len(self.previous.days) < self.frozen_days:
                raise SolverInputError(f"previous: has {len(self.previous.days)} days, fewer than "
                                       f"frozen_days={self.frozen_days}")
            for day in self.previous.days[: self.frozen_days]:
                for v in day.visits:
                    if not 0 <= v.account < n:
                        raise SolverInputError(f"previous: day {day.day} visits account "
                                               f"{v.account}, out of range 0..{n - 1}")
                for stay in (day.stay, day.start_stay):
                    if stay is not None and not 0 <= stay < n:
                        raise SolverInputError(f"previous: day {day.day} stay {stay} out of "
                                               f"range 0..{n - 1}")

    # ---------------------------------------------------------------- derived quantities
    @property
    def n_accounts(self) -> int:
        return int(self.visits.shape[0])

    @property
    def n_days(self) -> int:
        return int(self.day_weekday.shape[0])  # type: ignore[union-attr]

    @property
    def gap_mode(self) -> bool:
        """True when spacing is by ``min_gap_days`` instead of windows."""
        return self.min_gap_days is not None

    def visit_window(self, a: int, j: int) -> tuple[int, int]:
        """Days ``[first, last]`` of visit ``j`` of account ``a`` in window mode (may be empty)."""
        f = int(self.visits[a])
        d = self.n_days
        return (j * d) // f, ((j + 1) * d) // f - 1

    def span_bound_min(self) -> np.ndarray:
        """Upper bound on day end - day start per day, in minutes (lunch included).

        With ``max_work_min`` the bound is ``max_work_min + lunch_min`` when the lunch must fall
        inside any day that long; when a day that long could also fit entirely before or after
        the lunch window (very short ``max_work_min``), lunch is not credited (conservative).
        """
        ws = np.asarray(self.work_start)
        we = np.asarray(self.work_end)
        full = we - ws
        if self.max_work_min is None:
            return full.copy()
        lat = self.lunch_end - self.lunch_min
        outside = np.maximum(we - (self.lunch_start + self.lunch_min), lat - ws)
        credit = np.where(self.max_work_min >= outside, self.lunch_min, 0)
        return np.minimum(full, self.max_work_min + credit)

    def linkable(self) -> np.ndarray:
        """``(D,)`` bool: the rep may stay out after day ``d`` (next day is the next weekday)."""
        wd = np.asarray(self.day_weekday)
        wk = np.asarray(self.day_week)
        out = np.zeros(len(wd), dtype=bool)
        out[:-1] = (wk[1:] == wk[:-1]) & (wd[1:] == wd[:-1] + 1)
        return out

    def available_min(self) -> np.ndarray:
        """Working minutes available per day (window minus lunch, capped by max work)."""
        avail = np.asarray(self.work_end) - np.asarray(self.work_start) - self.lunch_min
        if self.max_work_min is not None:
            avail = np.minimum(avail, self.max_work_min)
        return np.maximum(avail, 0)
