"""The result of call-cycle planning: per day the ordered visits with times, stays and drops."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DROP_REASONS", "CallCyclePlan", "DayPlan", "DroppedVisit", "PlannedVisit"]

#: Reason codes of dropped visits and their text.
DROP_REASONS: dict[str, str] = {
    "closed": "no working day in its spacing window when the account is open",
    "unreachable": "cannot be visited within a working day from home or any allowed stay",
    "frozen": "its spacing window lies in the frozen days and the frozen plan does not serve it",
    "no_time": "not enough working time in its window days",
    "gap": "no day left at the minimum gap from its other visits",
    "appointment": "fixed appointment could not be kept (conflicts with lunch, hours or travel)",
}


def _clock(m: float) -> str:
    m = round(m)
    return f"{m // 60:02d}:{m % 60:02d}"


@dataclass(frozen=True)
class PlannedVisit:
    """One visit in a day plan (times in minutes from midnight of that day).

    ``visit`` is the visit number ``j`` of the account (0-based); numbers ``>= visits[a]`` are
    extra visits kept from fixed appointments or frozen days.
    """

    account: int
    visit: int
    arrival: int
    start: int
    departure: int
    appointment: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "visit": self.visit, "arrival": self.arrival,
                "start": self.start, "departure": self.departure,
                "appointment": self.appointment}


@dataclass(frozen=True)
class DayPlan:
    """One working day: ordered visits, lunch, times and the minutes it takes.

    Attributes
    ----------
    start_min, end_min : int
        Departure from the start location and arrival at the end location (home or stay).
    lunch_start, lunch_end : int or None
        The break (may lie before ``start_min`` or after ``end_min``: lunch at home); ``None``
        when the problem has no lunch.
    start_stay : int or None
        Account near which the rep slept before this day (``None``: the day starts at home).
    stay : int or None
        Account near which the rep sleeps after this day (``None``: home).
    drive_min, travel_km : float
        Driving minutes and road km of the day (from the matrices; times in the schedule round
        each leg up to whole minutes).
    visit_min, break_min, idle_min, work_min : float
        Minutes visiting, on lunch inside the day, waiting (``end - start - drive - visit -
        break``, including the rounding of legs) and working (``end - start - break``).
    """

    day: int
    weekday: int
    week: int
    visits: tuple[PlannedVisit, ...]
    start_min: int
    end_min: int
    lunch_start: int | None
    lunch_end: int | None
    start_stay: int | None
    stay: int | None
    drive_min: float
    travel_km: float
    visit_min: float
    break_min: float
    idle_min: float
    work_min: float
    frozen: bool = False

    @property
    def starts_at_home(self) -> bool:
        return self.start_stay is None

    @property
    def accounts(self) -> tuple[int, ...]:
        return tuple(v.account for v in self.visits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day, "weekday": self.weekday, "week": self.week,
            "visits": [v.to_dict() for v in self.visits],
            "start_min": self.start_min, "end_min": self.end_min,
            "lunch_start": self.lunch_start, "lunch_end": self.lunch_end,
            "start_stay": self.start_stay, "stay": self.stay,
            "starts_at_home": self.starts_at_home,
            "drive_min": round(self.drive_min, 3), "travel_km": round(self.travel_km, 3),
            "visit_min": self.visit_min, "break_min": self.break_min,
            "idle_min": round(self.idle_min, 3), "work_min": round(self.work_min, 3),
            "frozen": self.frozen,
        }


@dataclass(frozen=True)
class DroppedVisit:
    """A required visit that is not in the plan, with the reason (``DROP_REASONS`` code)."""

    account: int
    visit: int
    reason: str
    value: float

    @property
    def reason_text(self) -> str:
        return DROP_REASONS.get(self.reason, self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {"account": self.account, "visit": self.visit, "reason": self.reason,
                "reason_text": self.reason_text, "value": self.value}


@dataclass(frozen=True)
class CallCyclePlan:
    """A call-cycle plan: one ``DayPlan`` per working day and the dropped visits.

    Attributes
    ----------
    days : tuple of DayPlan
        One per working day of the horizon, in order.
    dropped : tuple of DroppedVisit
        Every required visit that is not served, with its reason.
    objective : float
        Travel cost + night cost + drop penalties, in objective units (travel minutes by
        default); drop penalties use the planner's internal scale (see ``penalty_per_value``).
    penalty_per_value : float
        Objective units charged per unit of dropped value.
    required, served : int
        Required visits (``sum(visits)``) and those served (extra visits not counted).
    value_required, value_served, value_dropped : float
        Sum of ``value`` over required / served / dropped visits.
    utilisation : float
        Total work minutes / total available minutes (working window minus lunch, capped by
        ``max_work_min``) over all days.
    runtime_s : float
        Wall-clock seconds of the call.
    stop_reason : str
        ``"time_limit"``, ``"max_iterations"``, ``"converged"`` or ``"trivial"``.
    seed : int
        The seed the plan was made with.
    stats : dict
        Method and phase statistics (construction, search iterations, OR-Tools status).
    """

    days: tuple[DayPlan, ...]
    dropped: tuple[DroppedVisit, ...]
    objective: float
    penalty_per_value: float
    required: int
    served: int
    value_required: float
    value_served: float
    value_dropped: float
    utilisation: float
    runtime_s: float
    stop_reason: str
    seed: int
    stats: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ totals
    @property
    def drive_min(self) -> float:
        return float(sum(d.drive_min for d in self.days))

    @property
    def travel_km(self) -> float:
        return float(sum(d.travel_km for d in self.days))

    @property
    def visit_min(self) -> float:
        return float(sum(d.visit_min for d in self.days))

    @property
    def work_min(self) -> float:
        return float(sum(d.work_min for d in self.days))

    @property
    def nights(self) -> int:
        return sum(d.stay is not None for d in self.days)

    @property
    def stays(self) -> tuple[tuple[int, int], ...]:
        """``(day, account)`` of every overnight stay (the rep sleeps near the account)."""
        return tuple((d.day, d.stay) for d in self.days if d.stay is not None)

    def routes(self) -> list[list[int]]:
        """Per day the ordered account indices."""
        return [list(d.accounts) for d in self.days]

    def summary(self) -> str:
        """A short text report: totals, then one line per day."""
        lines = [
            f"call cycle: {len(self.days)} days, {self.served}/{self.required} visits served "
            f"({len(self.dropped)} dropped, value {self.value_dropped:.1f} of "
            f"{self.value_required:.1f}), drive {self.drive_min / 60:.1f} h, "
            f"{self.travel_km:.0f} km, {self.nights} nights, utilisation "
            f"{100 * self.utilisation:.0f} %",
            f"objective {self.objective:.1f}, {self.runtime_s:.1f} s, stop: {self.stop_reason}, "
            f"seed {self.seed}",
        ]
        for d in self.days:
            where = "home" if d.start_stay is None else f"stay@{d.start_stay}"
            to = "home" if d.stay is None else f"stay@{d.stay}"
            lunch = ("" if d.lunch_start is None
                     else f" lunch {_clock(d.lunch_start)}-{_clock(d.lunch_end or 0)}")
            lines.append(
                f"  day {d.day:2d} (wk {d.week} wd {d.weekday}) {where}->{to} "
                f"{_clock(d.start_min)}-{_clock(d.end_min)}{lunch}: {len(d.visits)} visits, "
                f"drive {d.drive_min:.0f} min, work {d.work_min:.0f} min"
                + (" [frozen]" if d.frozen else ""))
        reasons: dict[str, int] = {}
        for x in self.dropped:
            reasons[x.reason] = reasons.get(x.reason, 0) + 1
        for code, count in sorted(reasons.items()):
            lines.append(f"  dropped {count}: {DROP_REASONS.get(code, code)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole plan."""
        return {
            "days": [d.to_dict() for d in self.days],
            "dropped": [x.to_dict() for x in self.dropped],
            "objective": self.objective, "penalty_per_value": self.penalty_per_value,
            "required": self.required, "served": self.served,
            "value_required": self.value_required, "value_served": self.value_served,
            "value_dropped": self.value_dropped, "utilisation": self.utilisation,
            "drive_min": self.drive_min, "travel_km": self.travel_km, "nights": self.nights,
            "stays": [list(s) for s in self.stays],
            "runtime_s": self.runtime_s, "stop_reason": self.stop_reason, "seed": self.seed,
            "stats": self.stats,
        }
