"""Fuzzed scenarios through the solvers: partition, plan_routes and plan end in a typed error or
in a plan where every account is assigned or listed unassigned with a reason, the reported
balance is true and every route passes the independent checker. Limits are tiny, so no example
can hang."""

from __future__ import annotations

import warnings
from collections import Counter

import pytest
from fuzz_helpers import (
    account_tables,
    check_partition,
    check_routes,
    examples,
    outcome,
    rep_tables,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st

import territory as tp
from territory import contract
from territory.errors import DataQualityWarning, InvalidInputError
from territory.model import Accounts, Calendar, Reps, Scenario

pytestmark = pytest.mark.timeout(900)

MEASURES = st.sampled_from([("workload",), ("count",), ("potential",), ("workload", "count"),
                            ("visits", "potential"), ("workload", "potential", "count")])
TOLERANCE = st.sampled_from([0.0, 0.05, 0.5, 3.0])


@st.composite
def scenarios(draw, max_accounts: int = 8, max_reps: int = 4) -> Scenario:
    rep = draw(rep_tables(min_rows=1, max_rows=max_reps, faults=False))
    # Mostly at least as many accounts as reps: more reps than accounts is one case of many.
    few = draw(st.sampled_from([False] * 5 + [True]))
    acc = draw(account_tables(min_rows=1 if few else rep.n, max_rows=max(max_accounts, rep.n),
                              faults=False))
    weeks = draw(st.integers(1, 2))
    return Scenario(Accounts.from_frame(acc.frame()), Reps.from_frame(rep.frame()),
                    calendar=Calendar.weekly(weeks, workdays=draw(st.sampled_from(
                        ["mon-fri", "mon-fri", "mon-wed", "sat"]))))


def run_partition(scenario: Scenario, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        plan, exc = outcome(tp.partition, scenario, **kwargs)
    if exc is not None:
        # Only a request the data cannot meet: more territories than accounts or locations.
        assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
        assert "territories for" in str(exc), exc
        assert len(scenario.reps) > 1
        event("partition: refused (more territories than accounts or locations)")
        return None
    check_partition(scenario, plan)
    return plan


def assert_no_working_day(exc: BaseException) -> None:
    """The one refusal of routing: a rep who works no day of the cycle (named, with the
    field)."""
    assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
    assert "works on none of the cycle's days" in str(exc) and "working_days" in str(exc), exc


@settings(max_examples=examples(0.5))
@given(scenarios(), MEASURES, TOLERANCE, st.booleans(),
       st.sampled_from(["sum_distance", "diameter"]), st.sampled_from([None, 0, 1, 50]),
       st.sampled_from([None, "province"]), st.integers(0, 3))
def test_partition_and_routes(scenario, measures, tolerance, contiguous, objective,
                              max_iterations, nest, seed) -> None:
    plan = run_partition(scenario, measures=measures, tolerance=tolerance,
                         contiguous=contiguous, objective=objective, nest=nest,
                         time_limit_s=0.5, max_iterations=max_iterations, seed=seed)
    if plan is None:
        return
    reply = contract.partition_result_to_json(plan)
    listed = Counter([a["account_id"] for a in reply["assignment"]]
                     + [u["account_id"] for u in reply["unassigned"]])
    assert listed == Counter(str(a) for a in scenario.accounts.ids)
    routes, exc = outcome(tp.plan_routes, plan, time_limit_s=0.2, seed=seed,
                          max_iterations=max_iterations)
    if exc is not None:
        assert_no_working_day(exc)
        event("routes: refused (a rep works no day of the cycle)")
        return
    event(f"routes: {'some' if len(routes.dropped) else 'no'} visits dropped")
    rep_of = dict(zip(plan.account_ids, plan.rep_of_account, strict=True))
    check_routes(scenario, routes, rep_of)


@settings(max_examples=examples(0.25))
@given(scenarios(max_accounts=6, max_reps=3), st.integers(0, 1), st.sampled_from([0.05, 0.5]),
       st.sampled_from([None, 0.5]))
def test_plan(scenario, max_rounds, tolerance, time_limit_s) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        result, exc = outcome(tp.plan, scenario, tolerance=tolerance, partition_time_s=0.5,
                              route_time_s=0.2, max_rounds=max_rounds, max_iterations=50,
                              time_limit_s=time_limit_s)
    if exc is not None:
        assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
        if "works on none" in str(exc):
            assert_no_working_day(exc)
        else:
            assert "territories for" in str(exc), exc
        event(f"plan: refused ({type(exc).__name__})")
        return
    event(f"plan: feasible={result.territories.feasible}")
    check_partition(scenario, result.territories, calibrated=True)
    rep_of = dict(zip(result.territories.account_ids, result.territories.rep_of_account,
                      strict=True))
    check_routes(scenario, result.routes, rep_of)
    reply = contract.plan_result_to_json(result)
    listed = Counter([a["account_id"] for a in reply["assignment"]]
                     + [u["account_id"] for u in reply["unassigned"]])
    assert listed == Counter(str(a) for a in scenario.accounts.ids)
    assert all(u["reason"] for u in reply["unassigned"])
