"""Invariants across the library: same seed and one worker give the same JSON result, and every
solver honours its time limit within 10 % plus a small constant on cases that would run longer.

Determinism of each layer on its own is tested next to it (``tests/solvers/test_partition.py``,
``test_vrptw.py``, ``test_cycle.py``, ``tests/territory/test_partition_face.py``,
``test_routes_face.py``, ``test_planning.py``); here it is checked at the contract, where other
services see it. The VRPTW solver's and the partition engine's own limits are tested in
``tests/solvers`` (``test_time_limit_is_honoured``); here the faces and the call-cycle planner.

Time limits: the check is ``elapsed <= 1.1 * limit + SLACK_S``. ``SLACK_S`` covers what the
limit does not promise to include: setting up the problem before the clock starts, the numba
kernels loading from their disk cache in a fresh process, and a machine shared with other
jobs (two cores).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pytest

import territory as tp
from solvers.routing.cycle import plan_call_cycle
from territory import contract, synth
from territory.routes import build_rep_problem

SLACK_S = 1.5


def within_limit(elapsed: float, limit: float) -> bool:
    return elapsed <= 1.1 * limit + SLACK_S


def without_runtime(message: Any) -> Any:
    """A result message with its wall-clock fields removed (they differ between runs)."""
    if isinstance(message, dict):
        return {k: without_runtime(v) for k, v in message.items() if k != "runtime_s"}
    if isinstance(message, list):
        return [without_runtime(v) for v in message]
    return message


@pytest.fixture(scope="module")
def small() -> tp.Scenario:
    """80 accounts in Shanghai, 3 reps."""
    return synth.china_scenario(n_accounts=80, n_reps=3, seed=5, provinces=["31"])


@pytest.fixture(scope="module")
def large() -> tp.Scenario:
    """3,000 accounts in Guangdong, 30 reps: far from converged in 2 s."""
    return synth.china_scenario(n_accounts=3_000, n_reps=30, seed=2, provinces=["44"])


def request_of(scenario: tp.Scenario, options: dict[str, Any]) -> str:
    from territory.hours import format_clock

    accounts = scenario.accounts.frame[["id", "lon", "lat", "potential", "hours"]]
    reps = [{"id": r["id"], "home_lon": r["home_lon"], "home_lat": r["home_lat"],
             "work_start": format_clock(r["work_start"])}
            for r in scenario.reps.frame.to_dict("records")]
    return json.dumps({"schema_version": "1.0", "accounts": accounts.to_dict("records"),
                       "reps": reps, "options": options}, ensure_ascii=False)


# ----------------------------------------------------------------------------------------------
# same seed, one worker: the same JSON


def test_same_partition_request_same_result(small) -> None:
    body = request_of(small, {"seed": 3, "time_limit_s": 30})
    replies = []
    for _ in range(2):
        scenario, options = contract.parse_partition_request(body)
        replies.append(contract.partition_result_to_json(
            tp.partition(scenario, **options, max_iterations=2_000)))
    assert without_runtime(replies[0]) == without_runtime(replies[1])


def test_same_plan_request_same_result(small) -> None:
    body = request_of(small, {"seed": 4, "partition_time_s": 30, "route_time_s": 30,
                              "max_rounds": 1, "workers": 1})
    replies = []
    for _ in range(2):
        scenario, options = contract.parse_plan_request(body)
        replies.append(contract.plan_result_to_json(
            tp.plan(scenario, **options, max_iterations=200)))
    assert without_runtime(replies[0]) == without_runtime(replies[1])


# ----------------------------------------------------------------------------------------------
# time limits, on cases that would run longer


def test_partition_face_honours_its_limit(large) -> None:
    limit = 2.0
    t0 = time.perf_counter()
    plan = tp.partition(large, time_limit_s=limit, seed=0)
    elapsed = time.perf_counter() - t0
    assert plan.engine is not None and plan.engine.stop_reason == "time_limit"
    assert within_limit(elapsed, limit), elapsed


@pytest.fixture(scope="module")
def busy_rep(large) -> Any:
    """One rep's problem with 150 accounts over four weeks: far from converged in 2 s."""
    home = large.reps.home_lonlat[0]
    d = np.hypot(*(large.accounts.lonlat - home).T)
    problem, _ = build_rep_problem(large, 0, np.argsort(d)[:150])
    return problem


def test_call_cycle_planner_honours_its_limit(busy_rep) -> None:
    limit = 2.0
    plan_call_cycle(busy_rep, time_limit_s=0.1, seed=0)  # numba kernels loaded before timing
    t0 = time.perf_counter()
    plan = plan_call_cycle(busy_rep, time_limit_s=limit, seed=0)
    elapsed = time.perf_counter() - t0
    assert plan.stop_reason == "time_limit", plan.stop_reason
    assert within_limit(elapsed, limit), elapsed


def test_plan_routes_honours_its_limit_per_rep(large) -> None:
    limit = 1.0
    reps = [str(r) for r in large.reps.ids[:3]]
    home = large.reps.home_lonlat[:3]
    nearest = np.hypot(*(large.accounts.lonlat[:, None, :] - home[None]).transpose(2, 0, 1))
    keep = np.argsort(nearest.min(axis=1))[:240]
    assignment = {str(large.accounts.ids[i]): reps[int(nearest[i].argmin())] for i in keep}
    scenario = tp.Scenario(accounts=large.accounts.subset(keep), reps=large.reps,
                           calendar=large.calendar, travel=large.travel)
    t0 = time.perf_counter()
    routes = tp.plan_routes(scenario, assignment=assignment, time_limit_s=limit, seed=0,
                            workers=1)
    elapsed = time.perf_counter() - t0
    stops = {r: p.stop_reason for r, p in routes.plans.items()}
    assert set(stops.values()) == {"time_limit"}, stops
    # One worker: the reps run one after the other, each within its limit.
    assert within_limit(elapsed, limit * len(routes.plans)), elapsed


def test_plan_honours_its_loop_budget() -> None:
    # Unbounded, this loop runs 12 rounds, about 35 s; with the budget it must stop in time.
    scenario = synth.china_scenario(n_accounts=600, n_reps=6, seed=3, provinces=["44"])
    budget = 6.0
    t0 = time.perf_counter()
    result = tp.plan(scenario, partition_time_s=1.0, route_time_s=0.3, max_rounds=12,
                     patience=50, workload_tolerance=0.001, time_limit_s=budget, seed=0)
    elapsed = time.perf_counter() - t0
    assert 1 < len(result.rounds) < 13  # the loop ran, and was cut by the budget
    assert within_limit(elapsed, budget), (elapsed, len(result.rounds))
