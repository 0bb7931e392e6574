"""Route planning, the face of the call-cycle planner: plan -> per-rep problems -> schedules.

``plan_routes(plan_or_scenario, time_limit_s=10, seed=0, workers=1)`` builds one
``solvers.routing.CallCycleProblem`` per rep (home + the rep's accounts, travel from the
scenario's travel model or a matrix provider, opening hours per weekday, the rep's hours, lunch
and working days, the calendar), plans each through an executor (processes: OR-Tools and the
numba core hold the GIL), and gathers a ``RoutePlan``: the schedule, per-day and per-rep
figures, overnight stays and dropped visits with their reasons.

Value of a visit (what the planner keeps when time runs out):
``potential * segment weight / visits`` (``SegmentRules.value_weight``: A 3, B 2, C 1), so an
account's visits share its value and an A account's visits outrank a C account's.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from solvers.errors import SolverInputError
from solvers.routing.cycle import plan_call_cycle
from solvers.routing.cycle_plan import DROP_REASONS, CallCyclePlan
from solvers.routing.cycle_problem import CallCycleProblem
from territory.errors import InvalidInputError
from territory.hours import format_clock
from territory.model import Accounts, Scenario, SegmentRules

__all__ = ["RepTask", "RoutePlan", "build_rep_problem", "plan_routes", "route_variants",
           "solve_rep_task"]


@dataclass(frozen=True, eq=False)
class RepTask:
    """Everything one rep's planning needs, small enough to ship to a worker process."""

    rep_id: str
    account_ids: np.ndarray
    problem: CallCycleProblem
    day_index: np.ndarray  # cycle day of each of the problem's days
    time_limit_s: float
    seed: int
    max_iterations: int | None
    #: Routes to start from (``plan_call_cycle``'s ``initial``), or None for a cold start.
    initial: Any = None


def solve_rep_task(task: RepTask) -> CallCyclePlan:
    """Plan one rep (runs in a worker)."""
    return plan_call_cycle(task.problem, time_limit_s=task.time_limit_s, seed=task.seed,
                           max_iterations=task.max_iterations, initial=task.initial)


def _initial_routes(warm: RoutePlan | None, rep_id: str, account_ids: np.ndarray
                    ) -> list[tuple[list[tuple[int, int]], int | None]] | None:
    """The rep's routes in ``warm`` renumbered for a problem over ``account_ids`` (visits to
    accounts it no longer has left out), or None when ``warm`` has no plan for the rep."""
    if warm is None or rep_id not in warm.plans or rep_id not in warm.account_ids:
        return None
    old_ids = warm.account_ids[rep_id]
    local = {str(a): i for i, a in enumerate(account_ids)}
    new_of = [local.get(str(a), -1) for a in old_ids]
    days: list[tuple[list[tuple[int, int]], int | None]] = []
    for day in warm.plans[rep_id].days:
        while len(days) < day.day:
            days.append(([], None))
        visits = [(new_of[v.account], v.visit) for v in day.visits if new_of[v.account] >= 0]
        stay = new_of[day.stay] if day.stay is not None else -1
        days.append((visits, stay if stay >= 0 else None))
    return days


def _windows(accounts: Accounts, positions: np.ndarray) -> np.ndarray:
    """(n, 7, K, 2) opening windows of the accounts at ``positions`` (-1 padded)."""
    codes = accounts.hours_code[positions]
    profiles = accounts.hours_profiles
    k = max(1, max((len(profiles[c].on(d)) for c in np.unique(codes) for d in range(7)),
                   default=1))
    table = np.full((len(profiles), 7, k, 2), -1, dtype=np.int64)
    for c in np.unique(codes):
        for d in range(7):
            for i, (a, b) in enumerate(profiles[c].on(d)):
                table[c, d, i] = (a, b)
    return table[codes]


def visit_values(accounts: Accounts, rules: SegmentRules | None = None) -> np.ndarray:
    """Value of one visit of each account: potential x segment weight / visits."""
    rules = rules or SegmentRules()
    weight = pd.Series(accounts.frame["segment"]).map(dict(rules.value_weight)).fillna(1.0)
    visits = np.maximum(accounts.visits, 1)
    return np.asarray(accounts.potential * weight.to_numpy(float) / visits, dtype=float)


def build_rep_problem(
    scenario: Scenario,
    rep_position: int,
    account_positions: np.ndarray,
    *,
    provider: Any = None,
    min_gap_days: int | None = None,
    night_cost: float = 120.0,
    appointments: np.ndarray | None = None,
    previous: CallCyclePlan | None = None,
    frozen_days: int = 0,
    rules: SegmentRules | None = None,
) -> tuple[CallCycleProblem, np.ndarray]:
    """The call-cycle problem of one rep, and the cycle day index of each of its days.

    Days the rep does not work (``working_days``) are left out of the rep's horizon.
    """
    reps = scenario.reps
    acc = scenario.accounts
    row = reps.frame.iloc[rep_position]
    pos = np.asarray(account_positions, dtype=np.int64)
    home = np.array([[row["home_lon"], row["home_lat"]]], dtype=float)
    pts = np.vstack([home, acc.lonlat[pos]])
    if provider is not None:
        tm = provider.table(pts)
    else:
        tm = scenario.travel.matrix(pts)
    cal = scenario.calendar
    mask = reps.workdays_mask[rep_position]
    day_index = np.array([d for d in range(cal.n_days) if mask[cal.weekdays[d]]],
                         dtype=np.int64)
    if len(day_index) == 0:
        raise InvalidInputError(f"Rep {row['id']!r} works on none of the cycle's days "
                                f"(working_days={row['working_days']!r}).")
    if appointments is not None and len(appointments):
        # Appointments come in cycle days; the rep's horizon skips days off.
        local_day = {int(c): i for i, c in enumerate(day_index)}
        appointments = np.asarray(appointments, dtype=np.int64).copy()
        off = [int(d) for d in appointments[:, 1] if int(d) not in local_day]
        if off:
            raise InvalidInputError(f"Rep {row['id']!r} has appointments on cycle day(s) {off} "
                                    "that are not among the rep's working days.")
        appointments[:, 1] = [local_day[int(d)] for d in appointments[:, 1]]
    visit_min = np.maximum(np.round(acc.visit_min[pos]), 1).astype(np.int64)
    problem = CallCycleProblem(
        minutes=tm.minutes, km=tm.km, visits=acc.visits[pos], visit_min=visit_min,
        open_windows=_windows(acc, pos), value=visit_values(acc.subset(pos), rules),
        day_weekday=np.asarray(cal.weekdays, dtype=np.int64)[day_index],
        day_week=np.asarray(cal.weeks, dtype=np.int64)[day_index],
        work_start=int(row["work_start"]), work_end=int(row["work_end"]),
        lunch_min=round(row["lunch_min"]), lunch_start=int(row["lunch_start"]),
        lunch_end=int(row["lunch_end"]),
        max_work_min=int(row["max_work_min"]) if np.isfinite(row["max_work_min"]) else None,
        min_gap_days=min_gap_days, night_cost=night_cost,
        max_nights_per_week=int(row["max_nights_week"]),
        appointments=appointments, previous=previous, frozen_days=frozen_days)
    return problem, day_index


@dataclass(frozen=True, eq=False)
class RoutePlan:
    """Every rep's call-cycle plan, with tables an analyst can open.

    Attributes
    ----------
    plans : rep id -> ``CallCyclePlan`` (account numbers are positions in ``account_ids[rep]``).
    schedule : one row per visit: rep_id, day, date, sequence, account_id, visit, arrival, start,
        departure (``HH:MM``) and the same in minutes (``*_min``).
    days : one row per rep and working day: start/end, visits, km, drive/visit/break/idle/work
        hours, where the day starts and ends (home or the account near the stay).
    reps : one row per rep: visits required/served, dropped, km, hours, utilisation, nights and
        ``simulated_workload_h`` (visit + drive + break hours).
    dropped : one row per dropped visit: rep_id, account_id, visit, reason, reason_text, value.
    unassigned : accounts with no rep (account_id, reason).
    """

    plans: Mapping[str, CallCyclePlan]
    account_ids: Mapping[str, np.ndarray]
    schedule: pd.DataFrame
    days: pd.DataFrame
    reps: pd.DataFrame
    dropped: pd.DataFrame
    unassigned: pd.DataFrame
    runtime_s: float
    seed: int
    parameters: Mapping[str, Any]
    failed: Mapping[str, str] = field(default_factory=dict)
    scenario: Scenario | None = field(default=None, repr=False)

    def simulated_workload_h(self) -> dict[str, float]:
        """Rep id -> visit + drive + break hours over the cycle."""
        return dict(zip(self.reps["rep_id"], self.reps["simulated_workload_h"], strict=True))

    def summary(self) -> str:
        """Totals and the spread of the reps' simulated workload."""
        r = self.reps
        if len(r) == 0:
            failed = f"; FAILED reps: {sorted(self.failed)[:10]}" if self.failed else ""
            return "no routes" + failed
        w = r["simulated_workload_h"]
        lines = [
            f"{len(r)} reps, {int(r['visits_served'].sum()):,}/{int(r['visits_required'].sum()):,}"
            f" visits served ({len(self.dropped):,} dropped), "
            f"{r['km'].sum():,.0f} km, drive {r['drive_h'].sum():,.0f} h, "
            f"{int(r['nights'].sum())} nights ({self.runtime_s:.1f} s)",
            f"  utilisation mean {100 * r['utilisation'].mean():.0f} % "
            f"(min {100 * r['utilisation'].min():.0f} %, max {100 * r['utilisation'].max():.0f} %)",
            # Served visits only: the planning loop's simulated workload also counts the time
            # the dropped visits would need, so its spread is not this one.
            f"  routed hours per rep (visits served): mean {w.mean():.1f} h, min {w.min():.1f} "
            f"h, max {w.max():.1f} h (spread "
            f"{100 * (w.max() - w.min()) / max(w.mean(), 1e-9):.0f} % of the mean)",
        ]
        if len(self.dropped):
            for reason, count in self.dropped["reason"].value_counts().items():
                lines.append(f"  dropped {count}: {DROP_REASONS.get(str(reason), reason)}")
        if len(self.unassigned):
            lines.append(f"  {len(self.unassigned)} accounts without a rep (see .unassigned)")
        if self.failed:
            lines.append(f"  FAILED reps: {sorted(self.failed)[:10]}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: totals, per-rep rows, schedule, dropped, unassigned."""
        return {
            "runtime_s": self.runtime_s, "seed": self.seed,
            "parameters": dict(self.parameters),
            "reps": self.reps.to_dict(orient="records"),
            "schedule": self.schedule.to_dict(orient="records"),
            "dropped": self.dropped.to_dict(orient="records"),
            "unassigned": self.unassigned.to_dict(orient="records"),
            "failed": dict(self.failed),
            "simulated_workload_hours": self.simulated_workload_h(),
        }

    def to_geodataframe(self) -> Any:
        """Route lines per rep and day (EPSG:4326): home -> visits -> home or the stay."""
        from territory.reports import route_lines

        if self.scenario is None:
            raise InvalidInputError("This RoutePlan has no scenario attached to draw from.")
        acc = self.scenario.accounts
        lonlat = dict(zip(acc.ids, map(tuple, acc.lonlat), strict=True))
        homes = {r: (lo, la) for r, lo, la in zip(
            self.scenario.reps.ids, self.scenario.reps.frame["home_lon"],
            self.scenario.reps.frame["home_lat"], strict=True)}
        stays = self.days.loc[self.days["stay_account"] != "",
                              ["rep_id", "day", "stay_account"]].rename(
            columns={"stay_account": "account_id"}) if len(self.days) else self.days
        schedule = self.schedule[["rep_id", "day", "sequence", "account_id"]]
        return route_lines(schedule, lonlat, homes, stays=stays if len(stays) else None)


def _clock_col(values: Sequence[float]) -> list[str]:
    return [format_clock(v) for v in values]


def _tables(rep_id: str, plan: CallCyclePlan, ids: np.ndarray, day_index: np.ndarray,
            dates: tuple[dt.date, ...] | None, available_min: float
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]],
                       dict[str, Any]]:
    visits, days, dropped = [], [], []
    for d in plan.days:
        cyc = int(day_index[d.day])
        date = dates[cyc].isoformat() if dates is not None else ""
        for seq, v in enumerate(d.visits, start=1):
            visits.append({"rep_id": rep_id, "day": cyc, "date": date, "sequence": seq,
                           "account_id": ids[v.account], "visit": v.visit,
                           "arrival_min": v.arrival, "start_min": v.start,
                           "departure_min": v.departure, "appointment": v.appointment})
        days.append({
            "rep_id": rep_id, "day": cyc, "date": date, "weekday": d.weekday,
            "start": format_clock(d.start_min), "end": format_clock(d.end_min),
            "lunch": "" if d.lunch_start is None else
            f"{format_clock(d.lunch_start)}-{format_clock(d.lunch_end or 0)}",
            "visits": len(d.visits), "km": d.travel_km, "drive_h": d.drive_min / 60,
            "visit_h": d.visit_min / 60, "break_h": d.break_min / 60,
            "idle_h": d.idle_min / 60, "work_h": d.work_min / 60,
            "start_stay_account": "" if d.start_stay is None else ids[d.start_stay],
            "stay_account": "" if d.stay is None else ids[d.stay], "frozen": d.frozen})
    for x in plan.dropped:
        dropped.append({"rep_id": rep_id, "account_id": ids[x.account], "visit": x.visit,
                        "reason": x.reason, "reason_text": x.reason_text, "value": x.value})
    break_min = sum(d.break_min for d in plan.days)
    rep = {
        "rep_id": rep_id, "accounts": len(ids), "visits_required": plan.required,
        "visits_served": plan.served, "visits_dropped": len(plan.dropped),
        "value_dropped": plan.value_dropped, "km": plan.travel_km,
        "drive_h": plan.drive_min / 60, "visit_h": plan.visit_min / 60,
        "break_h": break_min / 60, "work_h": plan.work_min / 60,
        "simulated_workload_h": (plan.visit_min + plan.drive_min + break_min) / 60,
        "available_h": available_min / 60, "utilisation": plan.utilisation,
        "nights": plan.nights, "runtime_s": plan.runtime_s, "stop_reason": plan.stop_reason,
    }
    return visits, days, dropped, rep


def plan_routes(
    source: Any,
    *,
    assignment: Mapping[str, str] | pd.Series | None = None,
    reps: Sequence[str] | None = None,
    time_limit_s: float = 10.0,
    seed: int = 0,
    max_iterations: int | None = None,
    workers: int = 1,
    executor: Any = None,
    provider: Any = None,
    min_gap_days: int | None = None,
    night_cost: float = 120.0,
    appointments: pd.DataFrame | None = None,
    previous: RoutePlan | None = None,
    frozen_days: int = 0,
    progress: Callable[[int, int], None] | None = None,
    warm_start: RoutePlan | None = None,
) -> RoutePlan:
    """Plan every rep's call cycle.

    Parameters
    ----------
    source:
        A ``TerritoryPlan`` (its scenario and assignment) or a ``Scenario`` (with
        ``assignment``, or the accounts' ``current_rep``).
    assignment:
        account id -> rep id, overriding the plan's.
    reps:
        Only these reps (default all reps with accounts).
    time_limit_s:
        Per rep.
    workers:
        Processes (default 1: in this process). ``executor`` (anything with ``map_tasks``, see
        ``territory.executor``) overrides it.
    provider:
        A ``MatrixProvider`` for road travel times (default the scenario's travel model).
    appointments:
        Fixed appointments: columns ``account_id, day`` (cycle day index) ``, start``
        (``HH:MM`` or minutes).
    previous, frozen_days:
        Re-plan keeping the first ``frozen_days`` cycle days of ``previous`` as they are.
    warm_start:
        Start each rep's search from its routes in this plan (see ``route_variants``); not
        with frozen days.

    Raises
    ------
    InvalidInputError
        Unknown rep ids in the assignment, a rep who works no day of the cycle, bad
        appointments.
    """
    from territory.alignment import TerritoryPlan
    from territory.executor import LocalExecutor

    t0 = time.perf_counter()
    if isinstance(source, TerritoryPlan):
        if source.scenario is None:
            raise InvalidInputError("This TerritoryPlan carries no scenario to route.")
        scenario = source.scenario
        rep_of = dict(zip(source.account_ids, source.rep_of_account, strict=True))
    elif isinstance(source, Scenario):
        scenario = source
        rep_of = dict(zip(scenario.accounts.ids,
                          scenario.accounts.frame["current_rep"].astype(str), strict=True))
    else:
        raise InvalidInputError(f"plan_routes takes a TerritoryPlan or a Scenario, got "
                                f"{type(source).__name__}.")
    if assignment is not None:
        rep_of.update({str(k): str(v) for k, v in dict(assignment).items()})
    if time_limit_s <= 0:
        raise InvalidInputError(f"time_limit_s={time_limit_s}; expected > 0.")
    acc = scenario.accounts
    rep_ids = [str(r) for r in scenario.reps.ids]
    rep_pos = {r: i for i, r in enumerate(rep_ids)}
    labels = np.array([rep_of.get(a, "") for a in acc.ids], dtype=object)
    unknown = sorted({r for r in labels if r and r not in rep_pos})
    if unknown:
        raise InvalidInputError(f"The assignment names {len(unknown)} rep(s) that are not in the "
                                f"scenario: {unknown[:10]}.")
    # Accounts grouped by rep in one pass: a scan of all labels per rep would cost n x reps.
    codes, first = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(first) + 1))
    by_rep = {str(r): order[bounds[c]:bounds[c + 1]] for c, r in enumerate(first)}
    wanted = list(reps) if reps is not None else [r for r in rep_ids if r in by_rep]
    bad = [r for r in wanted if r not in rep_pos]
    if bad:
        raise InvalidInputError(f"Unknown rep id(s) {bad[:10]}.")
    unassigned = pd.DataFrame({"account_id": acc.ids[labels == ""],
                               "reason": "no rep assigned"})
    appt_by_rep = _appointments(appointments, acc, labels, rep_ids)
    tasks = []
    positions: dict[str, np.ndarray] = {}
    day_indices: dict[str, np.ndarray] = {}
    for k, r in enumerate(wanted):
        pos = by_rep.get(r, np.zeros(0, dtype=np.int64))
        positions[r] = pos
        prev_plan = previous.plans.get(r) if previous is not None else None
        appt = appt_by_rep.get(r)
        if appt is not None:
            local = {p: i for i, p in enumerate(pos)}
            appt = np.array([[local[a], d, s] for a, d, s in appt], dtype=np.int64)
        task = _rep_task(scenario, r, rep_pos[r], pos, time_limit_s, seed + k, max_iterations,
                         provider=provider, min_gap_days=min_gap_days, night_cost=night_cost,
                         appointments=appt, previous=prev_plan,
                         frozen_days=frozen_days if prev_plan is not None else 0,
                         warm_start=None if prev_plan is not None and frozen_days
                         else warm_start)
        day_indices[r] = task.day_index
        tasks.append(task)
    runner = executor if executor is not None else LocalExecutor(workers=workers)
    outcome = runner.map_tasks(solve_rep_task, tasks, keys=[t.rep_id for t in tasks],
                               progress=progress)
    return _assemble(scenario, wanted, dict(outcome.results), dict(outcome.errors), positions,
                     day_indices, unassigned, t0, seed, parameters={
                         "time_limit_s": time_limit_s, "max_iterations": max_iterations,
                         "workers": workers, "min_gap_days": min_gap_days,
                         "night_cost": night_cost, "frozen_days": frozen_days})


def route_variants(
    scenario: Scenario,
    jobs: Sequence[tuple[str, np.ndarray]],
    *,
    time_limit_s: float,
    seed: int = 0,
    max_iterations: int | None = None,
    workers: int = 1,
    executor: Any = None,
    night_cost: float = 120.0,
    warm_start: RoutePlan | None = None,
) -> list[RoutePlan]:
    """Route each job ``(rep id, account positions)`` as that rep's whole territory, all jobs
    in one batch; a rep may appear in several jobs (alternative territories to compare).

    With ``warm_start``, each job starts from its rep's routes there (visits to the accounts
    the job does not hold left out, the job's new accounts inserted), refined at a low
    temperature: after a move of a few accounts this judges the move on routes that differ
    only where it does, not on two independent short searches.

    Returns one single-rep ``RoutePlan`` per job, in order (a job whose planning failed has
    the rep in ``failed`` and its accounts in ``unassigned``).

    Raises
    ------
    InvalidInputError
        Unknown rep ids or positions outside the scenario's accounts.
    """
    from territory.executor import LocalExecutor

    t0 = time.perf_counter()
    if time_limit_s <= 0:
        raise InvalidInputError(f"time_limit_s={time_limit_s}; expected > 0.")
    acc = scenario.accounts
    rep_pos = {str(r): i for i, r in enumerate(scenario.reps.ids)}
    tasks, keys = [], []
    for k, (r, pos) in enumerate(jobs):
        pos = np.asarray(pos, dtype=np.int64)
        if str(r) not in rep_pos:
            raise InvalidInputError(f"Unknown rep id {r!r} in job {k}.")
        if len(pos) and (pos.min() < 0 or pos.max() >= len(acc)):
            raise InvalidInputError(f"Job {k} ({r!r}) names account positions outside "
                                    f"0..{len(acc) - 1}.")
        tasks.append(_rep_task(scenario, str(r), rep_pos[str(r)], pos, time_limit_s, seed + k,
                               max_iterations, warm_start, night_cost=night_cost))
        keys.append(k)
    runner = executor if executor is not None else LocalExecutor(workers=workers)
    outcome = runner.map_tasks(solve_rep_task, tasks, keys=keys)
    empty = pd.DataFrame({"account_id": [], "reason": []})
    out = []
    for k, task in enumerate(tasks):
        r = task.rep_id
        plans = {r: outcome.results[k]} if k in outcome.results else {}
        errors = {r: outcome.errors[k]} if k in outcome.errors else {}
        out.append(_assemble(scenario, [r], plans, errors,
                             {r: np.asarray(jobs[k][1], dtype=np.int64)},
                             {r: task.day_index}, empty, t0, seed,
                             parameters={"time_limit_s": time_limit_s,
                                         "max_iterations": max_iterations,
                                         "night_cost": night_cost}))
    return out


def _rep_task(scenario: Scenario, rep_id: str, rep_position: int, positions: np.ndarray,
              time_limit_s: float, seed: int, max_iterations: int | None,
              warm_start: RoutePlan | None = None, **problem_options: Any) -> RepTask:
    """The task that plans rep ``rep_id`` over the accounts at ``positions`` (from its routes
    in ``warm_start`` when given)."""
    try:
        problem, day_index = build_rep_problem(scenario, rep_position, positions,
                                               **problem_options)
    except SolverInputError as exc:
        raise InvalidInputError(f"Rep {rep_id!r}: {exc}") from exc
    ids = scenario.accounts.ids[positions]
    return RepTask(rep_id=rep_id, account_ids=ids, problem=problem, day_index=day_index,
                   time_limit_s=time_limit_s, seed=seed, max_iterations=max_iterations,
                   initial=_initial_routes(warm_start, rep_id, ids))


def _assemble(scenario: Scenario, wanted: Sequence[str], plans: dict[str, CallCyclePlan],
              failed: dict[str, str], positions: Mapping[str, np.ndarray],
              day_indices: Mapping[str, np.ndarray], unassigned: pd.DataFrame, t0: float,
              seed: int, parameters: dict[str, Any]) -> RoutePlan:
    """The ``RoutePlan`` of the reps' call-cycle plans (tables in the reps' order)."""
    acc = scenario.accounts
    rep_pos = {str(r): i for i, r in enumerate(scenario.reps.ids)}
    dates = scenario.calendar.dates
    avail = scenario.reps.available_minutes(scenario.calendar)
    v_rows, d_rows, x_rows, r_rows = [], [], [], []
    for r in wanted:
        if r not in plans:
            continue
        v, d, x, rr = _tables(r, plans[r], acc.ids[positions[r]], day_indices[r], dates,
                              float(avail[rep_pos[r]]))
        v_rows += v
        d_rows += d
        x_rows += x
        r_rows.append(rr)
    schedule = pd.DataFrame(v_rows, columns=[
        "rep_id", "day", "date", "sequence", "account_id", "visit", "arrival_min",
        "start_min", "departure_min", "appointment"])
    for c in ("arrival", "start", "departure"):
        schedule.insert(schedule.columns.get_loc(f"{c}_min"), c,
                        _clock_col(schedule[f"{c}_min"]))
    for r in failed:
        # A rep whose planning failed keeps its accounts listed, never lost.
        extra = pd.DataFrame({"account_id": acc.ids[positions[r]],
                              "reason": f"route planning failed for rep {r}"})
        unassigned = pd.concat([unassigned, extra], ignore_index=True)
    return RoutePlan(
        plans=plans, account_ids={r: acc.ids[positions[r]] for r in plans},
        schedule=schedule, days=pd.DataFrame(d_rows), reps=pd.DataFrame(r_rows),
        dropped=pd.DataFrame(x_rows, columns=["rep_id", "account_id", "visit", "reason",
                                              "reason_text", "value"]),
        unassigned=unassigned, runtime_s=time.perf_counter() - t0, seed=seed,
        parameters=parameters, failed=failed, scenario=scenario)


def _appointments(appointments: pd.DataFrame | None, acc: Accounts, labels: np.ndarray,
                  rep_ids: list[str]) -> dict[str, list[tuple[int, int, int]]]:
    if appointments is None or len(appointments) == 0:
        return {}
    from territory.errors import Problem
    from territory.hours import parse_clock

    need = {"account_id", "day", "start"}
    if not need <= set(appointments.columns):
        raise InvalidInputError(f"Appointments need columns {sorted(need)}; got "
                                f"{list(appointments.columns)}.")
    index = {a: i for i, a in enumerate(acc.ids)}
    out: dict[str, list[tuple[int, int, int]]] = {}
    problems = []
    for row, (a, d, s) in zip(appointments.index, appointments[["account_id", "day", "start"]]
                              .itertuples(index=False), strict=True):
        a = str(a)
        if a not in index:
            problems.append(Problem(row, a, "account_id", a, "unknown account"))
            continue
        r = labels[index[a]]
        if not r:
            problems.append(Problem(row, a, "account_id", a, "account has no rep"))
            continue
        try:
            minute = parse_clock(s)
        except ValueError as exc:
            problems.append(Problem(row, a, "start", s, str(exc)))
            continue
        out.setdefault(r, []).append((index[a], int(d), minute))
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the appointments:", problems,
                                kind="Appointment")
    return out

