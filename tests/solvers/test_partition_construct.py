"""The construction's min-cost-flow allocation (one measure, bands per territory)."""

from __future__ import annotations

import itertools

import numpy as np

from solvers.partition.construct import (
    bisection_centers,
    flow_arcs,
    flow_assign,
    geometric_medians,
)


def _all_arcs(n: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(n), p), np.tile(np.arange(p), n)


def test_flow_assign_fills_exact_bands_on_a_line() -> None:
    # Ten unit-weight points on a line, centres at both ends; the bands ask 7 and 3 units, so
    # the cheapest plan gives the seven leftmost to the left centre.
    x = np.arange(10.0)
    u, k = _all_arcs(10, 2)
    cost = np.abs(x[u] - np.array([0.0, 9.0])[k])
    a = flow_assign(u, k, cost, np.ones(10), np.array([7.0, 3.0]), np.array([7.0, 3.0]),
                    np.full(10, -1), np.zeros(10, np.int64))
    assert a.tolist() == [0] * 7 + [1] * 3


def test_flow_assign_matches_brute_force_on_small_cases() -> None:
    # Integral weights and bands: the flow optimum is a whole-unit plan, which brute force
    # over all p^n plans must not beat.
    rng = np.random.default_rng(3)
    for _ in range(5):
        n, p = 8, 3
        xy = rng.random((n, 2)) * 10
        cxy = rng.random((p, 2)) * 10
        w = np.ones(n)
        lo, hi = np.array([2.0, 2.0, 2.0]), np.array([3.0, 3.0, 4.0])
        u, k = _all_arcs(n, p)
        d = np.hypot(*(xy[u] - cxy[k]).T)
        a = flow_assign(u, k, d, w, lo, hi, np.full(n, -1), np.zeros(n, np.int64))
        loads = np.bincount(a, minlength=p)
        assert ((loads >= lo) & (loads <= hi)).all()
        dm = d.reshape(n, p)
        got = dm[np.arange(n), a].sum()
        best = min(dm[np.arange(n), list(plan)].sum()
                   for plan in itertools.product(range(p), repeat=n)
                   if ((np.bincount(plan, minlength=p) >= lo)
                       & (np.bincount(plan, minlength=p) <= hi)).all())
        assert got <= best + 1e-9


def test_flow_reaches_a_centre_no_unit_has_among_its_nearest() -> None:
    # Twenty units around the left centre; the right centre is nobody's nearest, yet its band
    # asks for half the load: the arcs from each centre to its nearest units give it reach.
    rng = np.random.default_rng(0)
    xy = rng.normal(0.0, 1.0, (20, 2))
    cxy = np.array([[0.0, 0.0], [50.0, 0.0]])
    g = np.zeros(20, np.int64)
    u, k, d, _ = flow_arcs(xy, cxy, g, np.zeros(2, np.int64), 1, 3.0)
    assert (k == 1).sum() >= 10
    near = np.zeros(20, np.int64)
    a = flow_assign(u, k, d, np.ones(20), np.array([10.0, 10.0]), np.array([10.0, 10.0]),
                    np.full(20, -1), near)
    assert np.bincount(a, minlength=2).tolist() == [10, 10]
    # the ten that cost least to send right are the ones it takes
    extra = np.hypot(*(xy - cxy[1]).T) - np.hypot(*(xy - cxy[0]).T)
    assert set(np.flatnonzero(a == 1)) == set(np.argsort(extra)[:10])


def test_flow_assign_keeps_fixed_units_and_counts_them() -> None:
    x = np.arange(6.0)
    u, k = _all_arcs(6, 2)
    cost = np.abs(x[u] - np.array([0.0, 5.0])[k])
    fixed = np.array([1, -1, -1, -1, -1, -1])  # the leftmost unit is pinned to the right
    a = flow_assign(u, k, cost, np.ones(6), np.array([3.0, 3.0]), np.array([3.0, 3.0]), fixed,
                    np.zeros(6, np.int64))
    assert a[0] == 1
    assert a.tolist() == [1, 0, 0, 0, 1, 1]


def test_flow_assign_overloads_rather_than_fail_when_bands_cannot_hold() -> None:
    # Total load 10 but the bands allow at most 8: the flow still exists (elastic bands).
    u, k = _all_arcs(10, 2)
    cost = np.ones(20)
    a = flow_assign(u, k, cost, np.ones(10), np.array([3.0, 3.0]), np.array([4.0, 4.0]),
                    np.full(10, -1), np.zeros(10, np.int64))
    assert sorted(np.bincount(a, minlength=2).tolist()) in ([4, 6], [5, 5])


def test_geometric_median_of_a_cross() -> None:
    # Four points around (0, 0) and one far outlier: the median stays near the cross, the
    # mean would not.
    xy = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [0.0, 0.0], [100.0, 0.0]])
    c = geometric_medians(xy, np.zeros(6, np.int64), np.ones(6), np.array([[16.7, 0.0]]),
                          steps=50)
    assert abs(c[0, 0]) < 1.0 and abs(c[0, 1]) < 1e-6


def test_bisection_centres_follow_the_load_not_the_space() -> None:
    # A dense city holding 90 % of the load beside a wide empty-ish plain: 9 of 10 equal-load
    # cells lie in the city, whatever the split directions.
    rng = np.random.default_rng(1)
    city = rng.normal(0.0, 1.0, (900, 2))
    plain = rng.uniform(20.0, 120.0, (100, 2))
    xy = np.vstack([city, plain])
    for angle in (0.0, 0.7, 2.0):
        c = bisection_centers(xy, np.ones(1000), 10, angle)
        in_city = np.hypot(*c.T) < 5.0
        assert in_city.sum() == 9
        # each centre is one of the units
        assert all((np.abs(xy - ci).sum(1) < 1e-9).any() for ci in c)
