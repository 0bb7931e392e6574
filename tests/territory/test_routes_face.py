"""territory.plan_routes: per-rep call cycles from a plan, every visit accounted for."""

from __future__ import annotations

import numpy as np
import pytest

from territory import synth
from territory.errors import InvalidInputError
from territory.routes import plan_routes
from territory.travel import pairwise_km


@pytest.fixture(scope="module")
def scenario():
    return synth.china_scenario(240, n_reps=3, seed=4, provinces=["31"])


@pytest.fixture(scope="module")
def assignment(scenario):
    d = pairwise_km(scenario.accounts.lonlat, scenario.reps.home_lonlat)
    return dict(zip(scenario.accounts.ids, scenario.reps.ids[d.argmin(1)], strict=True))


@pytest.fixture(scope="module")
def routes(scenario, assignment):
    return plan_routes(scenario, assignment=assignment, time_limit_s=5, seed=0,
                       max_iterations=300)


def test_every_required_visit_served_or_dropped_with_reason(scenario, assignment,
                                                            routes) -> None:
    acc = scenario.accounts
    need = dict(zip(acc.ids, acc.visits, strict=True))
    served = routes.schedule.groupby("account_id").size()
    dropped = routes.dropped.groupby("account_id").size()
    for a, v in need.items():
        assert served.get(a, 0) + dropped.get(a, 0) >= v
    assert routes.dropped["reason"].isin(
        ["closed", "unreachable", "frozen", "no_time", "gap", "appointment"]).all()
    # Visits go to the assigned rep.
    rep = routes.schedule["account_id"].map(assignment)
    assert (rep == routes.schedule["rep_id"]).all()


def test_schedule_times_are_consistent(routes) -> None:
    s = routes.schedule
    assert (s["arrival_min"] <= s["start_min"]).all()
    assert (s["start_min"] < s["departure_min"]).all()
    for _, day in s.groupby(["rep_id", "day"]):
        day = day.sort_values("sequence")
        assert (day["arrival_min"].to_numpy()[1:] >= day["departure_min"].to_numpy()[:-1]).all()
        assert list(day["sequence"]) == list(range(1, len(day) + 1))


def test_rep_table_and_summary(scenario, routes) -> None:
    r = routes.reps.set_index("rep_id")
    assert set(r.index) == set(scenario.reps.ids)
    np.testing.assert_allclose(r["simulated_workload_h"],
                               r["visit_h"] + r["drive_h"] + r["break_h"])
    assert (r["utilisation"] <= 1.0 + 1e-9).all()
    assert "reps" in routes.summary()
    d = routes.to_dict()
    assert set(d["simulated_workload_hours"]) == set(scenario.reps.ids)


def test_same_seed_same_schedule(scenario, assignment, routes) -> None:
    again = plan_routes(scenario, assignment=assignment, time_limit_s=5, seed=0,
                        max_iterations=300)
    assert again.schedule.equals(routes.schedule)


def test_parallel_equals_inline(scenario, assignment, routes) -> None:
    par = plan_routes(scenario, assignment=assignment, time_limit_s=5, seed=0,
                      max_iterations=300, workers=2)
    assert par.schedule.equals(routes.schedule)


def test_route_lines(routes) -> None:
    gdf = routes.to_geodataframe()
    assert len(gdf) == len(routes.days[routes.days["visits"] > 0])


def test_unknown_rep_in_assignment(scenario) -> None:
    with pytest.raises(InvalidInputError, match="not in the scenario"):
        plan_routes(scenario, assignment={scenario.accounts.ids[0]: "R9999"})


def test_route_variants_route_one_rep_over_alternative_territories(scenario,
                                                                   assignment) -> None:
    from territory.routes import route_variants

    acc = scenario.accounts
    r0 = str(scenario.reps.ids[0])
    pos = np.flatnonzero(np.array([assignment[a] for a in acc.ids], dtype=object) == r0)
    half = pos[: len(pos) // 2]
    whole, part = route_variants(scenario, [(r0, pos), (r0, half)], time_limit_s=5, seed=0,
                                 max_iterations=300, workers=2)
    # The whole territory as plan_routes routes it (same seed, same iterations).
    ref = plan_routes(scenario, assignment=assignment, reps=[r0], time_limit_s=5, seed=0,
                      max_iterations=300)
    assert whole.schedule.equals(ref.schedule)
    # The other job holds only its accounts, every visit served or dropped.
    for plan, ids in ((whole, acc.ids[pos]), (part, acc.ids[half])):
        seen = set(plan.schedule["account_id"]) | set(plan.dropped["account_id"])
        assert seen == set(ids)
        row = plan.reps.iloc[0]
        assert row["visits_served"] + row["visits_dropped"] == int(acc.visits[
            np.isin(acc.ids, ids)].sum())
    with pytest.raises(InvalidInputError, match="Unknown rep"):
        route_variants(scenario, [("nobody", half)], time_limit_s=1)
    with pytest.raises(InvalidInputError, match="outside"):
        route_variants(scenario, [(r0, np.array([len(acc)]))], time_limit_s=1)


def test_route_variants_warm_start_from_the_current_routes(scenario, assignment,
                                                           routes) -> None:
    """A rep losing two accounts to a neighbour: both start from their current routes; the
    loser's days keep their order without the two, the gainer's plan holds them."""
    from territory.routes import route_variants

    acc = scenario.accounts
    rep_of = np.array([assignment[a] for a in acc.ids], dtype=object)
    r0, r1 = (str(r) for r in scenario.reps.ids[:2])
    pos0 = np.flatnonzero(rep_of == r0)
    moved = pos0[:2]
    lose, gain = pos0[2:], np.r_[np.flatnonzero(rep_of == r1), moved]
    jobs = [(r0, lose), (r1, gain)]
    warm = route_variants(scenario, jobs, time_limit_s=5, seed=1, max_iterations=50,
                          warm_start=routes)
    cold = route_variants(scenario, jobs, time_limit_s=5, seed=1, max_iterations=50)
    for plan, (r, pos) in zip(warm, jobs, strict=True):
        assert plan.plans[r].stats["warm_start"] is True
        seen = set(plan.schedule["account_id"]) | set(plan.dropped["account_id"])
        assert seen == set(acc.ids[pos])
    for plan in cold:
        assert next(iter(plan.plans.values())).stats["warm_start"] is False
    # 50 iterations from the current routes beat 50 from scratch, for both reps.
    for w, c in zip(warm, cold, strict=True):
        assert w.reps["km"].iloc[0] < c.reps["km"].iloc[0]
    # The loser's visits that stayed keep their day where the start had them.
    before = routes.schedule[routes.schedule["rep_id"] == r0]
    before = before[~before["account_id"].isin(acc.ids[moved])]
    key = ["account_id", "visit", "day"]
    kept = len(before[key].merge(warm[0].schedule[key], on=key))
    kept_cold = len(before[key].merge(cold[0].schedule[key], on=key))
    assert kept >= 0.6 * len(before)
    assert kept > 2 * kept_cold
