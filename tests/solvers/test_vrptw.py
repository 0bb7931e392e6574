"""Tests of the single-day VRPTW core: problem validation, the independent checker, both
backends, drops, limits and determinism, and the DIMACS benchmark readers."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.vrplib import dimacs_problem, read_bks, read_sol, read_solomon, write_sol
from solvers.errors import SolverInputError
from solvers.routing import (
    Objective,
    OrtoolsParams,
    PyvrpParams,
    VRPTWProblem,
    check_solution,
    choose_backend,
    solve_vrptw,
    unreachable_visits,
)
from solvers.routing.ortools_vrptw import solve_ortools

DATA = Path(__file__).resolve().parents[1] / "data" / "solomon"


# --------------------------------------------------------------------------- fixtures
def line_problem(**changes) -> VRPTWProblem:
    """Five stops on a line, solvable by hand.

    Depot 0 at x=0; stops 1..4 at x=2, 4, 6, 8 and stop 5 at x=-3; travel time = distance =
    |x_i - x_j|; service 1 each. Windows force stops 1-4 in increasing order (1: [0,3],
    2: [4,6], 3: [7,9], 4: [10,12]) and stop 5 last ([20,24]); depot open [0,40].
    Two vehicles with fixed cost 5 each.

    By hand: any tour covers [-3, 8] twice, so distance >= 22; 0-1-2-3-4-5-0 has exactly 22
    and meets every window (arrivals 2, 5, 8, 11, 23; back at 27, no waiting). Serving 5 on
    a second vehicle also costs 22 in distance but 5 more in fixed cost. Optimum: one vehicle,
    route (1, 2, 3, 4, 5), objective 22 + 5 = 27, duration 27.
    """
    x = np.array([0.0, 2, 4, 6, 8, -3])
    d = np.abs(x[:, None] - x[None, :])
    base = dict(
        duration=d,
        distance=d,
        tw_early=np.array([0.0, 0, 4, 7, 10, 20]),
        tw_late=np.array([40.0, 3, 6, 9, 12, 24]),
        service=np.array([0.0, 1, 1, 1, 1, 1]),
        starts=np.array([0, 0]),
        ends=np.array([0, 0]),
        vehicle_fixed_cost=5.0,
        name="line",
    )
    base.update(changes)
    return VRPTWProblem(**base)


@pytest.fixture(scope="module")
def c101() -> VRPTWProblem:
    return dimacs_problem(read_solomon(DATA / "C101.txt"))


@pytest.fixture(scope="module")
def bks() -> dict:
    return read_bks(DATA / "bks.csv")


def assert_valid(problem: VRPTWProblem, result) -> None:
    """Invariants every result must satisfy, whatever the backend."""
    check = check_solution(problem, result.routes)
    assert check.feasible == result.feasible
    assert check.objective == pytest.approx(result.objective)
    served = [v for r in result.routes for v in r]
    assert len(served) == len(set(served))
    assert sorted(served + list(result.dropped)) == problem.visits.tolist()
    assert len(result.dropped_reasons) == len(result.dropped)
    json.dumps(result.to_dict())
    assert result.summary()


# --------------------------------------------------------------------------- problem
def test_problem_validation_names_the_field() -> None:
    with pytest.raises(SolverInputError, match="tw_late"):
        line_problem(tw_late=np.array([40.0, 3, 6, 9, 12, 19]))  # 19 < tw_early 20
    with pytest.raises(SolverInputError, match=r"duration\[0, 1\]"):
        d = np.abs(np.arange(6.0)[:, None] - np.arange(6.0)[None, :])
        d[0, 1] = -1
        line_problem(duration=d)
    with pytest.raises(SolverInputError, match="starts"):
        line_problem(starts=np.array([0, 7]))
    with pytest.raises(SolverInputError, match="service"):
        line_problem(service=np.array([3.0, 1, 1, 1, 1, 1]))  # service at the depot
    with pytest.raises(SolverInputError, match="demand"):
        line_problem(demand=np.array([0, 1.5, 1, 1, 1, 1]))
    with pytest.raises(SolverInputError, match="capacity"):
        line_problem(capacity=np.array([3.0]))
    with pytest.raises(SolverInputError, match="scale"):
        line_problem(scale=0)
    with pytest.raises(SolverInputError, match="objective"):
        Objective(distance=-1.0)


def test_problem_is_frozen_and_copies_inputs() -> None:
    tw = np.array([0.0, 0, 4, 7, 10, 20])
    p = line_problem(tw_early=tw)
    tw[1] = 99
    assert p.tw_early[1] == 0
    with pytest.raises(ValueError):
        p.tw_early[1] = 5
    assert p.visits.tolist() == [1, 2, 3, 4, 5]
    assert p.required.tolist() == [False, True, True, True, True, True]


# --------------------------------------------------------------------------- checker
def test_check_known_answer_by_hand() -> None:
    p = line_problem()
    c = check_solution(p, [[1, 2, 3, 4, 5]])
    assert c.feasible, c.violations
    assert c.distance == 22.0
    assert c.objective == 27.0
    sched = c.schedules[0]
    # No waiting anywhere: leave at 0, arrive 2, 5, 8, 11, 23, back at 27.
    assert sched.start / p.scale == 0.0
    assert (sched.arrival / p.scale).tolist() == [2, 5, 8, 11, 23]
    assert sched.end / p.scale == 27.0
    assert sched.duration / p.scale == 27.0


def test_check_catches_violations() -> None:
    p = line_problem()
    late = check_solution(p, [[5, 1, 2, 3, 4]])  # stop 5 first: everything after is late
    assert not late.feasible
    assert any("time windows missed" in v for v in late.violations)

    dup = check_solution(p, [[1, 2, 3, 4, 5], [5]])
    assert any("node 5 served 2 times" in v for v in dup.violations)

    missing = check_solution(p, [[1, 2, 3, 4]])
    assert not missing.feasible and missing.unserved_required == (5,)

    cap = line_problem(demand=np.array([0, 1, 1, 1, 1, 1]), capacity=np.array([4, 4]))
    over = check_solution(cap, [[1, 2, 3, 4, 5]])
    assert any("load 5 > capacity 4" in v for v in over.violations)
    assert check_solution(cap, [[1, 2, 3, 4], [5]]).feasible

    short = line_problem(max_duration=np.array([20.0, 20.0]))
    long = check_solution(short, [[1, 2, 3, 4, 5]])
    assert any("max_duration" in v for v in long.violations)

    with pytest.raises(SolverInputError, match="depot"):
        check_solution(p, [[0, 1]])
    with pytest.raises(SolverInputError, match="routes"):
        check_solution(p, [[1], [2], [3]])


def test_check_minimal_duration_delays_the_start() -> None:
    # One stop opening at 10, 2 away: leave at 8, not at 0, so the route lasts 2 + 1 + 2
    # (leaving later, up to 18, would last as long but arrive later in the window).
    d = np.array([[0.0, 2], [2, 0]])
    p = VRPTWProblem(
        duration=d,
        distance=d,
        tw_early=[0.0, 10],
        tw_late=[100.0, 20],
        service=[0.0, 1],
        starts=[0],
        ends=[0],
    )
    c = check_solution(p, [[1]])
    assert c.schedules[0].start / p.scale == 8
    assert c.duration == 5


def test_dimacs_recosting_of_bks_solutions_equals_bks(bks: dict) -> None:
    for name in ("C101", "R101", "RC105"):
        problem = dimacs_problem(read_solomon(DATA / f"{name}.txt"))
        routes, cost = read_sol(DATA / f"{name}.sol")
        check = check_solution(problem, routes)
        assert check.feasible, (name, check.violations)
        assert check.distance == cost == bks[name].bks_distance
        assert check.n_routes == bks[name].bks_vehicles


def test_sol_round_trip(tmp_path: Path) -> None:
    routes, cost = read_sol(DATA / "R101.sol")
    write_sol(tmp_path / "x.sol", routes, cost)
    assert read_sol(tmp_path / "x.sol") == (routes, cost)


@pytest.mark.needs_shared
def test_every_shared_bks_solution_recosts_exactly(shared_dir: Path) -> None:
    for folder in ("solomon", "homberger"):
        root = shared_dir / "bench" / "vrptw" / folder
        table = read_bks(root / "bks.csv")
        for sol in sorted(root.glob("*.sol")):
            problem = dimacs_problem(read_solomon(sol.with_suffix(".txt")))
            routes, cost = read_sol(sol)
            check = check_solution(problem, routes)
            assert check.feasible, (sol.name, check.violations[:3])
            assert check.distance == pytest.approx(cost, abs=1e-9)
            assert check.distance == pytest.approx(table[sol.stem].bks_distance, abs=1e-9)


# --------------------------------------------------------------------------- solving
BACKENDS = [
    "ortools",
    pytest.param(
        "pyvrp",
        marks=pytest.mark.skipif(
            not __import__("solvers.routing.pyvrp_vrptw", fromlist=["x"]).pyvrp_available(),
            reason="pyvrp not installed",
        ),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_known_answer_line(backend: str) -> None:
    p = line_problem()
    r = solve_vrptw(p, time_limit_s=2, backend=backend, max_iterations=200)
    assert_valid(p, r)
    assert r.feasible
    assert sorted(x for x in r.routes if x) == [(1, 2, 3, 4, 5)]
    assert r.objective == 27.0
    assert r.total_distance == 22.0
    assert r.backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_c101_feasible_and_near_optimal(backend: str, c101: VRPTWProblem, bks: dict) -> None:
    r = solve_vrptw(c101, time_limit_s=3, backend=backend, seed=1)
    assert_valid(c101, r)
    assert r.feasible and not r.dropped
    assert r.total_distance <= 1.05 * bks["C101"].bks_distance


@pytest.mark.parametrize("name", ["R101", "RC105"])
def test_ortools_finds_a_solution_on_tight_instances(name: str) -> None:
    # Without a disjunction per visit OR-Tools' first-solution heuristics fail here.
    problem = dimacs_problem(read_solomon(DATA / f"{name}.txt"))
    r = solve_vrptw(problem, time_limit_s=3, backend="ortools")
    assert_valid(problem, r)
    assert r.feasible and not r.dropped
    assert r.stats["first_solution"] in OrtoolsParams().first_solution_strategies


@pytest.mark.parametrize("backend", BACKENDS)
def test_drops_are_reported_with_reasons(backend: str) -> None:
    # Stop 6 (x=1, window [0, 0.5]) cannot be reached in time by anyone: set aside up front.
    # Stop 7 (x=15) is optional with a penalty of 1: cheaper to drop than the 30 + 5 to serve.
    # Stop 8 (x=-30) is required but no vehicle can reach it before the depot closes.
    x = np.array([0.0, 2, 4, 6, 8, -3, 1, 15, -30])
    d = np.abs(x[:, None] - x[None, :])
    p = VRPTWProblem(
        duration=d,
        distance=d,
        tw_early=np.array([0.0, 0, 4, 7, 10, 20, 0, 0, 0]),
        tw_late=np.array([40.0, 3, 6, 9, 12, 24, 0.5, 100, 100]),
        service=np.array([0.0, 1, 1, 1, 1, 1, 0, 0, 0]),
        starts=[0, 0],
        ends=[0, 0],
        vehicle_fixed_cost=5.0,
        drop_penalty=np.array([np.inf, np.inf, np.inf, np.inf, np.inf, np.inf, 50, 1, np.inf]),
    )
    assert set(unreachable_visits(p)) == {6, 8}
    r = solve_vrptw(p, time_limit_s=2, backend=backend, max_iterations=200)
    assert_valid(p, r)
    assert sorted(x for x in r.routes if x) == [(1, 2, 3, 4, 5)]
    reasons = dict(zip(r.dropped, r.dropped_reasons, strict=True))
    assert set(reasons) == {6, 7, 8}
    assert "time window" in reasons[6] and "time window" in reasons[8]
    assert "penalty" in reasons[7]
    assert not r.feasible  # required stop 8 is not served
    assert r.objective == 27.0 + 50 + 1  # required drops add no penalty, optional ones do


@pytest.mark.parametrize("backend", BACKENDS)
def test_fleet_too_small_drops_required_visits(backend: str) -> None:
    # Capacity 2 on one vehicle for five unit demands: three visits cannot be served.
    p = line_problem(
        demand=np.array([0, 1, 1, 1, 1, 1]),
        capacity=np.array([2]),
        starts=np.array([0]),
        ends=np.array([0]),
        vehicle_fixed_cost=0.0,
    )
    r = solve_vrptw(p, time_limit_s=2, backend=backend, max_iterations=200)
    assert_valid(p, r)
    assert len(r.dropped) == 3 and not r.feasible
    assert not any("time windows" in v or "load" in v for v in r.violations)


@pytest.mark.parametrize("backend", BACKENDS)
def test_duration_objective_and_distinct_depots(backend: str) -> None:
    # Start at node 0, end at node 1: the vehicle must finish at the other depot.
    x = np.array([0.0, 10, 3, 7])
    d = np.abs(x[:, None] - x[None, :])
    p = VRPTWProblem(
        duration=d,
        distance=d,
        tw_early=np.zeros(4),
        tw_late=np.full(4, 50.0),
        starts=[0],
        ends=[1],
        objective=Objective(distance=1.0, duration=0.5),
    )
    r = solve_vrptw(p, time_limit_s=2, backend=backend, max_iterations=100)
    assert_valid(p, r)
    assert r.routes == ((2, 3),)
    assert r.objective == 10 + 0.5 * 10


@pytest.mark.parametrize("backend", BACKENDS)
def test_time_limit_is_honoured(backend: str) -> None:
    problem = dimacs_problem(read_solomon(DATA / "RC105.txt"))
    limit = 2.0
    t0 = time.perf_counter()
    r = solve_vrptw(problem, time_limit_s=limit, backend=backend)
    wall = time.perf_counter() - t0
    assert wall <= 1.1 * limit + 1.0
    assert r.runtime_s <= 1.1 * limit + 1.0
    assert r.stop_reason == "time_limit"
    assert r.feasible


@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_and_max_iterations_give_the_same_result(backend: str) -> None:
    problem = dimacs_problem(read_solomon(DATA / "RC105.txt"))
    runs = [
        solve_vrptw(problem, time_limit_s=60, backend=backend, seed=3, max_iterations=60)
        for _ in range(2)
    ]
    assert runs[0].routes == runs[1].routes
    assert runs[0].objective == runs[1].objective
    assert runs[0].stop_reason == "max_iterations"


def test_initial_routes_warm_start_ortools() -> None:
    p = line_problem()
    r = solve_ortools(
        p,
        time_limit_s=2,
        max_iterations=1,
        initial_routes=[[1, 2, 3, 4, 5], []],
        params=OrtoolsParams(first_solution_strategies=("PATH_CHEAPEST_ARC",)),
    )
    assert r.stats["first_solution"] == "initial_routes"
    assert r.routes[0] == [1, 2, 3, 4, 5]


def test_backend_choice() -> None:
    p = line_problem()
    assert choose_backend(p, "auto", OrtoolsParams()) == "ortools"
    assert choose_backend(p, "ortools") == "ortools"
    with pytest.raises(SolverInputError, match="backend"):
        choose_backend(p, "gurobi")
    with pytest.raises(SolverInputError, match="params"):
        choose_backend(p, "ortools", PyvrpParams())
    with pytest.raises(SolverInputError, match="time_limit_s"):
        solve_vrptw(p, time_limit_s=0)


def test_auto_prefers_pyvrp_when_installed() -> None:
    pytest.importorskip("pyvrp")
    assert choose_backend(line_problem()) == "pyvrp"


def test_library_works_without_pyvrp(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pyvrp", None)  # makes ``import pyvrp`` fail
    from solvers.routing import PyVRPMissingError, pyvrp_available

    assert not pyvrp_available()
    p = line_problem()
    assert choose_backend(p) == "ortools"
    with pytest.raises(PyVRPMissingError, match="pip install"):
        solve_vrptw(p, time_limit_s=1, backend="pyvrp")
    assert solve_vrptw(p, time_limit_s=1, max_iterations=50).objective == 27.0


def test_pyvrp_defaults_reproduce_plain_pyvrp_solve() -> None:
    pyvrp = pytest.importorskip("pyvrp")
    from pyvrp.stop import MaxIterations

    from solvers.routing.pyvrp_vrptw import build_pyvrp_data, pyvrp_routes, solve_pyvrp

    p = dimacs_problem(read_solomon(DATA / "RC105.txt"))
    pdata = build_pyvrp_data(p)
    plain = pyvrp.solve(pdata.data, MaxIterations(300), seed=4, collect_stats=False)
    ours = solve_pyvrp(
        p, time_limit_s=60, seed=4, max_iterations=300, params=PyvrpParams.pyvrp_defaults()
    )
    assert ours.routes == pyvrp_routes(pdata, plain.best, p.n_vehicles)


def test_pyvrp_fresh_restarts_are_deterministic() -> None:
    pytest.importorskip("pyvrp")
    from solvers.routing.pyvrp_vrptw import solve_pyvrp

    p = dimacs_problem(read_solomon(DATA / "C101.txt"))
    params = PyvrpParams(restart_after=20)
    runs = [
        solve_pyvrp(p, time_limit_s=60, seed=2, max_iterations=400, params=params) for _ in range(2)
    ]
    assert runs[0].stats["runs"] > 1
    assert runs[0].routes == runs[1].routes
    assert check_solution(p, runs[0].routes).feasible
