"""Construction of a start plan: seeds, balanced location-allocation, contiguity repair.

1. Centres: the fixed ones, else centre units, else k-means++ (D^2 sampling) inside each group
   (with one measure: the centres of equal-load cells from recursive bisection).
2. Allocation. With one measure, the exact transportation problem within the bands
   ``[t_k (1 - tol), t_k (1 + tol)]``: a min-cost flow (OR-Tools) from units to centres priced
   by distance (squared for the diameter objective) per unit of measure, so the cells are
   additively weighted Voronoi (power) cells; split units rounded to one territory. Otherwise
   (or when a flow would not end before the deadline) allocation with balancing prices: unit i
   joins
   ``argmin_{k in K_i} cost(i, k) + sum_a lam_ka w_ia / t_ka`` over its K nearest centres
   ``K_i`` of its group, where ``lam`` follows a subgradient of the relative loads
   ``w_a(S_k) / t_ka - 1`` (the Lagrangian of the balance rows of the balanced assignment LP).
   ``cost = ||x_i - c_k||^2`` for the diameter objective (power-diagram cells: convex, round) and
   ``weight_i ||x_i - c_k||`` for sum-distance.
3. Free centres move to the mean of their units (to their geometric median after a flow for
   sum-distance); repeat (location-allocation).
4. Every territory keeps its largest connected piece (or the piece with its pinned units); the
   other pieces join the adjacent territory they share most edges with.
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from scipy.spatial import cKDTree

__all__ = ["build_start", "fill_empty", "flow_arcs", "flow_assign", "make_contiguous", "repair_contiguity"]

# Centres a unit may ship to in the flow allocation: a remote cluster heavier than its few
# nearest centres can carry must reach further (the bands are hard up to the elastic penalty).
FLOW_CANDIDATES = 24
# ... but no more than FLOW_MAX_ARCS arcs in all (memory: a million units keep n_candidates).
FLOW_MAX_ARCS = 8_000_000
# Seconds per arc of one flow allocation, an upper estimate (measured 1.8 us at 6 x 10^5 arcs,
# 7.8 us at 8 x 10^6): no flow starts that would end past the deadline.
FLOW_SEC_PER_ARC = 8e-6
# Each centre also reaches its FLOW_REACH x (units / territories) nearest units (a centre in a
# sparse corner is among few units' nearest), and the flow takes FLOW_ROUNDS_FACTOR times the
# location-allocation rounds of the priced assignment (exact balanced allocations move the
# centres less per round); it stops earlier once a round gains under 0.2 %.
FLOW_REACH = 3.0
FLOW_ROUNDS_FACTOR = 4


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


def bisection_centers(xy: np.ndarray, w: np.ndarray, p: int, angle: float) -> np.ndarray:
    """(p, 2) centres of ``p`` cells of equal load: recursive bisection of the units at the
    load quantile (the part with ``p1`` centres takes ``p1 / p`` of the load) across the longer
    side, in axes turned by ``angle`` (a start's own split directions); each centre is the
    unit nearest its cell's load-weighted mean."""
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    uv = xy @ rot
    w = np.maximum(np.asarray(w, dtype=float), 0.0) + 1e-12
    out = np.empty((p, 2))
    stack = [(np.arange(len(xy)), p, 0)]
    while stack:
        idx, q, first = stack.pop()
        if q == 1 or len(idx) <= 1:
            for j in range(q):
                c = (uv[idx] * w[idx, None]).sum(0) / w[idx].sum()
                near = idx[np.argmin(((uv[idx] - c) ** 2).sum(1))]
                out[first + j] = xy[near]
            continue
        span = uv[idx].max(0) - uv[idx].min(0)
        order = idx[np.argsort(uv[idx, int(np.argmax(span))], kind="stable")]
        q1 = q // 2
        cum = np.cumsum(w[order])
        cut = int(np.searchsorted(cum, cum[-1] * q1 / q))
        cut = min(max(cut, 1), len(order) - 1)
        stack.append((order[:cut], q1, first))
        stack.append((order[cut:], q - q1, first + q1))
    return out


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


def flow_arcs(xy: np.ndarray, cxy: np.ndarray, ugroup: np.ndarray, tgroup: np.ndarray,
              k: int, reach: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate arcs ``(unit, territory, distance)`` of the flow allocation: each unit's ``k``
    nearest centres of its group, and each centre's ``reach`` x (units / territories) nearest
    units of its group, so that no centre is cut off from the load it needs (a centre in a
    sparse corner is among few units' nearest); last, each unit's nearest centre."""
    cand, dist = candidate_arcs(xy, cxy, ugroup, tgroup, k)
    ok = cand >= 0
    us = [np.repeat(np.arange(len(xy)), cand.shape[1])[ok.ravel()]]
    ks = [cand[ok]]
    ds = [dist[ok]]
    for grp in np.unique(ugroup):
        units = np.flatnonzero(ugroup == grp)
        terr = np.flatnonzero(tgroup == grp)
        if len(terr) == 0 or len(units) == 0:
            continue
        ll = int(min(len(units), max(1, np.ceil(reach * len(units) / len(terr)))))
        d, j = cKDTree(xy[units]).query(cxy[terr], k=ll)
        us.append(units[j.reshape(len(terr), ll)].ravel())
        ks.append(np.repeat(terr, ll))
        ds.append(d.reshape(len(terr), ll).ravel())
    u, kk, d = np.concatenate(us), np.concatenate(ks), np.concatenate(ds)
    _, first = np.unique(u * len(cxy) + kk, return_index=True)
    return u[first], kk[first], d[first], cand[:, 0]


def flow_assign(
    arc_u: np.ndarray,
    arc_k: np.ndarray,
    arc_cost: np.ndarray,
    w: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fixed: np.ndarray,
    nearest: np.ndarray,
) -> np.ndarray | None:
    """The cheapest allocation whose loads of one measure lie in ``[lo, hi]`` per territory:
    a transportation problem solved as a min-cost flow (OR-Tools), then each unit to one of
    the territories that got it.

    Units ship their measure ``w`` along their arcs at ``arc_cost / w`` per
    unit of measure (so a whole unit costs ``arc_cost``). The bands are elastic (load outside
    a band costs far more than any arc) so the flow always exists. A basic optimal flow splits
    about one unit per territory; a split unit can be a tenth of a territory, so split units
    are placed last, heaviest first, each where it breaks its band least. Fixed units stay put
    and count against their territory's band; units of measure 0 (or without an arc) take
    ``nearest``. Returns None when OR-Tools reports no optimum.
    """
    from ortools.graph.python import min_cost_flow

    p = len(lo)
    a = np.where(fixed >= 0, fixed, nearest).astype(np.int64)
    base = np.bincount(a[fixed >= 0], weights=w[fixed >= 0], minlength=p)
    use = np.flatnonzero((fixed[arc_u] < 0) & (w[arc_u] > 0))
    use = use[np.argsort(arc_u[use], kind="stable")]  # a unit's arcs consecutive
    arc_u, arc_k, arc_cost = arc_u[use], arc_k[use], arc_cost[use]
    if len(arc_u) == 0:
        return a
    scale = 1e4 * p / max(float(hi.sum()), 1e-12)  # about 10^4 flow units per territory
    free, node = np.unique(arc_u, return_inverse=True)
    m = len(free)
    supply = np.maximum(np.rint(w[free] * scale), 1).astype(np.int64)
    lo_i = np.maximum(np.ceil((lo - base) * scale), 0).astype(np.int64)
    hi_i = np.maximum(np.floor((hi - base) * scale), lo_i).astype(np.int64)
    unit_cost = arc_cost / (w[arc_u] * scale)
    top = max(float(np.percentile(unit_cost, 99.9)), 1e-300)
    cost_i = np.rint(np.minimum(unit_cost / top, 10.0) * 1e5).astype(np.int64)
    big = np.int64(10**7)  # per unit of load outside a band: above any arc
    # nodes: units 0..m-1, territories m..m+p-1, sink m+p, deficit source m+p+1
    ks = np.arange(p)
    sink, deficit = m + p, m + p + 1
    total = int(supply.sum())
    slack = int(lo_i.sum())
    tails = np.concatenate([node, m + ks, m + ks, np.full(p, deficit), [deficit]])
    heads = np.concatenate([m + arc_k, np.full(p, sink), np.full(p, sink), m + ks, [sink]])
    caps = np.concatenate([supply[node], hi_i - lo_i, np.full(p, total), lo_i, [slack]])
    costs = np.concatenate([cost_i, np.zeros(p, np.int64), np.full(p, big), np.full(p, big),
                            [0]])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32),
                                             caps.astype(np.int64), costs.astype(np.int64))
    supplies = np.concatenate([supply, -lo_i, [-total], [slack]]).astype(np.int64)
    mcf.set_nodes_supplies(np.arange(m + p + 2, dtype=np.int32), supplies)
    if mcf.solve() != mcf.OPTIMAL:
        return None
    flow = mcf.flows(np.arange(len(node), dtype=np.int64))
    # each unit to its largest share
    order = np.lexsort((-flow, node))
    firsts = order[np.r_[0, np.flatnonzero(np.diff(node[order])) + 1]]
    a[free] = arc_k[firsts]
    n_pos = np.bincount(node, weights=(flow > 0).astype(float), minlength=m)
    split = np.flatnonzero(n_pos > 1)
    if len(split):
        load = base + np.bincount(a[free], weights=w[free], minlength=p)
        load -= np.bincount(a[free[split]], weights=w[free[split]], minlength=p)
        pos = np.flatnonzero(flow > 0)
        bounds = np.searchsorted(node[pos], np.arange(m + 1))
        for r in split[np.argsort(-w[free[split]], kind="stable")]:
            arcs = pos[bounds[r]:bounds[r + 1]]
            ks_r = arc_k[arcs]
            wr = w[free[r]]
            after = load[ks_r] + wr
            broke = (np.maximum(after - hi[ks_r], 0) + np.maximum(lo[ks_r] - after, 0)
                     - np.maximum(load[ks_r] - hi[ks_r], 0) - np.maximum(lo[ks_r] - load[ks_r], 0))
            k = ks_r[np.lexsort((-flow[arcs], broke))[0]]
            a[free[r]] = k
            load[k] += wr
    return a


def geometric_medians(xy: np.ndarray, a: np.ndarray, weights: np.ndarray, cxy: np.ndarray,
                      steps: int = 5) -> np.ndarray:
    """Weiszfeld steps from ``cxy`` towards each territory's weighted geometric median (the
    centre that minimises the sum of weighted distances); empty territories keep theirs."""
    p = len(cxy)
    c = cxy.copy()
    for _ in range(steps):
        d = np.maximum(np.hypot(*(xy - c[a]).T), 1e-9)
        q = weights / d
        s = np.bincount(a, weights=q, minlength=p)
        has = s > 0
        for dim in range(2):
            num = np.bincount(a, weights=q * xy[:, dim], minlength=p)
            c[has, dim] = num[has] / s[has]
    return c


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
    band: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A start plan and its centres ``(assignment (n,), centres (p, 2))``.

    ``squared`` selects the squared-distance allocation cost (diameter objective). Past
    ``deadline`` (``time.perf_counter()`` seconds) the location-allocation stops after its
    current round, and seeding is uniform when k-means++ (O(n p)) would not fit before it.
    With one measure and its ``band`` ``(lo, hi)`` (p, 1), each allocation is the exact
    min-cost flow within the bands (``flow_assign`` over ``flow_arcs``) instead of the priced
    assignment, free centres start at equal-load cells (``bisection_centers``) and, for the
    sum-distance objective, move to their territory's geometric median rather than its mean.
    """
    p = len(tgroup)
    free = centers is None
    use_flow = band is not None and measures.shape[1] == 1
    if free:
        spread = len(xy) * p * 5e-9 < deadline - time.perf_counter()
        if use_flow and (center_units < 0).all():
            # Centres of equal-load cells (recursive bisection): the flow's rounds start from
            # centres as dense as the load. k-means++ (even weighted by load: tried) leaves
            # dense cities with too few centres and sparse corners with too many, which the
            # rounds undo slowly.
            angle = float(rng.uniform(0.0, np.pi))
            cxy = np.zeros((p, 2))
            for grp in np.unique(tgroup):
                terr = np.flatnonzero(tgroup == grp)
                units = np.flatnonzero(ugroup == grp)
                if len(units):
                    cxy[terr] = bisection_centers(xy[units], measures[units, 0], len(terr),
                                                  angle)
        else:
            cxy = initial_centers(xy, ugroup, tgroup, center_units, rng, spread)
    else:
        cxy = centers.copy()
    scale = np.where(targets > 0, targets, 1.0)
    mean_t = scale.mean(axis=0)
    wn, tn = measures / mean_t, scale / mean_t
    lam = np.zeros_like(targets)
    a = np.zeros(len(xy), dtype=np.int64)
    units_per_terr = len(xy) / p
    k_cand = max(n_candidates, min(FLOW_CANDIDATES, FLOW_MAX_ARCS // max(len(xy), 1))) \
        if use_flow else n_candidates
    last_cost = np.inf
    for _ in range((FLOW_ROUNDS_FACTOR * rounds if use_flow else rounds) if free else 1):
        flowed = None
        if use_flow and (time.perf_counter() + FLOW_SEC_PER_ARC * len(xy) * (k_cand + FLOW_REACH)
                         > deadline):
            # A flow cannot be cut short: the time limit holds. Keep the last flow's plan.
            if np.isfinite(last_cost):
                break
            use_flow = False
        if use_flow:
            au, ak, ad, nearest = flow_arcs(xy, cxy, ugroup, tgroup, k_cand, FLOW_REACH)
            # Priced by distance per unit of measure, not by the objective's weights: then
            # the cells are additively weighted Voronoi (power) cells, connected in the
            # plane; units of a high measure-to-weight ratio would otherwise be pulled deep
            # into neighbouring territories (interleaved, not contiguous).
            flowed = flow_assign(au, ak, (ad**2 if squared else ad) * measures[au, 0],
                                 measures[:, 0], band[0][:, 0], band[1][:, 0], fixed, nearest)
        if flowed is not None:
            a = flowed
            now = float((np.hypot(*(xy - cxy[a]).T) ** (2 if squared else 1) * weights).sum())
            if now > (1.0 - 2e-3) * last_cost:
                break  # the location-allocation has settled
            last_cost = now
        else:
            cand, dist = candidate_arcs(xy, cxy, ugroup, tgroup, n_candidates)
            cost = dist**2 if squared else dist * weights[:, None]
            finite = np.isfinite(cost[:, 1]) if cost.shape[1] > 1 else np.zeros(len(xy), bool)
            gap = np.median(cost[finite, 1] - cost[finite, 0]) if finite.any() else 1.0
            step0 = max(gap, 1e-12) * units_per_terr
            a = _price_assign(cost, cand, wn, tn, fixed, lam, price_iterations, step0)
        if free:
            counts = np.bincount(a, minlength=p)
            moved = (counts > 0) & (center_units < 0)
            if use_flow and not squared:
                new = geometric_medians(xy, a, weights, cxy)
                cxy[moved] = new[moved]
            else:
                sx = np.bincount(a, weights=xy[:, 0], minlength=p)
                sy = np.bincount(a, weights=xy[:, 1], minlength=p)
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
