"""Independent verification of a ``CallCyclePlan`` against its ``CallCycleProblem``.

The checker recomputes everything from the problem's own arrays (not from the planner's
internal instance), so tests, benchmarks and hand-made plans are held to the same rules:

* every required visit ``(a, j)``, ``j < visits[a]``, is in the plan exactly once or in
  ``dropped`` exactly once with a known reason; extra visits (``j >= visits[a]``) only come
  from appointments or frozen days;
* spacing: window mode, visit ``j`` lies in its window; gap mode, an account's visits are at
  least ``min_gap_days`` days apart;
* times (non-frozen days): leave at or after the working start, back by the working end;
  each leg takes at least its matrix minutes (plus the lunch when it falls in that gap);
  arrival <= start; departure = start + visit minutes; each visit inside one opening window of
  its weekday (appointments: exactly at their start instead); work <= ``max_work_min``;
* lunch: starts within ``[lunch_start, lunch_end - lunch_min]``, lasts ``lunch_min``, lies in
  one gap (before leaving, between two stops, after coming back);
* stays: a day starts where the previous one ended; a stay only between consecutive weekdays
  of one week; the cycle ends at home; nights per week <= ``max_nights_per_week``;
* appointments kept at their day and minute (or dropped with reason ``appointment``/
  ``frozen``); frozen days identical to the previous plan (accounts, order, times, stay);
* reported day totals (drive, km, visit minutes) and plan totals match the matrices.
"""

from __future__ import annotations

from itertools import pairwise

from solvers.routing.cycle_plan import DROP_REASONS, CallCyclePlan, DayPlan
from solvers.routing.cycle_problem import CallCycleProblem

__all__ = ["check_cycle_plan"]

_EPS = 1e-6


def _in_open_window(problem: CallCycleProblem, a: int, weekday: int, start: int,
                    end: int) -> bool:
    for lo, hi in problem.open_windows[a, weekday]:  # type: ignore[index]
        if lo >= 0 and lo <= start and end <= hi:
            return True
    return False


def _check_day(problem: CallCycleProblem, dp: DayPlan, errs: list[str],
               appointments: dict[tuple[int, int], int]) -> None:
    d = dp.day
    tag = f"day {d}"
    ws = int(problem.work_start[d])  # type: ignore[index]
    we = int(problem.work_end[d])  # type: ignore[index]
    minutes = problem.minutes
    km = problem.km
    if dp.start_min < ws - _EPS:
        errs.append(f"{tag}: leaves at {dp.start_min} before the working start {ws}")
    if dp.end_min > we + _EPS:
        errs.append(f"{tag}: ends at {dp.end_min} after the working end {we}")
    start_loc = 0 if dp.start_stay is None else dp.start_stay + 1
    end_loc = 0 if dp.stay is None else dp.stay + 1
    locs = [start_loc] + [v.account + 1 for v in dp.visits] + [end_loc]
    # Event times: departure from the start, each visit, arrival at the end.
    deps = [dp.start_min] + [v.departure for v in dp.visits]
    arrs = [v.arrival for v in dp.visits] + [dp.end_min]
    starts = [v.start for v in dp.visits] + [dp.end_min]
    lm = problem.lunch_min
    lunch_gap = None
    if lm > 0:
        if dp.lunch_start is None or dp.lunch_end is None:
            errs.append(f"{tag}: no lunch break")
        else:
            ls, le = dp.lunch_start, dp.lunch_end
            if le - ls != lm:
                errs.append(f"{tag}: lunch lasts {le - ls} min, expected {lm}")
            if ls < problem.lunch_start - _EPS or ls > problem.lunch_end - lm + _EPS:
                errs.append(f"{tag}: lunch starts at {ls}, outside [{problem.lunch_start}, "
                            f"{problem.lunch_end - lm}]")
            if le <= dp.start_min + _EPS:
                lunch_gap = -1
            elif ls >= dp.end_min - _EPS:
                lunch_gap = len(locs) - 1
            else:
                for i in range(len(locs) - 1):
                    if deps[i] - _EPS <= ls and le <= starts[i] + _EPS:
                        lunch_gap = i
                        break
                if lunch_gap is None:
                    errs.append(f"{tag}: lunch {ls}-{le} overlaps a visit or lies in no gap")
    for i in range(len(locs) - 1):
        a, b = locs[i], locs[i + 1]
        need = minutes[a, b]
        if lunch_gap == i and dp.lunch_start is not None and dp.lunch_start < dp.end_min:
            if starts[i] - deps[i] < need + lm - _EPS:
                errs.append(f"{tag}: leg {i} ({a}->{b}) has {starts[i] - deps[i]} min for "
                            f"{need:.1f} min driving and the {lm}-min lunch")
        if arrs[i] < deps[i] + need - _EPS:
            errs.append(f"{tag}: leg {i} ({a}->{b}) arrives at {arrs[i]}, needs "
                        f"{deps[i]} + {need:.2f}")
    wd = int(problem.day_weekday[d])  # type: ignore[index]
    for v in dp.visits:
        a = v.account
        if v.start < v.arrival - _EPS:
            errs.append(f"{tag}: account {a} starts at {v.start} before arriving {v.arrival}")
        if v.departure != v.start + int(problem.visit_min[a]):
            errs.append(f"{tag}: account {a} departure {v.departure} != start + "
                        f"{int(problem.visit_min[a])}")
        if v.start < ws - _EPS or v.departure > we + _EPS:
            errs.append(f"{tag}: account {a} visit {v.start}-{v.departure} outside working "
                        f"hours")
        app = appointments.get((a, d))
        if app is not None and v.start == app:
            continue
        if v.appointment:
            errs.append(f"{tag}: account {a} marked as appointment at {v.start}, none there")
        if not _in_open_window(problem, a, wd, v.start, v.departure):
            errs.append(f"{tag}: account {a} visit {v.start}-{v.departure} outside its "
                        f"opening hours on weekday {wd}")
    span = dp.end_min - dp.start_min
    brk = 0
    if lm > 0 and dp.lunch_start is not None and dp.lunch_end is not None:
        brk = max(0, min(dp.lunch_end, dp.end_min) - max(dp.lunch_start, dp.start_min))
    work = span - brk
    if problem.max_work_min is not None and work > problem.max_work_min + _EPS:
        errs.append(f"{tag}: works {work} min > max_work_min {problem.max_work_min}")
    drive = sum(minutes[a, b] for a, b in pairwise(locs))
    dist = sum(km[a, b] for a, b in pairwise(locs))
    if abs(drive - dp.drive_min) > 1e-6 * max(1.0, drive):
        errs.append(f"{tag}: drive_min {dp.drive_min:.3f} != {drive:.3f} from the matrix")
    if abs(dist - dp.travel_km) > 1e-6 * max(1.0, dist):
        errs.append(f"{tag}: travel_km {dp.travel_km:.3f} != {dist:.3f} from the matrix")
    vsum = sum(int(problem.visit_min[v.account]) for v in dp.visits)
    if abs(vsum - dp.visit_min) > _EPS:
        errs.append(f"{tag}: visit_min {dp.visit_min} != {vsum}")


def check_cycle_plan(problem: CallCycleProblem, plan: CallCyclePlan) -> list[str]:
    """All rule violations of ``plan`` for ``problem`` (empty list: the plan is valid).

    Parameters
    ----------
    problem : CallCycleProblem
    plan : CallCyclePlan

    Returns
    -------
    list of str
        One message per violation, naming the day, account and the rule.
    """
    errs: list[str] = []
    n = problem.n_accounts
    d_count = problem.n_days
    frozen = problem.frozen_days
    if len(plan.days) != d_count:
        return [f"plan has {len(plan.days)} days, problem has {d_count}"]
    appointments: dict[tuple[int, int], int] = {}
    for a, day, start in problem.appointments:  # type: ignore[union-attr]
        appointments[(int(a), int(day))] = int(start)

    # Where each visit is.
    seen: dict[tuple[int, int], int] = {}
    acc_days: dict[int, list[int]] = {}
    for i, dp in enumerate(plan.days):
        if dp.day != i:
            errs.append(f"days[{i}] has day index {dp.day}")
        if dp.weekday != problem.day_weekday[i] or dp.week != problem.day_week[i]:  # type: ignore[index]
            errs.append(f"day {i}: weekday/week {dp.weekday}/{dp.week} differ from the calendar")
        for v in dp.visits:
            if not 0 <= v.account < n:
                errs.append(f"day {i}: account {v.account} out of range")
                continue
            key = (v.account, v.visit)
            if key in seen:
                errs.append(f"account {v.account} visit {v.visit} on days {seen[key]} and {i}")
            seen[key] = i
            acc_days.setdefault(v.account, []).append(i)
            if v.visit >= problem.visits[v.account]:
                if appointments.get((v.account, i)) != v.start and i >= frozen:
                    errs.append(f"day {i}: account {v.account} extra visit {v.visit} is neither "
                                f"an appointment nor frozen")
            elif v.visit < 0:
                errs.append(f"day {i}: account {v.account} has visit number {v.visit}")
    dropped: dict[tuple[int, int], str] = {}
    for x in plan.dropped:
        key = (x.account, x.visit)
        if key in dropped:
            errs.append(f"account {x.account} visit {x.visit} dropped twice")
        dropped[key] = x.reason
        if not x.reason or x.reason not in DROP_REASONS:
            errs.append(f"account {x.account} visit {x.visit} dropped with unknown reason "
                        f"{x.reason!r}")
        if key in seen and x.visit < problem.visits[x.account]:
            errs.append(f"account {x.account} visit {x.visit} both planned (day {seen[key]}) "
                        f"and dropped")
    for a in range(n):
        for j in range(int(problem.visits[a])):
            if (a, j) not in seen and (a, j) not in dropped:
                errs.append(f"account {a} visit {j} neither planned nor dropped")

    # Spacing.
    if problem.gap_mode:
        g = int(problem.min_gap_days)  # type: ignore[arg-type]
        for a, ds in acc_days.items():
            ds = sorted(ds)
            for x, y in pairwise(ds):
                if y - x < g and y >= frozen:
                    errs.append(f"account {a}: visits on days {x} and {y} closer than "
                                f"min_gap_days={g}")
    else:
        for (a, j), day in seen.items():
            if j >= problem.visits[a] or day < frozen:
                continue
            lo, hi = problem.visit_window(a, j)
            if not lo <= day <= hi and appointments.get((a, day)) is None:
                errs.append(f"account {a} visit {j} on day {day}, outside its window "
                            f"{lo}..{hi}")

    # Days, stays and nights.
    nights: dict[int, int] = {}
    linkable = problem.linkable()
    prev_stay: int | None = None
    for i, dp in enumerate(plan.days):
        if dp.start_stay != prev_stay:
            errs.append(f"day {i}: starts at {dp.start_stay!r}, previous night at {prev_stay!r}")
        if dp.stay is not None:
            nights[int(problem.day_week[i])] = nights.get(int(problem.day_week[i]), 0) + 1  # type: ignore[index]
            if not linkable[i]:
                errs.append(f"day {i}: overnight stay but day {i + 1} is not the next weekday "
                            f"of the same week (or the cycle ends)")
            if not 0 <= dp.stay < n:
                errs.append(f"day {i}: stay at account {dp.stay} out of range")
        prev_stay = dp.stay
        if i < frozen:
            continue
        _check_day(problem, dp, errs, appointments)
    for w, c in sorted(nights.items()):
        if c > problem.max_nights_per_week:
            errs.append(f"week {w}: {c} nights > max_nights_per_week "
                        f"{problem.max_nights_per_week}")

    # Appointments.
    for (a, day), start in appointments.items():
        dp = plan.days[day]
        if any(v.account == a and v.start == start for v in dp.visits):
            continue
        reasons = [r for (aa, _), r in dropped.items() if aa == a and r in
                   ("appointment", "frozen")]
        if not reasons:
            errs.append(f"appointment of account {a} on day {day} at {start} neither kept nor "
                        f"dropped with reason 'appointment'")

    # Frozen days.
    if frozen > 0:
        prev = problem.previous
        assert prev is not None
        for i in range(frozen):
            old, new = prev.days[i], plan.days[i]
            if [(v.account, v.start) for v in old.visits] != \
                    [(v.account, v.start) for v in new.visits] or old.stay != new.stay or \
                    old.start_min != new.start_min or old.end_min != new.end_min:
                errs.append(f"day {i}: frozen but differs from the previous plan")

    # Totals.
    req = int(sum(int(x) for x in problem.visits))
    if plan.required != req:
        errs.append(f"required {plan.required} != {req}")
    n_drop = sum(1 for (a, j) in dropped if j < problem.visits[a])
    if plan.served != req - n_drop:
        errs.append(f"served {plan.served} != required - dropped = {req - n_drop}")
    val = sum(float(problem.value[a]) for (a, j) in dropped if j < problem.visits[a])  # type: ignore[index]
    if abs(val - plan.value_dropped) > 1e-6 * max(1.0, val):
        errs.append(f"value_dropped {plan.value_dropped} != {val}")
    return errs
