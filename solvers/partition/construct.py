"""Construction of a start plan: seeds, balanced location-allocation, contiguity repair.

1. Centres: the fixed ones, else centre units, else k-means++ (D^2 sampling) inside each group.
2. Allocation with balancing prices: unit i joins
   ``argmin_{k in K_i} cost(i, k) + sum_a lam_ka w_ia / t_ka`` over its K nearest centres
   ``K_i`` of its group, where ``lam`` follows a subgradient of the relative loads
   ``w_a(S_k) / t_ka - 1`` (the Lagrangian of the balance rows of the balanced assignment LP).
   ``cost = ||x_i - c_k||^2`` for the diameter objective (power-diagram cells: convex, round) and
   ``weight_i ||x_i - c_k||`` for sum-distance.
3. Free centres move to the mean of their units; repeat (location-allocation).
4. Every territory keeps its largest connected piece (or the piece with its pinned units); the
   other pieces join the adjacent territory they share most edges with.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from scipy.spatial import cKDTree

__all__ = ["build_start", "fill_empty", "make_contiguous", "repair_contiguity"]


@nb.njit(cache=True)
def _d2_sampling(xy: np.ndarray, taken: np.ndarray, k: int, draws: np.ndarray) -> np.ndarray:
    """k-means++ seeding: ``k`` unit indices, each drawn with probability proportional to its
    squared distance to the nearest centre so far (``taken`` (t, 2) centres already placed).

    ``draws`` holds ``k`` uniforms in [0, 1) (from the caller's generator). O(n k).
    """
    n = len(xy)
    d2 = np.full(n, np.inf)
    for c in range(len(taken)):
        for i in range(n):
            d = (xy[i, 0] - taken[c, 0]) ** 2 + (xy[i, 1] - taken[c, 1]) ** 2
            if d < d2[i]:
                d2[i] = d
    chosen = np.empty(k, dtype=np.int64)
    for c in range(k):
        total = 0.0
        for i in range(n):
            if d2[i] < np.inf:
                total += d2[i]
        if len(taken) + c == 0 or total == 0.0:
            # first centre, or every unit already sits on a centre: uniform
            idx = min(int(draws[c] * n), n - 1)
        else:
            target = draws[c] * total
            acc = 0.0
            idx = n - 1
            for i in range(n):
                acc += d2[i]
                if acc > target:
                    idx = i
                    break
        chosen[c] = idx
        for i in range(n):
            d = (xy[i, 0] - xy[idx, 0]) ** 2 + (xy[i, 1] - xy[idx, 1]) ** 2
            if d < d2[i]:
                d2[i] = d
    return chosen


def initial_centers(
    xy: np.ndarray,
    ugroup: np.ndarray,
    tgroup: np.ndarray,
    center_units: np.ndarray,
    rng: np.random.Generator,
    spread: bool = True,
) -> np.ndarray:
    """(p, 2) start centres: centre units where given, k-means++ in each group for the rest
    (``spread``; else distinct units drawn uniformly, O(n))."""
    p = len(tgroup)
    cxy = np.zeros((p, 2))
    for grp in np.unique(tgroup):
        terr = np.flatnonzero(tgroup == grp)
        units = np.flatnonzero(ugroup == grp)
        pinned = terr[center_units[terr] >= 0]
        cxy[pinned] = xy[center_units[pinned]]
        free = terr[center_units[terr] < 0]
        if len(free) and spread:
            seeds = _d2_sampling(
                np.ascontiguousarray(xy[units]), np.ascontiguousarray(xy[center_units[pinned]]),
                len(free), rng.random(len(free)),
            )
            cxy[free] = xy[units[seeds]]
        elif len(free):
            cxy[free] = xy[rng.choice(units, size=len(free), replace=len(free) > len(units))]
    return cxy


def candidate_arcs(
    xy: np.ndarray, cxy: np.ndarray, ugroup: np.ndarray, tgroup: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """K nearest centres of each unit's group: ``(cand (n, K) territory or -1, dist (n, K))``."""
    n = len(xy)
    k = min(k, len(cxy))
    cand = np.full((n, k), -1, dtype=np.int64)
    dist = np.full((n, k), np.inf)
    for grp in np.unique(ugroup):
        units = np.flatnonzero(ugroup == grp)
        terr = np.flatnonzero(tgroup == grp)
        kk = min(k, len(terr))
        d, j = cKDTree(cxy[terr]).query(xy[units], k=kk)
        cand[units, :kk] = terr[j.reshape(len(units), kk)]
        dist[units, :kk] = d.reshape(len(units), kk)
    return cand, dist


@nb.njit(cache=True)
def _price_assign(
    cost: np.ndarray,
    cand: np.ndarray,
    wn: np.ndarray,
    tn: np.ndarray,
    fixed: np.ndarray,
    lam: np.ndarray,
    iters: int,
    step0: float,
) -> np.ndarray:
    """Assignment minimising cost plus prices; prices follow the load subgradient.

    Measures and targets come normalised by the mean target of each measure (``wn``, ``tn``),
    so prices of all measures share one scale. Returns the assignment with the smallest largest
    relative deviation seen; ``lam`` is updated in place (warm start of the next round).
    """
    n, kc = cand.shape
    p = tn.shape[0]
    m = wn.shape[1]
    best = np.zeros(n, dtype=np.int64)
    best_dev = np.inf
    a = np.zeros(n, dtype=np.int64)
    load = np.zeros((p, m))
    for it in range(max(iters, 1)):
        load[:, :] = 0.0
        for i in range(n):
            if fixed[i] >= 0:
                k = fixed[i]
            else:
                k = -1
                bc = np.inf
                for c in range(kc):
                    kk = cand[i, c]
                    if kk < 0:
                        break
                    v = cost[i, c]
                    for q in range(m):
                        v += lam[kk, q] * wn[i, q]
                    if v < bc:
                        bc = v
                        k = kk
            a[i] = k
            for q in range(m):
                load[k, q] += wn[i, q]
        dev = 0.0
        for k in range(p):
            for q in range(m):
                g = abs(load[k, q] / tn[k, q] - 1.0)
                if g > dev:
                    dev = g
        if dev < best_dev:
            best_dev = dev
            best[:] = a
        step = step0 / np.sqrt(it + 1.0)
        for k in range(p):
            for q in range(m):
                lam[k, q] += step * (load[k, q] / tn[k, q] - 1.0)
    return best


@nb.njit(cache=True)
def repair_contiguity(
    a: np.ndarray,
    p: int,
    indptr: np.ndarray,
    indices: np.ndarray,
    fixed: np.ndarray,
    ugroup: np.ndarray,
    tgroup: np.ndarray,
) -> None:
    """Reassign detached pieces of territories in place (see the module docstring, step 4).

    A piece holding a pinned unit that belongs elsewhere stays (the plan then reports the
    contiguity violation).
    """
    n = len(a)
    comp = np.empty(n, dtype=np.int64)
    queue = np.empty(n, dtype=np.int64)
    for _ in range(50):
        comp[:] = -1
        n_comp = 0
        comp_size = np.zeros(n, dtype=np.int64)
        comp_pinned = np.zeros(n, dtype=np.int64)
        comp_terr = np.zeros(n, dtype=np.int64)
        for s in range(n):
            if comp[s] >= 0:
                continue
            k = a[s]
            comp[s] = n_comp
            qh = 0
            qt = 1
            queue[0] = s
            while qh < qt:
                u = queue[qh]
                qh += 1
                comp_size[n_comp] += 1
                if fixed[u] == k:
                    comp_pinned[n_comp] += 1
                for t in range(indptr[u], indptr[u + 1]):
                    v = indices[t]
                    if comp[v] < 0 and a[v] == k:
                        comp[v] = n_comp
                        queue[qt] = v
                        qt += 1
            comp_terr[n_comp] = k
            n_comp += 1
        keep = np.full(p, -1, dtype=np.int64)
        for c in range(n_comp):
            k = comp_terr[c]
            b = keep[k]
            if b < 0 or (comp_pinned[c], comp_size[c]) > (comp_pinned[b], comp_size[b]):
                keep[k] = c
        # units grouped by piece (counting sort)
        start = np.zeros(n_comp + 1, dtype=np.int64)
        for u in range(n):
            start[comp[u] + 1] += 1
        for c in range(n_comp):
            start[c + 1] += start[c]
        fill = start[:-1].copy()
        members = np.empty(n, dtype=np.int64)
        for u in range(n):
            members[fill[comp[u]]] = u
            fill[comp[u]] += 1
        changed = False
        votes = np.zeros(p, dtype=np.int64)
        for c in range(n_comp):
            k = comp_terr[c]
            if keep[k] == c or comp_pinned[c] > 0:
                continue
            # the adjacent territory sharing most edges with the piece
            best_k = -1
            for q in range(start[c], start[c + 1]):
                u = members[q]
                for t in range(indptr[u], indptr[u + 1]):
                    kv = a[indices[t]]
                    if kv != k and tgroup[kv] == ugroup[u]:
                        votes[kv] += 1
                        if best_k < 0 or votes[kv] > votes[best_k]:
                            best_k = kv
            for q in range(start[c], start[c + 1]):
                u = members[q]
                for t in range(indptr[u], indptr[u + 1]):
                    votes[a[indices[t]]] = 0
            if best_k >= 0:
                for q in range(start[c], start[c + 1]):
                    a[members[q]] = best_k
                changed = True
        if not changed:
            return


@nb.njit(cache=True)
def fill_empty(a: np.ndarray, p: int, xy: np.ndarray, cxy: np.ndarray, fixed: np.ndarray,
               ugroup: np.ndarray, tgroup: np.ndarray) -> None:
    """Give each empty territory the nearest movable unit of its group from a larger one."""
    cnt = np.zeros(p, dtype=np.int64)
    for i in range(len(a)):
        cnt[a[i]] += 1
    for k in range(p):
        if cnt[k] > 0:
            continue
        best = -1
        bd = np.inf
        for i in range(len(a)):
            if fixed[i] >= 0 or ugroup[i] != tgroup[k] or cnt[a[i]] < 2:
                continue
            d = (xy[i, 0] - cxy[k, 0]) ** 2 + (xy[i, 1] - cxy[k, 1]) ** 2
            if d < bd:
                bd = d
                best = i
        if best >= 0:
            cnt[a[best]] -= 1
            a[best] = k
            cnt[k] += 1


def build_start(
    xy: np.ndarray,
    measures: np.ndarray,
    targets: np.ndarray,
    fixed: np.ndarray,
    ugroup: np.ndarray,
    tgroup: np.ndarray,
    center_units: np.ndarray,
    centers: np.ndarray | None,
    weights: np.ndarray,
    squared: bool,
    indptr: np.ndarray,
    indices: np.ndarray,
    contiguous: bool,
    rng: np.random.Generator,
    n_candidates: int,
    rounds: int,
    price_iterations: int,
    deadline: float = np.inf,
) -> tuple[np.ndarray, np.ndarray]:
    """A start plan and its centres ``(assignment (n,), centres (p, 2))``.

    ``squared`` selects the squared-distance allocation cost (diameter objective). Past
    ``deadline`` (``time.perf_counter()`` seconds) the location-allocation stops after its
    current round, and seeding is uniform when k-means++ (O(n p)) would not fit before it.
    """
    p = len(tgroup)
    free = centers is None
    if free:
        spread = len(xy) * p * 5e-9 < deadline - time.perf_counter()
        cxy = initial_centers(xy, ugroup, tgroup, center_units, rng, spread)
    else:
        cxy = centers.copy()
    scale = np.where(targets > 0, targets, 1.0)
    mean_t = scale.mean(axis=0)
    wn, tn = measures / mean_t, scale / mean_t
    lam = np.zeros_like(targets)
    a = np.zeros(len(xy), dtype=np.int64)
    units_per_terr = len(xy) / p
    for _ in range(rounds if free else 1):
        cand, dist = candidate_arcs(xy, cxy, ugroup, tgroup, n_candidates)
        cost = dist**2 if squared else dist * weights[:, None]
        finite = np.isfinite(cost[:, 1]) if cost.shape[1] > 1 else np.zeros(len(xy), bool)
        gap = np.median(cost[finite, 1] - cost[finite, 0]) if finite.any() else 1.0
        step0 = max(gap, 1e-12) * units_per_terr
        a = _price_assign(cost, cand, wn, tn, fixed, lam, price_iterations, step0)
        if free:
            counts = np.bincount(a, minlength=p)
            sx = np.bincount(a, weights=xy[:, 0], minlength=p)
            sy = np.bincount(a, weights=xy[:, 1], minlength=p)
            moved = (counts > 0) & (center_units < 0)
            cxy[moved, 0] = sx[moved] / counts[moved]
            cxy[moved, 1] = sy[moved] / counts[moved]
        if time.perf_counter() > deadline:
            break
    if contiguous:
        make_contiguous(a, xy, cxy, indptr, indices, fixed, ugroup, tgroup)
    else:
        fill_empty(a, p, xy, cxy, fixed, ugroup, tgroup)
    return a, cxy


def make_contiguous(
    a: np.ndarray,
    xy: np.ndarray,
    cxy: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    fixed: np.ndarray,
    ugroup: np.ndarray,
    tgroup: np.ndarray,
) -> None:
    """Reattach detached pieces and fill empty territories, in place (step 4)."""
    p = len(tgroup)
    repair_contiguity(a, p, indptr, indices, fixed, ugroup, tgroup)
    fill_empty(a, p, xy, cxy, fixed, ugroup, tgroup)
    # filling may have split a donor; repair never empties a territory
    repair_contiguity(a, p, indptr, indices, fixed, ugroup, tgroup)
