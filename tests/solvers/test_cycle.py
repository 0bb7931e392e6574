"""Tests of the call-cycle planner (``solvers.routing.cycle``) and its checker and baseline."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from solvers.errors import SolverInputError
from solvers.routing.cycle import CycleParams, plan_call_cycle
from solvers.routing.cycle_check import check_cycle_plan
from solvers.routing.cycle_naive import plan_naive
from solvers.routing.cycle_plan import DROP_REASONS, CallCyclePlan
from solvers.routing.cycle_problem import CallCycleProblem, windows_from_hours

MON_FRI = [[(540, 1020)]] * 5 + [[], []]


# ---------------------------------------------------------------------------- helpers
def line_problem(xs: list[float], **kw: object) -> CallCycleProblem:
    """Accounts on a line at ``xs`` minutes from home (km = minutes)."""
    pts = np.array([0.0, *xs])
    minutes = np.abs(pts[:, None] - pts[None, :])
    n = len(xs)
    base: dict[str, object] = {"minutes": minutes, "km": minutes.copy(),
                               "visits": np.ones(n, dtype=int),
                               "visit_min": np.full(n, 30)}
    base.update(kw)
    return CallCycleProblem(**base)  # type: ignore[arg-type]


def random_problem(n: int, seed: int, *, radius_km: float = 25.0, remote: int = 0,
                   remote_km: float = 400.0, **kw: object) -> CallCycleProblem:
    """A synthetic rep: accounts around home, A/B/C frequencies, varied opening hours."""
    rng = np.random.default_rng(seed)
    r = radius_km * np.sqrt(rng.random(n))
    th = rng.random(n) * 2 * np.pi
    xy = np.c_[r * np.cos(th), r * np.sin(th)]
    if remote:
        xy[-remote:] = np.array([remote_km, 0.0]) + rng.normal(0, 6, size=(remote, 2))
    pts = np.vstack([[0.0, 0.0], xy])
    km = 1.3 * np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    kmh = np.where(np.sqrt((pts ** 2).sum(1)) < 12, 25.0, 60.0)
    v = 2 / (1 / kmh[:, None] + 1 / kmh[None])
    near = np.minimum(km, 30)
    minutes = 60 * (near / v + (km - near) / 80)
    pot = rng.lognormal(0, 1, n)
    rank = np.argsort(np.argsort(-pot)) / n
    seg = np.where(rank < 0.2, 0, np.where(rank < 0.5, 1, 2))
    hours = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.15:
            week = [[(540, 720), (840, 1020)]] * 5 + [[], []]
        elif kind < 0.25:
            week = [list(x) for x in MON_FRI]
            week[int(rng.integers(0, 5))] = []
        elif kind < 0.35:
            week = [[(540, 1020)]] * 5 + [[(540, 720)], []]
        else:
            week = [list(x) for x in MON_FRI]
        hours.append(week)
    base: dict[str, object] = {
        "minutes": minutes, "km": km, "visits": np.array([4, 2, 1])[seg],
        "visit_min": np.array([40, 30, 20])[seg], "open_windows": windows_from_hours(hours),
        "value": pot / np.array([4, 2, 1])[seg]}
    base.update(kw)
    return CallCycleProblem(**base)  # type: ignore[arg-type]


def assert_valid(problem: CallCycleProblem, plan: CallCyclePlan) -> None:
    errs = check_cycle_plan(problem, plan)
    assert errs == [], "\n".join(errs[:20])


FAST = {"time_limit_s": 5.0, "max_iterations": 3000}


# ---------------------------------------------------------------------------- known answers
def test_single_day_five_stops_exact_order_and_times() -> None:
    """Five accounts on a line 10..50 minutes out; windows force the order 0-1-2-3-4.

    By hand: the day ends as early as account 4's window allows (14:00-14:30, home 15:20);
    leaving as late as that allows is 08:50; lunch fills the wait before account 3 opens.
    """
    hours = [[(480, 570)], [(540, 660)], [(600, 720)], [(780, 900)], [(840, 960)]]
    ow = windows_from_hours([[h] * 7 for h in hours])
    p = line_problem([10, 20, 30, 40, 50], open_windows=ow, day_weekday=[0], day_week=[0])
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    day = plan.days[0]
    assert day.accounts == (0, 1, 2, 3, 4)
    assert [(v.arrival, v.start, v.departure) for v in day.visits] == [
        (540, 540, 570), (580, 580, 610), (620, 620, 650), (660, 780, 810), (820, 840, 870)]
    assert (day.start_min, day.end_min) == (530, 920)
    assert (day.lunch_start, day.lunch_end) == (690, 735)
    assert day.drive_min == pytest.approx(100.0)
    assert day.idle_min == pytest.approx(920 - 530 - 100 - 150 - 45)
    assert plan.dropped == ()
    assert plan.served == plan.required == 5


def test_lunch_closure_and_break_between_visits() -> None:
    """Two accounts closed 12:00-14:00: lunch goes into that gap, visits around it."""
    ow = windows_from_hours([[[(540, 720), (840, 1020)]] * 7] * 2)
    p = line_problem([30, 31], open_windows=ow, visit_min=np.array([150, 150]),
                     day_weekday=[0], day_week=[0])
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    day = plan.days[0]
    assert plan.served == 2
    first, second = day.visits
    assert first.departure <= 720 and second.start >= 840
    assert day.lunch_start is not None and first.departure <= day.lunch_start
    assert day.lunch_end is not None and day.lunch_end <= second.start


# ---------------------------------------------------------------------------- invariants
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariants_random_reps(seed: int) -> None:
    p = random_problem(40, seed)
    plan = plan_call_cycle(p, seed=seed, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert plan.served == plan.required  # 40 accounts fit a four-week cycle easily
    for day in plan.days:
        assert day.start_stay is None and day.stay is None
        assert day.work_min <= 540 - 45 + 1e-9


def test_every_visit_planned_or_dropped_with_reason_when_overloaded() -> None:
    p = random_problem(160, 3, radius_km=40.0)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert 0 < plan.served < plan.required
    assert all(x.reason in DROP_REASONS for x in plan.dropped)
    assert plan.value_served + plan.value_dropped == pytest.approx(plan.value_required)
    assert plan.utilisation > 0.8


def test_gap_mode_spacing() -> None:
    p = random_problem(30, 4, min_gap_days=4)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert plan.served == plan.required


def test_max_work_min_is_respected() -> None:
    p = random_problem(60, 5, max_work_min=300)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert max(d.work_min for d in plan.days) <= 300


def test_no_lunch_and_late_working_days() -> None:
    """Without a lunch break, and with afternoon-only working days."""
    p = random_problem(25, 19, lunch_min=0)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert all(d.lunch_start is None for d in plan.days)
    late = random_problem(25, 19, work_start=800, work_end=1080)
    plan = plan_call_cycle(late, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(late, plan)
    assert all(d.start_min >= 800 for d in plan.days)


def test_zero_value_visits_are_still_served_when_time_allows() -> None:
    p = random_problem(30, 20)
    value = np.asarray(p.value).copy()
    value[::3] = 0.0
    p0 = dataclasses.replace(p, value=value)
    plan = plan_call_cycle(p0, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p0, plan)
    assert plan.served == plan.required


def test_holiday_calendar_and_saturday() -> None:
    """A three-week cycle with a Wednesday holiday and Saturday work."""
    wd = [0, 1, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    wk = [0] * 5 + [1] * 6 + [2] * 6
    p = random_problem(30, 6, day_weekday=wd, day_week=wk)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert plan.served == plan.required


# ---------------------------------------------------------------------------- stays
def test_remote_cluster_gets_overnight_stays() -> None:
    """Eight accounts about 400 km out (5 h drive): only reachable with stays."""
    p = random_problem(30, 7, remote=8, remote_km=400.0)
    far = p.minutes[0, -8:]
    assert far.min() > 270  # a day trip cannot fit: out and back exceed the working day
    plan = plan_call_cycle(p, seed=0, time_limit_s=8.0, max_iterations=20000)
    assert_valid(p, plan)
    assert plan.nights > 0
    remote = set(range(22, 30))
    assert {a for _, a in plan.stays} <= remote
    served_remote = sum(1 for d in plan.days for v in d.visits if v.account in remote)
    assert served_remote == int(p.visits[-8:].sum())
    for d in plan.days:
        if d.start_stay is not None:
            assert plan.days[d.day - 1].stay == d.start_stay


def test_replan_after_a_stay_starts_there() -> None:
    """Freeze the cycle up to the first night away: the next day starts at that stay."""
    p = random_problem(30, 7, remote=8, remote_km=400.0)
    first = plan_call_cycle(p, seed=0, time_limit_s=8.0, max_iterations=20000)
    night = next(d.day for d in first.days if d.stay is not None)
    p2 = dataclasses.replace(p, previous=first, frozen_days=night + 1)
    second = plan_call_cycle(p2, seed=1, time_limit_s=8.0, max_iterations=5000)
    assert_valid(p2, second)
    assert second.days[night + 1].start_stay == first.days[night].stay


def test_nights_per_week_limit() -> None:
    p = random_problem(30, 7, remote=8, remote_km=400.0, max_nights_per_week=1)
    plan = plan_call_cycle(p, seed=0, time_limit_s=8.0, max_iterations=20000)
    assert_valid(p, plan)
    per_week: dict[int, int] = {}
    for d in plan.days:
        if d.stay is not None:
            per_week[d.week] = per_week.get(d.week, 0) + 1
    assert plan.nights > 0 and max(per_week.values()) <= 1


def test_night_cost_trade_off() -> None:
    """A cluster 3 h out: cheap nights beat driving back; dear nights are not worth it."""
    cheap = random_problem(20, 8, remote=6, remote_km=150.0, night_cost=10.0)
    assert 150 <= cheap.minutes[0, -6:].min() and cheap.minutes[0, -6:].max() < 200
    plan_cheap = plan_call_cycle(cheap, seed=0, time_limit_s=8.0, max_iterations=20000)
    assert_valid(cheap, plan_cheap)
    dear = dataclasses.replace(cheap, night_cost=100_000.0)
    plan_dear = plan_call_cycle(dear, seed=0, time_limit_s=8.0, max_iterations=20000)
    assert_valid(dear, plan_dear)
    assert plan_cheap.served == plan_cheap.required == plan_dear.served
    assert plan_cheap.nights > 0
    assert plan_dear.nights == 0
    assert plan_cheap.drive_min < plan_dear.drive_min


def test_no_stays_for_nearby_accounts() -> None:
    p = random_problem(40, 9, night_cost=0.0)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert plan.nights == 0


# ---------------------------------------------------------------------------- appointments, frozen
def test_fixed_appointments_kept_exactly() -> None:
    p0 = random_problem(40, 10)
    apps = np.array([[3, 2, 600], [5, 2, 840], [7, 11, 660]])
    p = dataclasses.replace(p0, appointments=apps)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    for a, day, start in apps:
        hits = [v for v in plan.days[day].visits if v.account == a and v.start == start]
        assert len(hits) == 1 and hits[0].appointment
    # Account 7 is A (weekly): the day-11 appointment is its week-3 visit, nothing extra.
    assert sum(v.account == 7 for d in plan.days for v in d.visits) == 4


def test_impossible_appointment_is_dropped_with_reason() -> None:
    """At 08:35 the rep, leaving home at 08:30, cannot be there yet."""
    p0 = random_problem(40, 10)
    assert p0.minutes[0, 8] > 5
    p = dataclasses.replace(p0, appointments=np.array([[7, 11, 515]]))
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert [(x.account, x.reason) for x in plan.dropped] == [(7, "appointment")]


def test_overlapping_appointments_rejected() -> None:
    p0 = random_problem(10, 11)
    with pytest.raises(SolverInputError, match="appointments"):
        dataclasses.replace(p0, appointments=np.array([[1, 0, 600], [2, 0, 610]]))
    with pytest.raises(SolverInputError, match="appointments"):
        dataclasses.replace(p0, appointments=np.array([[1, 0, 1040]]))


def test_replan_keeps_frozen_days() -> None:
    p = random_problem(50, 12)
    first = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, first)
    # The rep learns of an appointment later in the cycle and re-plans with week 1 done.
    p2 = dataclasses.replace(p, previous=first, frozen_days=5,
                             appointments=np.array([[0, 12, 600]]))
    second = plan_call_cycle(p2, seed=1, **FAST)  # type: ignore[arg-type]
    assert_valid(p2, second)
    for d in range(5):
        old, new = first.days[d], second.days[d]
        assert [(v.account, v.visit, v.start) for v in old.visits] == \
            [(v.account, v.visit, v.start) for v in new.visits]
        assert new.frozen
    assert any(v.account == 0 and v.start == 600 for v in second.days[12].visits)


def test_frozen_window_visit_is_dropped_as_frozen() -> None:
    """A weekly visit whose week is frozen but absent from the frozen plan: reason frozen."""
    p = random_problem(20, 13)
    first = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    # Remove every visit of one A account from the first week of the previous plan.
    a = int(np.flatnonzero(p.visits == 4)[0])
    days = list(first.days)
    days[:5] = [dataclasses.replace(d, visits=tuple(v for v in d.visits if v.account != a))
                for d in days[:5]]
    prev = dataclasses.replace(first, days=tuple(days))
    p2 = dataclasses.replace(p, previous=prev, frozen_days=5)
    plan = plan_call_cycle(p2, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p2, plan)
    assert [(x.account, x.visit, x.reason) for x in plan.dropped] == [(a, 0, "frozen")]


# ---------------------------------------------------------------------------- infeasible input
def test_account_open_on_no_working_day_is_dropped_with_reason() -> None:
    hours = [[(540, 1020)]] * 5 + [[], []]
    sunday_only = [[]] * 6 + [[(540, 1020)]]
    ow = windows_from_hours([hours, sunday_only, hours])
    p = line_problem([10, 20, 30], open_windows=ow, visits=np.array([1, 2, 1]))
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert sorted((x.account, x.visit, x.reason) for x in plan.dropped) == [
        (1, 0, "closed"), (1, 1, "closed")]
    assert "no working day" in plan.dropped[0].reason_text


def test_account_too_far_for_a_day_is_dropped_as_unreachable() -> None:
    p = line_problem([10, 600], max_nights_per_week=0)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert [(x.account, x.reason) for x in plan.dropped] == [(1, "unreachable")]


@pytest.mark.parametrize(("field", "value"), [
    ("visits", np.array([1, -1])),
    ("visit_min", np.array([0, 30])),
    ("value", np.array([1.0, np.nan])),
    ("minutes", np.full((3, 3), -1.0)),
    ("open_windows", np.zeros((2, 7, 1, 2))),
    ("lunch_end", 700),
    ("day_week", np.array([1, 0])),
    ("min_gap_days", 0),
])
def test_invalid_input_names_the_field(field: str, value: object) -> None:
    kwargs: dict[str, object] = {field: value}
    if field == "day_week":
        kwargs["day_weekday"] = np.array([0, 1])
    with pytest.raises(SolverInputError, match=field):
        line_problem([10, 20], **kwargs)


# ---------------------------------------------------------------------------- dropping
def test_overloaded_rep_drops_low_value_visits_first() -> None:
    """300 one-hour visits next to home, room for about 140: the valuable half stays."""
    n = 300
    rng = np.random.default_rng(0)
    xs = list(rng.uniform(1, 3, n))
    value = np.where(np.arange(n) % 2 == 0, 10.0, 1.0)
    p = line_problem(xs, visit_min=np.full(n, 60), value=value)
    plan = plan_call_cycle(p, seed=0, time_limit_s=10.0, max_iterations=20000)
    assert_valid(p, plan)
    served = {v.account for d in plan.days for v in d.visits}
    high = {a for a in range(n) if value[a] == 10.0}
    assert len(served) >= 130
    assert len(served & high) >= min(len(served), len(high)) - 2
    assert all(x.reason == "no_time" for x in plan.dropped)


# ---------------------------------------------------------------------------- run controls
def test_same_seed_and_iterations_give_the_same_plan() -> None:
    p = random_problem(60, 14)
    a = plan_call_cycle(p, seed=3, time_limit_s=30.0, max_iterations=4000)
    b = plan_call_cycle(p, seed=3, time_limit_s=30.0, max_iterations=4000)
    assert a.stop_reason == b.stop_reason == "max_iterations"
    assert a.routes() == b.routes()
    assert a.objective == b.objective


def test_time_limit_is_honoured() -> None:
    p = random_problem(150, 15, radius_km=40.0)
    plan = plan_call_cycle(p, seed=0, time_limit_s=2.0)
    assert plan.runtime_s <= 2.0 * 1.1 + 1.0
    assert plan.stop_reason in ("time_limit", "converged")
    assert_valid(p, plan)


def test_summary_and_to_dict() -> None:
    p = random_problem(15, 16)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    text = plan.summary()
    assert "visits served" in text and "day  0" in text
    d = plan.to_dict()
    assert d["required"] == plan.required and len(d["days"]) == p.n_days
    import json

    json.dumps(d)


def test_empty_and_zero_visit_problems() -> None:
    p = line_problem([10, 20], visits=np.array([0, 0]))
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert_valid(p, plan)
    assert plan.required == 0 and plan.stop_reason == "trivial"


# ---------------------------------------------------------------------------- baseline
def test_naive_plan_is_valid_and_not_better() -> None:
    p = random_problem(80, 17, radius_km=35.0)
    naive = plan_naive(p)
    assert_valid(p, naive)
    plan = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert plan.objective <= naive.objective + 1e-6


def test_naive_plan_known_answer() -> None:
    """First day of the window with room, nearest-neighbour order within the day."""
    p = line_problem([30, 10, 20], visits=np.array([1, 1, 1]), day_weekday=[0, 1],
                     day_week=[0, 0])
    plan = plan_naive(p)
    assert_valid(p, plan)
    assert plan.days[0].accounts == (1, 2, 0)
    assert plan.days[1].accounts == ()


@pytest.mark.slow
def test_ortools_polish_keeps_plans_valid() -> None:
    p = random_problem(60, 18)
    plan = plan_call_cycle(p, seed=0, time_limit_s=6.0,
                           params=CycleParams(ortools_share=0.5))
    assert_valid(p, plan)
    assert plan.served == plan.required


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_random_feature_mix_is_always_valid(seed: int) -> None:
    """Random mixes of the features; every plan, and a re-plan of it, passes the checker."""
    rng = np.random.default_rng(100 + seed)
    kw: dict[str, object] = {}
    if rng.random() < 0.3:
        kw["min_gap_days"] = int(rng.integers(2, 6))
    if rng.random() < 0.3:
        kw["max_work_min"] = int(rng.integers(240, 480))
    if rng.random() < 0.3:
        kw["lunch_min"] = 0
    if rng.random() < 0.3:
        kw["day_weekday"] = [0, 1, 2, 4, 0, 1, 2, 3, 4, 5, 0, 1, 3, 4]
    remote = int(rng.integers(0, 6)) if rng.random() < 0.5 else 0
    n = int(rng.integers(15, 90))
    p = random_problem(n, seed, remote=remote, remote_km=float(rng.uniform(150, 450)),
                       max_nights_per_week=int(rng.integers(0, 3)), **kw)
    apps = []
    for a in rng.choice(n, size=int(rng.integers(0, 4)), replace=False):
        day = int(rng.integers(0, p.n_days))
        start = int(rng.integers(600, 900))
        if all(d != day or abs(s - start) > 200 for _, d, s in apps):
            apps.append((int(a), day, start))
    if apps:
        p = dataclasses.replace(p, appointments=np.array(apps))
    plan = plan_call_cycle(p, seed=seed, time_limit_s=20.0, max_iterations=4000)
    assert_valid(p, plan)
    naive = plan_naive(p)
    assert_valid(p, naive)
    k = int(rng.integers(1, p.n_days))
    p2 = dataclasses.replace(p, previous=plan, frozen_days=k)
    again = plan_call_cycle(p2, seed=seed, time_limit_s=20.0, max_iterations=2000)
    assert_valid(p2, again)
    assert again.value_served >= sum(
        float(p.value[v.account]) for d in plan.days[:k] for v in d.visits
        if v.visit < p.visits[v.account]) - 1e-6


# ---------------------------------------------------------------------------- warm start
def _subset(problem: CallCycleProblem, keep: np.ndarray) -> CallCycleProblem:
    """The problem over accounts ``keep`` (in that order), same home and calendar."""
    loc = np.r_[0, keep + 1]
    return dataclasses.replace(
        problem, minutes=problem.minutes[np.ix_(loc, loc)], km=problem.km[np.ix_(loc, loc)],
        visits=problem.visits[keep], visit_min=problem.visit_min[keep],
        open_windows=None if problem.open_windows is None else problem.open_windows[keep],
        value=None if problem.value is None else problem.value[keep])


def _initial(plan: CallCyclePlan, new_of: dict[int, int] | None = None
             ) -> list[tuple[list[tuple[int, int]], int | None]]:
    """``plan``'s routes as ``initial``, accounts renumbered by ``new_of`` (absent: left out)."""
    new_of = new_of if new_of is not None else {a: a for d in plan.days for a in d.accounts}
    return [([(new_of[v.account], v.visit) for v in d.visits if v.account in new_of],
             new_of.get(d.stay) if d.stay is not None else None) for d in plan.days]


def test_warm_start_from_its_own_plan_is_valid_and_no_worse() -> None:
    p = random_problem(40, 5, remote=6, remote_km=400.0)
    cold = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    assert cold.nights > 0  # the start holds overnight stays to carry over
    warm = plan_call_cycle(p, seed=1, time_limit_s=5.0, max_iterations=200,
                           initial=_initial(cold))
    assert_valid(p, warm)
    assert warm.stats["warm_start"] is True
    assert warm.served >= cold.served
    assert warm.objective <= cold.objective + 1e-6 * abs(cold.objective)


def test_warm_start_after_the_territory_changed_keeps_what_it_can() -> None:
    """Accounts 0-4 leave and 40-44 arrive: the rest start where they were, the newcomers are
    inserted, and the plan is valid with every visit served or dropped with a reason."""
    big = random_problem(45, 6)
    before = _subset(big, np.arange(40))
    after_idx = np.arange(5, 45)
    after = _subset(big, after_idx)
    old = plan_call_cycle(before, seed=0, **FAST)  # type: ignore[arg-type]
    new_of = {int(a): i for i, a in enumerate(after_idx) if a < 40}
    start = _initial(old, new_of)
    assert all(a < 35 for visits, _ in start for a, _ in visits)
    warm = plan_call_cycle(after, seed=0, time_limit_s=5.0, max_iterations=300, initial=start)
    assert_valid(after, warm)
    assert warm.stats["warm_start"] is True
    assert warm.served == warm.required  # 40 accounts fit a four-week cycle easily
    # The accounts that stayed mostly keep their days: a refinement, not a new plan.
    old_day = {(new_of[v.account], v.visit): d.day for d in old.days for v in d.visits
               if v.account in new_of}
    new_day = {(v.account, v.visit): d.day for d in warm.days for v in d.visits}
    same = sum(new_day.get(k) == day for k, day in old_day.items())
    assert same >= 0.6 * len(old_day)


@pytest.mark.parametrize("gap", [None, 4])
def test_warm_start_with_unusable_parts_is_still_valid(gap: int | None) -> None:
    """Unknown accounts, visit numbers beyond an account's visits, days reversed (opening
    hours and spacing broken) and a stay at a nearby account are skipped or repaired."""
    p = random_problem(30, 8, min_gap_days=gap)
    cold = plan_call_cycle(p, seed=0, **FAST)  # type: ignore[arg-type]
    start = _initial(cold)[::-1]
    start[0] = ([(99, 0), (0, 7), *start[0][0]], 0)
    warm = plan_call_cycle(p, seed=0, time_limit_s=5.0, max_iterations=300, initial=start)
    assert_valid(p, warm)
    assert warm.served == warm.required
    assert not warm.stays  # no stay near home: stays need a long drive


def test_warm_start_with_nothing_usable_starts_cold() -> None:
    p = random_problem(20, 9)
    plan = plan_call_cycle(p, seed=0, time_limit_s=5.0, max_iterations=300,
                           initial=[([(50, 0)], None)] * 3)
    assert_valid(p, plan)
    assert plan.stats["warm_start"] is False
