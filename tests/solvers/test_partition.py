"""The partitioning engine: known answers, constraints, realignment, determinism, limits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from partition_helpers import blocks, check_invariants, grid, load_ctdp

from solvers.errors import SolverInputError
from solvers.partition import PartitionParams, PartitionProblem, solve_partition

FAST = PartitionParams(max_starts_without_improvement=3, perturbations=5, stall_iterations=300)


def solve(problem: PartitionProblem, **kw) -> object:
    kw.setdefault("time_limit_s", 10.0)
    kw.setdefault("params", FAST)
    res = solve_partition(problem, **kw)
    check_invariants(problem, res)
    return res


@pytest.fixture(scope="module")
def ctdp():
    return load_ctdp()


# ---------------------------------------------------------------- known answers on a 4x4 grid


def test_grid_two_territories_diameter_is_sqrt10():
    # Two territories of 8 units: a 2x4 half has diameter sqrt(10); no split does better (a set
    # of 8 with diameter^2 <= 9 must be a row plus the inner 2x2, whose complement has 13).
    xy, edges = grid(4)
    prob = PartitionProblem(xy, np.ones(16), 2, 0.0, edges=edges, objective="diameter")
    res = solve(prob)
    assert res.feasible
    assert res.objective == pytest.approx(math.sqrt(10), abs=1e-12)
    assert sorted(len(b) for b in blocks(res.assignment)) == [8, 8]


def test_grid_four_territories_diameter_gives_quadrants():
    # Four units with pairwise distance^2 <= 2 form a 2x2 square; the only tiling is quadrants.
    xy, edges = grid(4)
    prob = PartitionProblem(xy, np.ones(16), 4, 0.0, edges=edges, objective="diameter")
    res = solve(prob)
    quadrants = {
        frozenset(x * 4 + y for x in xs for y in ys)
        for xs in ((0, 1), (2, 3))
        for ys in ((0, 1), (2, 3))
    }
    assert res.feasible
    assert blocks(res.assignment) == quadrants
    assert res.objective == pytest.approx(math.sqrt(2), abs=1e-12)


def test_grid_fixed_centres_sum_distance_and_tight_lp_bound():
    # Centres in the middle of the left and right halves: the nearest-centre split is balanced,
    # so it is optimal and the LP bound equals it: 8 (sqrt(2.5) + sqrt(0.5)).
    xy, edges = grid(4)
    centres = np.array([[0.5, 1.5], [2.5, 1.5]])
    prob = PartitionProblem(xy, np.ones(16), 2, 0.0, edges=edges, centers=centres)
    res = solve(prob)
    expected = 8 * (math.sqrt(2.5) + math.sqrt(0.5))
    left = frozenset(range(8))
    assert blocks(res.assignment) == {left, frozenset(range(8, 16))}
    assert res.objective == pytest.approx(expected, rel=1e-12)
    assert res.lower_bound_kind == "lp_fixed_centres"
    assert res.lower_bound == pytest.approx(expected, rel=1e-6)
    assert res.gap == pytest.approx(0.0, abs=1e-6)


def test_free_centres_sum_distance_lagrangian_bound_is_below(ctdp):
    inst = ctdp.generate(300, 6, 11)
    prob = PartitionProblem(inst.xy, inst.measures, 6, 0.05, edges=inst.edges)
    res = solve(prob, time_limit_s=6.0)
    assert res.feasible
    assert res.lower_bound_kind == "lagrangian_p_median"
    assert 0 < res.lower_bound <= res.objective
    # centres are the medoids: units of their territory
    for k in range(6):
        members = np.flatnonzero(res.assignment == k)
        assert any(np.allclose(res.centers[k], inst.xy[i]) for i in members)


# ---------------------------------------------------------------- constraints


def test_ctdp_three_measures_feasible_and_contiguous(ctdp):
    inst = ctdp.generate(400, 8, 3)
    prob = PartitionProblem(inst.xy, inst.measures, 8, 0.05, edges=inst.edges,
                            objective="diameter")
    res = solve(prob, time_limit_s=5.0)
    assert res.feasible
    assert res.contiguous.all()
    assert (res.max_abs_deviation <= 0.05 + 1e-9).all()
    assert res.objective == pytest.approx(res.diameter.max())
    json.dumps(res.to_dict(), allow_nan=False)  # strict JSON
    assert "feasible" in res.summary()


def test_locks_and_centre_units_are_respected(ctdp):
    inst = ctdp.generate(200, 4, 5)
    locked = np.full(200, -1)
    locked[[0, 199]] = [3, 0]  # opposite ends of the x-sorted points, swapped on purpose
    centre_units = np.array([-1, 100, -1, -1])
    prob = PartitionProblem(inst.xy, inst.measures, 4, 0.10, edges=inst.edges,
                            locked=locked, center_units=centre_units, contiguous=False)
    res = solve(prob)
    assert res.assignment[0] == 3 and res.assignment[199] == 0 and res.assignment[100] == 1


def test_groups_nest_units_in_their_territories():
    xy, edges = grid(6)
    ugroup = (xy[:, 0] >= 3).astype(int)  # left and right halves
    tgroup = np.array([0, 0, 1, 1])
    prob = PartitionProblem(xy, np.ones(36), 4, 0.0, edges=edges, unit_group=ugroup,
                            territory_group=tgroup, objective="diameter")
    res = solve(prob)
    assert res.feasible
    assert np.all(tgroup[res.assignment] == ugroup)


def test_per_territory_targets():
    xy, edges = grid(6)
    targets = np.array([[12.0], [24.0]])  # a half-time rep and a full-time rep
    prob = PartitionProblem(xy, np.ones(36), 2, 0.0, edges=edges, targets=targets)
    res = solve(prob)
    assert res.feasible
    assert sorted(np.bincount(res.assignment).tolist()) == [12, 24]
    assert np.bincount(res.assignment)[0] == 12


def test_infeasible_tolerance_returns_best_plan_flagged():
    # One heavy unit: no split of [10, 1, 1, 1] into two territories is within 1 % of 6.5.
    xy = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]])
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    prob = PartitionProblem(xy, np.array([10.0, 1, 1, 1]), 2, 0.01, edges=edges)
    res = solve(prob)
    assert not res.feasible
    kinds = {(v.kind, v.measure) for v in res.violations}
    assert ("balance", 0) in kinds
    # least violation: the heavy unit alone (10 vs 3)
    assert blocks(res.assignment) == {frozenset({0}), frozenset({1, 2, 3})}
    assert "INFEASIBLE" in res.summary()


def test_disconnected_group_reports_contiguity_violation():
    # Group 1 has two islands but one territory: contiguity cannot hold.
    xy = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0], [4, 0]])
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    ugroup = np.array([1, 0, 0, 0, 1])
    prob = PartitionProblem(xy, np.ones(5), 2, 1.0, edges=edges, unit_group=ugroup,
                            territory_group=np.array([0, 1]))
    res = solve(prob)
    assert not res.feasible
    assert any(v.kind == "contiguity" and v.territories == (1,) for v in res.violations)


# ---------------------------------------------------------------- realignment


def test_realignment_respects_budget_and_explains_moves():
    # Current plan: 10 units vs 6 on a 4x4 grid (columns 0-1 plus two of column 2 vs the rest).
    xy, edges = grid(4)
    current = np.where(xy[:, 0] <= 1, 0, 1)
    current[[8, 9]] = 0
    prob = PartitionProblem(xy, np.ones(16), 2, 0.0, edges=edges, current=current,
                            move_budget=2.0, objective="diameter")
    res = solve(prob)
    assert res.feasible
    assert len(res.moved) == 2 and set(res.moved.tolist()) == {8, 9}
    assert res.move_reasons == ("balance:0", "balance:0")


def test_realignment_budget_zero_keeps_current_plan():
    xy, edges = grid(4)
    current = np.where(xy[:, 0] <= 1, 0, 1)
    current[[8, 9]] = 0
    prob = PartitionProblem(xy, np.ones(16), 2, 0.0, edges=edges, current=current,
                            move_budget=0.0)
    res = solve(prob)
    np.testing.assert_array_equal(res.assignment, current)
    assert not res.feasible
    assert len(res.moved) == 0


def test_move_cost_keeps_units_home(ctdp):
    inst = ctdp.generate(200, 4, 8)
    first = solve(PartitionProblem(inst.xy, inst.measures, 4, 0.05, edges=inst.edges),
                  max_iterations=2000)
    # a new plan with a high move cost from that plan: nothing worth moving
    current = first.assignment
    prob = PartitionProblem(inst.xy, inst.measures, 4, 0.05, edges=inst.edges,
                            current=current, move_cost=np.full(200, 1e6))
    res = solve(prob, max_iterations=2000)
    assert res.feasible
    assert len(res.moved) == 0


def test_new_territory_takes_units_from_the_current_plan():
    # Two reps today, a third one hired: a third of the units move, each with a reason.
    xy, edges = grid(6)
    current = (xy[:, 0] >= 3).astype(int)
    prob = PartitionProblem(xy, np.ones(36), 3, 0.0, edges=edges, current=current,
                            objective="diameter")
    res = solve(prob)
    assert res.feasible
    assert np.bincount(res.assignment).tolist() == [12, 12, 12]
    assert len(res.moved) >= 12
    assert set(res.move_reasons) <= {"balance:0", "contiguity", "compactness"}


def test_lock_moves_are_reported_as_lock():
    xy, edges = grid(4)
    current = np.where(xy[:, 0] <= 1, 0, 1)
    locked = np.full(16, -1)
    locked[7] = 1  # unit (1, 3) must change territory
    prob = PartitionProblem(xy, np.ones(16), 2, 0.0, edges=edges, current=current,
                            locked=locked)
    res = solve(prob)
    assert res.feasible
    reasons = dict(zip(res.moved.tolist(), res.move_reasons, strict=True))
    assert reasons[7] == "lock"


# ---------------------------------------------------------------- run controls


@pytest.mark.parametrize("objective", ["sum_distance", "diameter"])
def test_same_seed_same_plan_on_iteration_budget(ctdp, objective):
    inst = ctdp.generate(300, 5, 21)
    prob = PartitionProblem(inst.xy, inst.measures, 5, 0.05, edges=inst.edges,
                            objective=objective)
    params = PartitionParams(max_starts_without_improvement=None, stall_iterations=400,
                             perturbations=3, bound=False)
    runs = [solve_partition(prob, time_limit_s=60, seed=3, max_iterations=3000, params=params)
            for _ in range(2)]
    assert runs[0].stop_reason == "iteration_limit"
    np.testing.assert_array_equal(runs[0].assignment, runs[1].assignment)
    assert runs[0].iterations == runs[1].iterations == 3000
    other = solve_partition(prob, time_limit_s=60, seed=4, max_iterations=3000, params=params)
    assert other.iterations == 3000


def test_time_limit_is_honoured(ctdp):
    inst = ctdp.generate(3000, 30, 2)
    prob = PartitionProblem(inst.xy, inst.measures, 30, 0.05, edges=inst.edges,
                            objective="diameter")
    params = PartitionParams(max_starts_without_improvement=None)
    res = solve_partition(prob, time_limit_s=1.5, params=params)
    assert res.stop_reason == "time_limit"
    assert res.runtime_s <= 1.5 * 1.1 + 0.5


def test_converges_on_a_tiny_problem():
    xy, edges = grid(3)
    prob = PartitionProblem(xy, np.ones(9), 3, 0.0, edges=edges, objective="diameter")
    res = solve_partition(prob, time_limit_s=30, params=FAST)
    assert res.stop_reason == "converged"
    assert res.feasible and res.objective == pytest.approx(2.0)


def test_single_territory_and_one_unit_per_territory():
    xy, edges = grid(3)
    one = solve(PartitionProblem(xy, np.ones(9), 1, 0.0, edges=edges))
    assert one.feasible and (one.assignment == 0).all()
    each = solve(PartitionProblem(xy, np.ones(9), 9, 0.0, edges=edges, objective="diameter"))
    assert each.feasible and len(np.unique(each.assignment)) == 9 and each.objective == 0


# ---------------------------------------------------------------- validation


def _base(**kw):
    xy, edges = grid(3)
    args = {"xy": xy, "measures": np.ones(9), "n_territories": 3, "edges": edges}
    args.update(kw)
    return args


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"xy": np.ones((9, 3))}, "xy"),
        ({"xy": np.full((9, 2), np.nan)}, "xy"),
        ({"measures": -np.ones(9)}, "measures"),
        ({"measures": np.ones(8)}, "measures"),
        ({"n_territories": 10}, "n_territories"),
        ({"n_territories": 0}, "n_territories"),
        ({"tolerance": -0.1}, "tolerance"),
        ({"edges": np.array([[0, 9]])}, "edges"),
        ({"edges": None}, "edges"),
        ({"objective": "area"}, "objective"),
        ({"targets": np.ones((2, 1))}, "targets"),
        ({"centers": np.ones((3, 3))}, "centers"),
        ({"center_units": np.array([0, 0, -1])}, "center_units"),
        ({"locked": np.full(9, 3)}, "locked"),
        ({"unit_group": np.zeros(9)}, "unit_group"),
        (
            {"unit_group": np.r_[np.zeros(8), 1], "territory_group": np.array([0, 0, 0])},
            "unit_group[8]",
        ),
        (
            {
                "unit_group": np.zeros(9),
                "territory_group": np.array([0, 0, 1]),
                "locked": np.r_[2, np.full(8, -1)],
            },
            "locked",
        ),
        (
            {"locked": np.r_[1, np.full(8, -1)], "center_units": np.array([0, -1, -1])},
            "locked[0]",
        ),
        ({"current": np.full(9, 5)}, "current"),
        ({"move_cost": np.ones(9)}, "current"),
        ({"current": np.zeros(9), "move_budget": -1.0}, "move_budget"),
        ({"current": np.zeros(9), "move_size": -np.ones(9)}, "move_size"),
        ({"measure_names": ("a", "b")}, "measure_names"),
    ],
)
def test_invalid_input_names_the_field(kw, field):
    with pytest.raises(SolverInputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        PartitionProblem(**_base(**kw))


def test_invalid_run_controls():
    prob = PartitionProblem(**_base())
    with pytest.raises(SolverInputError, match="time_limit_s"):
        solve_partition(prob, time_limit_s=0)
    with pytest.raises(SolverInputError, match="max_iterations"):
        solve_partition(prob, max_iterations=-1)
    with pytest.raises(SolverInputError, match="tabu_max"):
        PartitionParams(tabu_min=5, tabu_max=2)


def _chain_start() -> tuple[PartitionProblem, np.ndarray]:
    """Six territories in a row on a 60 x 2 strip, seeded at their middles; the start gives
    the first territory 4 columns too many and the last 4 too few, the four between exactly
    their target. Any single boundary move trades one violation for another of the same size.
    """
    cols, rows, p = 60, 2, 6
    xy = np.array([(x, y) for x in range(cols) for y in range(rows)], dtype=float)
    edges = [(x * rows + y, (x + 1) * rows + y) for x in range(cols - 1) for y in range(rows)]
    edges += [(x * rows, x * rows + 1) for x in range(cols)]
    bounds = np.array([0, 14, 24, 34, 44, 54, 60])  # widths 14, 10, 10, 10, 10, 6
    start = np.repeat(np.arange(p), np.diff(bounds) * rows)
    centre_cols = np.array([5, 15, 25, 35, 45, 55])
    problem = PartitionProblem(
        xy, np.ones(len(xy)), p, 0.05, edges=np.array(edges), contiguous=True,
        centers=np.column_stack([centre_cols, np.full(p, 0.5)]).astype(float),
        center_units=centre_cols * rows)
    return problem, start


def test_flow_repair_carries_a_surplus_across_territories_at_their_bounds():
    problem, start = _chain_start()
    params = PartitionParams(bound=False, perturbations=0, max_starts_without_improvement=1)
    # no search at all: the start's own flow repair moves the surplus along the row
    res = solve_partition(problem, time_limit_s=10, max_iterations=0, initial=start,
                          params=params)
    assert res.feasible, res.violations
    assert np.abs(res.deviation).max() <= 0.05 + 1e-9
    check_invariants(problem, res)
    off = solve_partition(problem, time_limit_s=10, max_iterations=0, initial=start,
                          params=PartitionParams(bound=False, flow_repairs=0, perturbations=0,
                                                 max_starts_without_improvement=1))
    assert not off.feasible
    assert np.array_equal(off.assignment, start)


def test_initial_plan_is_validated_and_used():
    problem, start = _chain_start()
    with pytest.raises(SolverInputError, match="initial"):
        solve_partition(problem, initial=start[:-1])
    with pytest.raises(SolverInputError, match="initial"):
        solve_partition(problem, initial=np.full(problem.n_units, problem.n_territories))
    balanced = np.repeat(np.arange(6), 20)
    res = solve_partition(problem, time_limit_s=5, max_iterations=0, initial=balanced,
                          params=PartitionParams(bound=False, perturbations=0,
                                                 max_starts_without_improvement=1))
    assert np.array_equal(res.assignment, balanced)
    assert res.feasible


def _two_paths() -> tuple[PartitionProblem, np.ndarray]:
    """A is the path 0..13 (home 0), B the path 14..19 (home 19); the only edge between them is
    10-14, and unit 10 holds A's tail 11..13: moving 10 alone would split A, moving it with
    the tail balances both exactly. Returns the problem and the start (A 14 units, B 6)."""
    xy = np.array([(float(x), 0.0) for x in range(14)] + [(10.0, 1.0 + y) for y in range(6)])
    edges = [(i, i + 1) for i in range(13)] + [(i, i + 1) for i in range(14, 19)] + [(10, 14)]
    problem = PartitionProblem(xy, np.ones(20), 2, 0.05, edges=np.array(edges), contiguous=True,
                               centers=xy[[0, 19]], center_units=np.array([0, 19]))
    return problem, np.array([0] * 14 + [1] * 6)


def test_flow_repair_moves_a_cut_off_branch_with_its_boundary_unit():
    problem, start = _two_paths()
    params = PartitionParams(bound=False, perturbations=0, max_starts_without_improvement=1)
    res = solve_partition(problem, time_limit_s=10, max_iterations=0, initial=start,
                          params=params)
    assert res.feasible, res.violations
    assert res.assignment.tolist() == [0] * 10 + [1] * 10
    check_invariants(problem, res)


def test_search_moves_a_cut_vertex_with_the_pieces_it_cuts_off():
    # The two paths of ``_two_paths``, flow repair off: the search itself must find that unit 10 goes to B
    # with A's tail 11..13 (every single move of 10 splits A; B's units cannot help A).
    problem, start = _two_paths()
    res = solve_partition(problem, time_limit_s=10, max_iterations=2_000, initial=start,
                          params=PartitionParams(bound=False, flow_repairs=0, perturbations=0,
                                                 max_starts_without_improvement=1))
    assert res.feasible, res.violations
    assert res.assignment.tolist() == [0] * 10 + [1] * 10
    check_invariants(problem, res)
