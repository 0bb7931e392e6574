"""Scores of a partition, shared by the engine, the benchmarks and the tests.

Plain functions of an assignment (any plan: the solver's or a hand-drawn one), so what the
search enforces and what is reported cannot drift apart.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from solvers._unique import unique_int

__all__ = [
    "balance_excess",
    "moved_units",
    "relative_deviation",
    "territory_contiguity",
    "territory_diameters",
    "territory_sum_distance",
    "territory_totals",
    "weighted_medoids",
]


def territory_totals(assignment: np.ndarray, measures: np.ndarray, n_territories: int) -> np.ndarray:
    """(p, m) totals ``w_a(S_k)``; units with a negative assignment are left out."""
    measures = np.asarray(measures, dtype=np.float64).reshape(len(assignment), -1)
    ok = assignment >= 0
    out = np.zeros((n_territories, measures.shape[1]))
    np.add.at(out, assignment[ok], measures[ok])
    return out


def relative_deviation(totals: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(p, m) signed relative deviation ``(w_a(S_k) - t_ka) / t_ka``.

    A zero target gives 0 for a zero total and ``inf`` otherwise.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = (totals - targets) / targets
    zero = targets == 0
    dev[zero] = np.where(totals[zero] == 0, 0.0, np.inf)
    return dev


def balance_excess(totals: np.ndarray, targets: np.ndarray, tolerance: np.ndarray) -> np.ndarray:
    """(p, m) relative violation ``max(0, |w_a(S_k) - t_ka| - tol_a t_ka) / t_ka`` (0 = within).

    A zero target counts the excess in absolute terms (any positive total violates it).
    """
    excess = np.maximum(0.0, np.abs(totals - targets) - tolerance * targets)
    scale = np.where(targets > 0, targets, 1.0)
    return excess / scale


@nb.njit(cache=True)
def _cross(o0: float, o1: float, a0: float, a1: float, b0: float, b1: float) -> float:
    return (a0 - o0) * (b1 - o1) - (a1 - o1) * (b0 - o0)


@nb.njit(cache=True)
def _diameters_sorted(xy: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Diameter of each run of ``order`` (sorted by x then y) via its convex hull."""
    p = len(starts) - 1
    out = np.zeros(p)
    hull = np.empty(len(order) + 1, dtype=np.int64)
    for k in range(p):
        s, e = starts[k], starts[k + 1]
        if e - s < 2:
            continue
        # Andrew's monotone chain; the diameter is attained between two hull vertices.
        h = 0
        for t in range(s, e):
            i = order[t]
            while h >= 2 and _cross(
                xy[hull[h - 2], 0], xy[hull[h - 2], 1], xy[hull[h - 1], 0], xy[hull[h - 1], 1],
                xy[i, 0], xy[i, 1],
            ) <= 0:
                h -= 1
            hull[h] = i
            h += 1
        lower = h + 1
        for t in range(e - 2, s - 1, -1):
            i = order[t]
            while h >= lower and _cross(
                xy[hull[h - 2], 0], xy[hull[h - 2], 1], xy[hull[h - 1], 0], xy[hull[h - 1], 1],
                xy[i, 0], xy[i, 1],
            ) <= 0:
                h -= 1
            hull[h] = i
            h += 1
        h -= 1  # the last vertex repeats the first
        best = 0.0
        for a in range(h):
            ia = hull[a]
            for b in range(a + 1, h):
                ib = hull[b]
                d = (xy[ia, 0] - xy[ib, 0]) ** 2 + (xy[ia, 1] - xy[ib, 1]) ** 2
                if d > best:
                    best = d
        out[k] = np.sqrt(best)
    return out


def territory_diameters(xy: np.ndarray, assignment: np.ndarray, n_territories: int) -> np.ndarray:
    """(p,) diameter ``max_{i, j in S_k} ||x_i - x_j||`` of each territory (0 if < 2 units).

    Exact, O(n log n): the farthest pair of a set is a pair of its convex-hull vertices.
    """
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    ok = np.flatnonzero(assignment >= 0)
    order = ok[np.lexsort((xy[ok, 1], xy[ok, 0], assignment[ok]))]
    starts = np.searchsorted(assignment[order], np.arange(n_territories + 1))
    return _diameters_sorted(xy, order.astype(np.int64), starts.astype(np.int64))


def territory_contiguity(
    assignment: np.ndarray, n_territories: int, edges: np.ndarray
) -> np.ndarray:
    """(p,) True where the territory's units induce a connected subgraph (False when empty)."""
    n = len(assignment)
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    inside = (assignment[edges[:, 0]] == assignment[edges[:, 1]]) & (assignment[edges[:, 0]] >= 0)
    e = edges[inside]
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    ok = assignment >= 0
    pieces = np.zeros(n_territories, dtype=np.int64)
    # One int64 key per (territory, component): a 1-D unique, not the slow ``axis=0`` one.
    pairs = unique_int(assignment[ok].astype(np.int64) * n + label[ok])
    np.add.at(pieces, pairs // n, 1)
    return pieces == 1


@nb.njit(cache=True)
def _medoids_sorted(
    xy: np.ndarray, w: np.ndarray, order: np.ndarray, starts: np.ndarray, max_exact: int
) -> np.ndarray:
    p = len(starts) - 1
    out = np.full(p, -1, dtype=np.int64)
    for k in range(p):
        s, e = starts[k], starts[k + 1]
        if e == s:
            continue
        size = e - s
        # Candidates: all units, or for a large territory the units nearest its weighted mean
        # (the medoid lies near the Weber point, which lies near the mean for compact sets).
        n_cand = size if size <= max_exact else max_exact
        cand = order[s:e].copy()
        if n_cand < size:
            mx = 0.0
            my = 0.0
            sw = 0.0
            for t in range(s, e):
                i = order[t]
                mx += w[i] * xy[i, 0]
                my += w[i] * xy[i, 1]
                sw += w[i]
            if sw <= 0:
                sw = 1.0
            mx /= sw
            my /= sw
            d = np.empty(size)
            for t in range(size):
                i = cand[t]
                d[t] = (xy[i, 0] - mx) ** 2 + (xy[i, 1] - my) ** 2
            cand = cand[np.argsort(d)[:n_cand]]
        best = np.inf
        for c in range(n_cand):
            j = cand[c]
            tot = 0.0
            for t in range(s, e):
                i = order[t]
                tot += w[i] * np.sqrt((xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2)
                if tot >= best:
                    break
            if tot < best:
                best = tot
                out[k] = j
    return out


def weighted_medoids(
    xy: np.ndarray,
    weights: np.ndarray,
    assignment: np.ndarray,
    n_territories: int,
    max_exact: int = 1500,
) -> np.ndarray:
    """(p,) weighted medoid unit of each territory (-1 when empty).

    The medoid of ``S`` is ``argmin_{j in S} sum_{i in S} w_i ||x_i - x_j||``. Exact for
    territories up to ``max_exact`` units; larger ones search the ``max_exact`` units nearest the
    weighted mean (O(max_exact |S|) instead of O(|S|^2)).
    """
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    ok = np.flatnonzero(assignment >= 0)
    order = ok[np.argsort(assignment[ok], kind="stable")]
    starts = np.searchsorted(assignment[order], np.arange(n_territories + 1))
    return _medoids_sorted(
        xy, np.asarray(weights, np.float64), order.astype(np.int64), starts.astype(np.int64),
        max_exact,
    )


def territory_sum_distance(
    xy: np.ndarray, weights: np.ndarray, assignment: np.ndarray, centers: np.ndarray
) -> np.ndarray:
    """(p,) ``sum_{i in S_k} weights[i] * ||x_i - centers[k]||``."""
    ok = assignment >= 0
    d = np.hypot(*(xy[ok] - centers[assignment[ok]]).T) * weights[ok]
    return np.bincount(assignment[ok], weights=d, minlength=len(centers))


def moved_units(assignment: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Indices of units with a current territory (>= 0) that the assignment changes."""
    return np.flatnonzero((current >= 0) & (assignment != current))
