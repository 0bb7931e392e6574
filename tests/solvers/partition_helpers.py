"""Shared fixtures-as-functions for the partition tests: tiny instances and output invariants."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from solvers.partition import PartitionProblem, PartitionResult
from solvers.partition.metrics import (
    moved_units,
    relative_deviation,
    territory_contiguity,
    territory_totals,
)

ROOT = Path(__file__).resolve().parents[2]


def load_ctdp():
    """The CTDP generator module of ``benchmarks/ctdp.py`` (benchmarks are not a package)."""
    spec = importlib.util.spec_from_file_location("ctdp_bench", ROOT / "benchmarks" / "ctdp.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def grid(side: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of a ``side x side`` unit grid (index = x * side + y) and its rook edges."""
    xy = np.array([(x, y) for x in range(side) for y in range(side)], dtype=float)
    edges = []
    for x in range(side):
        for y in range(side):
            i = x * side + y
            if x + 1 < side:
                edges.append((i, i + side))
            if y + 1 < side:
                edges.append((i, i + 1))
    return xy, np.array(edges)


def blocks(assignment: np.ndarray) -> set[frozenset[int]]:
    """The partition as a set of unit sets (labels do not matter)."""
    return {frozenset(np.flatnonzero(assignment == k).tolist()) for k in np.unique(assignment)}


def check_invariants(problem: PartitionProblem, res: PartitionResult) -> None:
    """What every output must satisfy, feasible or not."""
    n, p = problem.n_units, problem.n_territories
    a = res.assignment
    assert a.shape == (n,)
    assert a.min() >= 0 and a.max() < p  # every unit in exactly one territory
    totals = territory_totals(a, problem.measures, p)
    np.testing.assert_allclose(res.totals, totals)
    np.testing.assert_allclose(res.deviation, relative_deviation(totals, problem.targets))
    edges = problem.edges if problem.edges is not None else np.zeros((0, 2), np.int64)
    if problem.edges is not None:
        np.testing.assert_array_equal(res.contiguous, territory_contiguity(a, p, edges))
    fixed = problem.fixed_territory()
    assert np.all(a[fixed >= 0] == fixed[fixed >= 0])  # locks and centre units
    if problem.unit_group is not None:
        assert np.all(problem.territory_group[a] == problem.unit_group)
    if problem.current is not None:
        np.testing.assert_array_equal(res.moved, moved_units(a, problem.current))
        assert len(res.move_reasons) == len(res.moved)
    if res.feasible:
        assert not res.violations
        tol = problem.tolerance
        excess = np.abs(totals - problem.targets) - tol * problem.targets
        assert np.all(excess <= 1e-9 * np.maximum(problem.targets, 1.0))
        if problem.contiguous:
            assert res.contiguous.all()
        if problem.move_budget is not None:
            size = problem.move_size if problem.move_size is not None else np.ones(n)
            assert size[res.moved].sum() <= problem.move_budget + 1e-9
    else:
        assert res.violations
    assert res.stop_reason in ("time_limit", "iteration_limit", "converged")
    if res.lower_bound is not None and res.feasible:
        assert res.lower_bound <= res.objective * (1 + 1e-6) + 1e-9
