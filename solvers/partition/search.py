"""Numba kernels of the local search: penalised tabu search over boundary moves and swaps.

State
-----
``a`` (n,) assignment; ``tot`` (p, m) measure totals; per-territory member lists (``head``,
``nxt``, ``prv``); ``pen[k] = sum_a (max(0, tot_ka - hi_ka) + max(0, lo_ka - tot_ka)) / t_ka``,
the balance violation of territory k, ``B = sum_k pen[k]`` (0 iff balanced), and the score
penalty ``P = B + eps sum_ka ((tot_ka - t_ka) / t_ka)^2`` (the small quadratic term centres
territories inside their bands, which leaves their neighbours room for repairs).

Score minimised by the search (``lam`` adapts every 10 moves: up while some territory violates
its bounds, down while none does, the strategic oscillation of penalised districting searches):

* mode ``SUM_DISTANCE``: ``O + lam * P``, ``O = sum_i c(i, a_i)``,
  ``c(i, k) = weight_i ||x_i - c_k|| + move_cost_i [current_i >= 0, k != current_i]``;
  centres ``c_k`` are fixed during a call (the driver moves them to the medoids in between).
* mode ``DIAMETER``: ``C + lam * P + M / D_t`` for a threshold ``D_t``, with the conflict
  ``C = sum_{i < j, s(i) = s(j), d_ij > D_t} (1 + (d_ij - D_t) / D_t)`` and ``M`` the move costs.
  ``C = 0`` means every diameter is at most ``D_t``. Each time ``C = B = 0`` the plan is
  recorded, the threshold drops just below the new largest diameter and the search continues:
  the min-max objective is solved as a sequence of decision problems.

Moves shift one unit to a territory adjacent to it: movable units only, same group, the donor
keeps a unit and stays connected (exact check, BFS restricted to the donor), the budget
``sum move_size`` over moved units holds. Swaps exchange two adjacent units of a violated
territory and a neighbour (they keep unit counts). Each iteration scores a candidate list (units
in conflict or with a cheaper adjacent territory, up to ``sample_hot`` of them; the moves and
swaps across the boundary of up to three violated territories), applies the best non-tabu one
(tabu unless it beats the best score seen) and makes its units tabu for a random tenure.

All randomness comes from a xorshift state array, so a run is a pure function of its inputs and
splitting it into chunks (to look at the clock in between) does not change it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from solvers._random import rand_u64

SUM_DISTANCE = 0
DIAMETER = 1

# positions in the static tuple ``g`` and the state tuple ``st``
(G_XY, G_W, G_LO, G_HI, G_INV_T, G_INDPTR, G_INDICES, G_MOVABLE, G_UGROUP, G_TGROUP, G_WDIST,
 G_CURRENT, G_MOVE_COST, G_MOVE_SIZE) = range(14)
(S_A, S_TOT, S_CNT, S_HEAD, S_NXT, S_PRV, S_PEN, S_VIOL_LIST, S_VIOL_POS, S_CONF, S_HOT_LIST,
 S_HOT_POS, S_TABU, S_BBOX, S_BEST_A, S_MARK, S_QUEUE, S_SPEN) = range(18)

# ist: integer scalars of the state
IT, NHOT, NVIOL, LAST_IMPROVE, STAMP, NCONF, MODE, CONTIG, HAS_BEST = 0, 1, 2, 3, 4, 5, 6, 7, 8
N_RECORDS, TABU_MIN, TABU_MAX, SAMPLE_HOT, ADAPT, SWAPS, LAST_FROM, LAST_TO = range(9, 17)
N_IST = 17
# fst: float scalars of the state
LAM, DT, BEST_OBJ, MOVED, OBJ, CONF, BUDGET, PROGRESS, LAM_MIN, LAM_MAX = range(10)
PEN, BEST_SCORE, PROGRESS_OBJ, SPEN, CENTRING = 10, 11, 12, 13, 14
N_FST = 15

# Kernel return codes
RUNNING, STALLED, IDLE = 0, 1, 2

_EPS = 1e-9
#: Largest chunk (a cut vertex and the pieces it cuts off) the search moves at once.
CHUNK_UNITS = 64


@nb.njit(cache=True, inline="always")
def _randint(rng: np.ndarray, n: int) -> int:
    return int((rand_u64(rng) >> np.uint64(11)) % np.uint64(n))


@nb.njit(cache=True, inline="always")
def _dist(xy: np.ndarray, i: int, j: int) -> float:
    return np.sqrt((xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2)


@nb.njit(cache=True, inline="always")
def _terr_pen(tot_row: np.ndarray, w_in: np.ndarray, s_in: float, w_out: np.ndarray,
              s_out: float, lo_row: np.ndarray, hi_row: np.ndarray, inv_row: np.ndarray,
              eps: float) -> tuple[float, float]:
    """(violation, score penalty) of a territory whose totals become
    ``tot + s_in w_in - s_out w_out``.

    violation ``= sum_a (max(0, v_a - hi_a) + max(0, lo_a - v_a)) / t_a`` (bounds with a
    relative slack of 1e-9 against float rounding); score penalty ``= violation + eps sum_a
    ((v_a - t_a) / t_a)^2``: the quadratic term centres territories inside their band, which
    leaves neighbours room to repair theirs.
    """
    ex = 0.0
    sq = 0.0
    for a in range(len(tot_row)):
        v = tot_row[a] + s_in * w_in[a] - s_out * w_out[a]
        if v > hi_row[a] + 1e-9 * hi_row[a]:
            ex += (v - hi_row[a]) * inv_row[a]
        elif v < lo_row[a] - 1e-9 * lo_row[a]:
            ex += (lo_row[a] - v) * inv_row[a]
        d = (v - 0.5 * (lo_row[a] + hi_row[a])) * inv_row[a]
        sq += d * d
    return ex, ex + eps * sq


@nb.njit(cache=True, inline="always")
def _set_add(lst: np.ndarray, pos: np.ndarray, ist: np.ndarray, which: int, x: int) -> None:
    if pos[x] < 0:
        pos[x] = ist[which]
        lst[ist[which]] = x
        ist[which] += 1


@nb.njit(cache=True, inline="always")
def _set_remove(lst: np.ndarray, pos: np.ndarray, ist: np.ndarray, which: int, x: int) -> None:
    q = pos[x]
    if q >= 0:
        last = lst[ist[which] - 1]
        lst[q] = last
        pos[last] = q
        pos[x] = -1
        ist[which] -= 1


@nb.njit(cache=True, inline="always")
def _unit_cost(i: int, k: int, xy: np.ndarray, cxy: np.ndarray, wdist: np.ndarray,
               current: np.ndarray, move_cost: np.ndarray) -> float:
    c = wdist[i] * np.sqrt((xy[i, 0] - cxy[k, 0]) ** 2 + (xy[i, 1] - cxy[k, 1]) ** 2)
    if current[i] >= 0 and current[i] != k:
        c += move_cost[i]
    return c


@nb.njit(cache=True, inline="always")
def _pair_cost(d: float, dt: float) -> float:
    return 1.0 + (d - dt) / dt


@nb.njit(cache=True, inline="always")
def _conflict_into(i: int, k: int, xy: np.ndarray, head: np.ndarray, nxt: np.ndarray,
                   bbox: np.ndarray, dt: float) -> float:
    """Conflict ``sum_{j in S_k, d_ij > dt} pair_cost`` of unit i joining territory k."""
    x, y = xy[i, 0], xy[i, 1]
    fx = max(abs(x - bbox[k, 0]), abs(x - bbox[k, 2]))
    fy = max(abs(y - bbox[k, 1]), abs(y - bbox[k, 3]))
    if fx * fx + fy * fy <= dt * dt:
        return 0.0
    s = 0.0
    j = head[k]
    while j >= 0:
        if j != i:
            d = _dist(xy, i, j)
            if d > dt:
                s += _pair_cost(d, dt)
        j = nxt[j]
    return s


@nb.njit(cache=True)
def _removal_keeps_connected(i: int, a: np.ndarray, indptr: np.ndarray, indices: np.ndarray,
                             mark: np.ndarray, queue: np.ndarray, ist: np.ndarray) -> bool:
    """Whether territory ``a[i]`` minus unit i stays connected (BFS inside the territory)."""
    k = a[i]
    n_nb = 0
    first = -1
    ist[STAMP] += 1
    target = ist[STAMP]
    for t in range(indptr[i], indptr[i + 1]):
        j = indices[t]
        if a[j] == k and mark[j] != target:
            mark[j] = target
            n_nb += 1
            if first < 0:
                first = j
    if n_nb <= 1:
        return True
    # Search from one neighbour until every neighbour of i in k is reached; neighbours are
    # tagged ``target`` and visited units ``target + 1``.
    ist[STAMP] += 1
    seen = ist[STAMP]
    mark[i] = seen
    mark[first] = seen
    found = 1
    qh = 0
    qt = 0
    queue[qt] = first
    qt += 1
    while qh < qt:
        u = queue[qh]
        qh += 1
        for t in range(indptr[u], indptr[u + 1]):
            v = indices[t]
            if a[v] != k or mark[v] == seen:
                continue
            if mark[v] == target:
                found += 1
                if found == n_nb:
                    return True
            mark[v] = seen
            queue[qt] = v
            qt += 1
    return False


@nb.njit(cache=True, inline="always")
def _refresh_gain(i: int, g, cxy: np.ndarray, st, ist: np.ndarray) -> None:
    """Sum-distance mode: ``conf[i]`` = gain of i's best adjacent territory; maintain hot set."""
    xy = g[G_XY]
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    movable = g[G_MOVABLE]
    ugroup = g[G_UGROUP]
    tgroup = g[G_TGROUP]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    a = st[S_A]
    conf = st[S_CONF]
    hot_list = st[S_HOT_LIST]
    hot_pos = st[S_HOT_POS]
    gain = 0.0
    if movable[i]:
        here = _unit_cost(i, a[i], xy, cxy, wdist, current, move_cost)
        for t in range(indptr[i], indptr[i + 1]):
            k = a[indices[t]]
            if k != a[i] and tgroup[k] == ugroup[i]:
                gk = here - _unit_cost(i, k, xy, cxy, wdist, current, move_cost)
                if gk > gain:
                    gain = gk
    conf[i] = gain
    if gain > _EPS:
        _set_add(hot_list, hot_pos, ist, NHOT, i)
    else:
        _set_remove(hot_list, hot_pos, ist, NHOT, i)


@nb.njit(cache=True)
def _recompute_conflicts(g, st, ist: np.ndarray, fst: np.ndarray) -> None:
    """Diameter mode: conflicts of every unit at threshold ``fst[DT]`` from scratch.

    Only units far from their territory's centroid can be in a pair longer than ``D_t``:
    ``d_ij <= r_i + r_j <= r_i + r_max``, so the pairs are searched among ``r_i > D_t - r_max``.
    """
    xy = g[G_XY]
    movable = g[G_MOVABLE]
    a = st[S_A]
    cnt = st[S_CNT]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    conf = st[S_CONF]
    hot_list = st[S_HOT_LIST]
    hot_pos = st[S_HOT_POS]
    queue = st[S_QUEUE]
    dt = fst[DT]
    p = len(head)
    n = len(a)
    for i in range(n):
        conf[i] = 0.0
        if hot_pos[i] >= 0:
            hot_pos[i] = -1
    ist[NHOT] = 0
    ist[NCONF] = 0
    total = 0.0
    rim = queue  # scratch
    for k in range(p):
        cx = 0.0
        cy = 0.0
        j = head[k]
        while j >= 0:
            cx += xy[j, 0]
            cy += xy[j, 1]
            j = nxt[j]
        if cnt[k] < 2:
            continue
        cx /= cnt[k]
        cy /= cnt[k]
        rmax = 0.0
        j = head[k]
        while j >= 0:
            r = np.sqrt((xy[j, 0] - cx) ** 2 + (xy[j, 1] - cy) ** 2)
            if r > rmax:
                rmax = r
            j = nxt[j]
        if 2.0 * rmax <= dt:
            continue
        nr = 0
        j = head[k]
        while j >= 0:
            r = np.sqrt((xy[j, 0] - cx) ** 2 + (xy[j, 1] - cy) ** 2)
            if r > dt - rmax:
                rim[nr] = j
                nr += 1
            j = nxt[j]
        for u in range(nr):
            iu = rim[u]
            for v in range(u + 1, nr):
                iv = rim[v]
                d = _dist(xy, iu, iv)
                if d > dt:
                    c = _pair_cost(d, dt)
                    conf[iu] += c
                    conf[iv] += c
                    total += c
                    ist[NCONF] += 1
    for i in range(n):
        if conf[i] > 0 and movable[i]:
            _set_add(hot_list, hot_pos, ist, NHOT, i)
    fst[CONF] = total


@nb.njit(cache=True)
def max_diameter(xy: np.ndarray, head: np.ndarray, nxt: np.ndarray, cnt: np.ndarray,
                 lower: float, scratch: np.ndarray) -> float:
    """Largest territory diameter, pruned by the centroid radius bound (``lower`` = known <=)."""
    best = lower
    p = len(head)
    for k in range(p):
        if cnt[k] < 2:
            continue
        cx = 0.0
        cy = 0.0
        j = head[k]
        while j >= 0:
            cx += xy[j, 0]
            cy += xy[j, 1]
            j = nxt[j]
        cx /= cnt[k]
        cy /= cnt[k]
        rmax = 0.0
        j = head[k]
        while j >= 0:
            r = np.sqrt((xy[j, 0] - cx) ** 2 + (xy[j, 1] - cy) ** 2)
            if r > rmax:
                rmax = r
            j = nxt[j]
        if 2.0 * rmax <= best:
            continue
        nr = 0
        j = head[k]
        while j >= 0:
            r = np.sqrt((xy[j, 0] - cx) ** 2 + (xy[j, 1] - cy) ** 2)
            if r > best - rmax:
                scratch[nr] = j
                nr += 1
            j = nxt[j]
        for u in range(nr):
            for v in range(u + 1, nr):
                d = _dist(xy, scratch[u], scratch[v])
                if d > best:
                    best = d
    return best


@nb.njit(cache=True)
def init_state(g, cxy: np.ndarray, st, ist: np.ndarray, fst: np.ndarray) -> None:
    """Derive totals, member lists, penalties, violation and hot sets from ``st.a``."""
    xy = g[G_XY]
    w = g[G_W]
    lo = g[G_LO]
    hi = g[G_HI]
    inv_t = g[G_INV_T]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    move_size = g[G_MOVE_SIZE]
    a = st[S_A]
    tot = st[S_TOT]
    cnt = st[S_CNT]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    prv = st[S_PRV]
    pen = st[S_PEN]
    spen = st[S_SPEN]
    viol_list = st[S_VIOL_LIST]
    viol_pos = st[S_VIOL_POS]
    hot_pos = st[S_HOT_POS]
    tabu = st[S_TABU]
    bbox = st[S_BBOX]
    n = len(a)
    p = len(head)
    m = w.shape[1]
    tot[:, :] = 0.0
    cnt[:] = 0
    head[:] = -1
    bbox[:, 0] = np.inf
    bbox[:, 1] = np.inf
    bbox[:, 2] = -np.inf
    bbox[:, 3] = -np.inf
    moved = 0.0
    for i in range(n):
        k = a[i]
        for c in range(m):
            tot[k, c] += w[i, c]
        cnt[k] += 1
        prv[i] = -1
        nxt[i] = head[k]
        if head[k] >= 0:
            prv[head[k]] = i
        head[k] = i
        bbox[k, 0] = min(bbox[k, 0], xy[i, 0])
        bbox[k, 1] = min(bbox[k, 1], xy[i, 1])
        bbox[k, 2] = max(bbox[k, 2], xy[i, 0])
        bbox[k, 3] = max(bbox[k, 3], xy[i, 1])
        if current[i] >= 0 and current[i] != k:
            moved += move_size[i]
        hot_pos[i] = -1
        tabu[i] = 0
    fst[MOVED] = moved
    ist[NVIOL] = 0
    total_pen = 0.0
    total_spen = 0.0
    for k in range(p):
        viol_pos[k] = -1
    for k in range(p):
        pen[k], spen[k] = _terr_pen(tot[k], tot[k], 0.0, tot[k], 0.0, lo[k], hi[k], inv_t[k],
                                    fst[CENTRING])
        total_pen += pen[k]
        total_spen += spen[k]
        if pen[k] > 0:
            _set_add(viol_list, viol_pos, ist, NVIOL, k)
    fst[PEN] = total_pen
    fst[SPEN] = total_spen
    ist[NHOT] = 0
    if ist[MODE] == SUM_DISTANCE:
        obj = 0.0
        for i in range(n):
            obj += _unit_cost(i, a[i], xy, cxy, wdist, current, move_cost)
            _refresh_gain(i, g, cxy, st, ist)
        fst[OBJ] = obj
    else:
        mc = 0.0
        for i in range(n):
            if current[i] >= 0 and current[i] != a[i]:
                mc += move_cost[i]
        fst[OBJ] = mc
        _recompute_conflicts(g, st, ist, fst)
    fst[PROGRESS] = np.inf
    fst[PROGRESS_OBJ] = np.inf
    fst[BEST_SCORE] = np.inf
    ist[LAST_IMPROVE] = ist[IT]


@nb.njit(cache=True)
def _score(ist: np.ndarray, fst: np.ndarray) -> float:
    if ist[MODE] == SUM_DISTANCE:
        return fst[OBJ] + fst[LAM] * fst[SPEN]
    return fst[CONF] + fst[LAM] * fst[SPEN] + fst[OBJ] / fst[DT]


@nb.njit(cache=True)
def _objective_term(ist: np.ndarray, fst: np.ndarray) -> float:
    if ist[MODE] == SUM_DISTANCE:
        return fst[OBJ]
    return fst[CONF] + fst[OBJ] / fst[DT]


@nb.njit(cache=True)
def _made_progress(ist: np.ndarray, fst: np.ndarray) -> bool:
    """Lexicographic progress since the last reset: less violation, else a better objective
    term while balanced (``lam`` moves, so the score itself cannot tell)."""
    pen = fst[PEN]
    if pen > 0:
        if pen < fst[PROGRESS] * (1.0 - 1e-9):
            fst[PROGRESS] = pen
            return True
        return False
    fst[PROGRESS] = 0.0
    obj = _objective_term(ist, fst)
    old = fst[PROGRESS_OBJ]
    if obj < old and (old == np.inf or obj < old - 1e-9 * max(1.0, abs(old))):
        fst[PROGRESS_OBJ] = obj
        return True
    return False


@nb.njit(cache=True, inline="always")
def _moved_delta(i: int, k_from: int, k_to: int, current: np.ndarray,
                 values: np.ndarray) -> float:
    """Change of ``sum values`` over moved units when unit i goes from ``k_from`` to ``k_to``."""
    if current[i] < 0:
        return 0.0
    if current[i] == k_from:
        return values[i]
    if current[i] == k_to:
        return -values[i]
    return 0.0


@nb.njit(cache=True, inline="always")
def _eval_move(i: int, k_to: int, g, cxy: np.ndarray, st, ist: np.ndarray,
               fst: np.ndarray) -> float:
    """Score change of moving unit i to territory ``k_to`` (inf when not allowed)."""
    xy = g[G_XY]
    w = g[G_W]
    lo = g[G_LO]
    hi = g[G_HI]
    inv_t = g[G_INV_T]
    movable = g[G_MOVABLE]
    ugroup = g[G_UGROUP]
    tgroup = g[G_TGROUP]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    move_size = g[G_MOVE_SIZE]
    a = st[S_A]
    tot = st[S_TOT]
    cnt = st[S_CNT]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    spen = st[S_SPEN]
    conf = st[S_CONF]
    bbox = st[S_BBOX]
    k_from = a[i]
    if k_to == k_from or not movable[i] or tgroup[k_to] != ugroup[i] or cnt[k_from] <= 1:
        return np.inf
    d_moved = _moved_delta(i, k_from, k_to, current, move_size)
    if d_moved > 0 and fst[MOVED] + d_moved > fst[BUDGET] + 1e-9:
        return np.inf
    eps = fst[CENTRING]
    d_pen = (_terr_pen(tot[k_from], w[i], 0.0, w[i], 1.0, lo[k_from], hi[k_from],
                       inv_t[k_from], eps)[1]
             + _terr_pen(tot[k_to], w[i], 1.0, w[i], 0.0, lo[k_to], hi[k_to], inv_t[k_to],
                         eps)[1]
             - spen[k_from] - spen[k_to])
    if ist[MODE] == SUM_DISTANCE:
        d_obj = (_unit_cost(i, k_to, xy, cxy, wdist, current, move_cost)
                 - _unit_cost(i, k_from, xy, cxy, wdist, current, move_cost))
    else:
        d_obj = (_conflict_into(i, k_to, xy, head, nxt, bbox, fst[DT]) - conf[i]
                 + _moved_delta(i, k_from, k_to, current, move_cost) / fst[DT])
    return d_obj + fst[LAM] * d_pen


@nb.njit(cache=True, inline="always")
def _eval_swap(i: int, j: int, g, cxy: np.ndarray, st, ist: np.ndarray,
               fst: np.ndarray) -> float:
    """Score change of exchanging adjacent units i and j of two territories (inf if barred).

    Swaps keep unit counts, so they repair a measure while the others (the count among them)
    sit at their bounds; one that does not lower the balance penalty is barred. The pair's own
    mutual conflict is ignored (the two units are near each other).
    """
    xy = g[G_XY]
    w = g[G_W]
    lo = g[G_LO]
    hi = g[G_HI]
    inv_t = g[G_INV_T]
    movable = g[G_MOVABLE]
    ugroup = g[G_UGROUP]
    tgroup = g[G_TGROUP]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    move_size = g[G_MOVE_SIZE]
    a = st[S_A]
    tot = st[S_TOT]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    spen = st[S_SPEN]
    conf = st[S_CONF]
    bbox = st[S_BBOX]
    k = a[i]
    b = a[j]
    if (k == b or not movable[i] or not movable[j] or tgroup[b] != ugroup[i]
            or tgroup[k] != ugroup[j]):
        return np.inf
    d_moved = _moved_delta(i, k, b, current, move_size) + _moved_delta(j, b, k, current,
                                                                       move_size)
    if d_moved > 0 and fst[MOVED] + d_moved > fst[BUDGET] + 1e-9:
        return np.inf
    eps = fst[CENTRING]
    d_pen = (_terr_pen(tot[k], w[j], 1.0, w[i], 1.0, lo[k], hi[k], inv_t[k], eps)[1]
             + _terr_pen(tot[b], w[i], 1.0, w[j], 1.0, lo[b], hi[b], inv_t[b], eps)[1]
             - spen[k] - spen[b])
    if d_pen >= 0:
        # swaps serve balance only; skipping the others spares their (costly) objective term
        return np.inf
    if ist[MODE] == SUM_DISTANCE:
        d_obj = (_unit_cost(i, b, xy, cxy, wdist, current, move_cost)
                 - _unit_cost(i, k, xy, cxy, wdist, current, move_cost)
                 + _unit_cost(j, k, xy, cxy, wdist, current, move_cost)
                 - _unit_cost(j, b, xy, cxy, wdist, current, move_cost))
    else:
        d_mcost = (_moved_delta(i, k, b, current, move_cost)
                   + _moved_delta(j, b, k, current, move_cost))
        d_obj = (_conflict_into(i, b, xy, head, nxt, bbox, fst[DT]) - conf[i]
                 + _conflict_into(j, k, xy, head, nxt, bbox, fst[DT]) - conf[j]
                 + d_mcost / fst[DT])
    return d_obj + fst[LAM] * d_pen


@nb.njit(cache=True)
def _swap_keeps_connected(i: int, j: int, a: np.ndarray, indptr: np.ndarray,
                          indices: np.ndarray, mark: np.ndarray, queue: np.ndarray,
                          ist: np.ndarray) -> bool:
    """Sufficient test that exchanging i and j leaves both territories connected: each loses
    its unit without splitting and the newcomer touches what remains."""
    k = a[i]
    b = a[j]
    if not _removal_keeps_connected(i, a, indptr, indices, mark, queue, ist):
        return False
    if not _removal_keeps_connected(j, a, indptr, indices, mark, queue, ist):
        return False
    touch_k = False
    for t in range(indptr[j], indptr[j + 1]):
        v = indices[t]
        if v != i and a[v] == k:
            touch_k = True
            break
    if not touch_k:
        return False
    for t in range(indptr[i], indptr[i + 1]):
        v = indices[t]
        if v != j and a[v] == b:
            return True
    return False


@nb.njit(cache=True)
def apply_move(i: int, k_to: int, g, cxy: np.ndarray, st, ist: np.ndarray,
               fst: np.ndarray) -> None:
    """Move unit i to ``k_to`` and update every derived quantity."""
    xy = g[G_XY]
    w = g[G_W]
    lo = g[G_LO]
    hi = g[G_HI]
    inv_t = g[G_INV_T]
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    movable = g[G_MOVABLE]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    move_size = g[G_MOVE_SIZE]
    a = st[S_A]
    tot = st[S_TOT]
    cnt = st[S_CNT]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    prv = st[S_PRV]
    pen = st[S_PEN]
    spen = st[S_SPEN]
    viol_list = st[S_VIOL_LIST]
    viol_pos = st[S_VIOL_POS]
    conf = st[S_CONF]
    hot_list = st[S_HOT_LIST]
    hot_pos = st[S_HOT_POS]
    bbox = st[S_BBOX]
    k_from = a[i]
    m = w.shape[1]
    if ist[MODE] == SUM_DISTANCE:
        fst[OBJ] += (_unit_cost(i, k_to, xy, cxy, wdist, current, move_cost)
                     - _unit_cost(i, k_from, xy, cxy, wdist, current, move_cost))
    elif current[i] >= 0:
        if current[i] == k_from:
            fst[OBJ] += move_cost[i]
        elif current[i] == k_to:
            fst[OBJ] -= move_cost[i]
    if current[i] >= 0:
        if current[i] == k_from:
            fst[MOVED] += move_size[i]
        elif current[i] == k_to:
            fst[MOVED] -= move_size[i]
    # member lists
    if prv[i] >= 0:
        nxt[prv[i]] = nxt[i]
    else:
        head[k_from] = nxt[i]
    if nxt[i] >= 0:
        prv[nxt[i]] = prv[i]
    prv[i] = -1
    nxt[i] = head[k_to]
    if head[k_to] >= 0:
        prv[head[k_to]] = i
    head[k_to] = i
    cnt[k_from] -= 1
    cnt[k_to] += 1
    a[i] = k_to
    bbox[k_to, 0] = min(bbox[k_to, 0], xy[i, 0])
    bbox[k_to, 1] = min(bbox[k_to, 1], xy[i, 1])
    bbox[k_to, 2] = max(bbox[k_to, 2], xy[i, 0])
    bbox[k_to, 3] = max(bbox[k_to, 3], xy[i, 1])
    for c in range(m):
        tot[k_from, c] -= w[i, c]
        tot[k_to, c] += w[i, c]
    for k in (k_from, k_to):
        old = pen[k]
        old_s = spen[k]
        pen[k], spen[k] = _terr_pen(tot[k], w[i], 0.0, w[i], 0.0, lo[k], hi[k], inv_t[k],
                                    fst[CENTRING])
        fst[PEN] += pen[k] - old
        fst[SPEN] += spen[k] - old_s
        if pen[k] > 0:
            _set_add(viol_list, viol_pos, ist, NVIOL, k)
        else:
            _set_remove(viol_list, viol_pos, ist, NVIOL, k)
    if ist[NVIOL] == 0:
        fst[PEN] = 0.0  # drop accumulated rounding
    if ist[MODE] == SUM_DISTANCE:
        _refresh_gain(i, g, cxy, st, ist)
        for t in range(indptr[i], indptr[i + 1]):
            _refresh_gain(indices[t], g, cxy, st, ist)
    else:
        dt = fst[DT]
        # leaving k_from
        j = head[k_from]
        while j >= 0:
            d = _dist(xy, i, j)
            if d > dt:
                c = _pair_cost(d, dt)
                conf[j] -= c
                fst[CONF] -= c
                ist[NCONF] -= 1
                if conf[j] <= _EPS:
                    conf[j] = 0.0
                    _set_remove(hot_list, hot_pos, ist, NHOT, j)
            j = nxt[j]
        # joining k_to
        ci = 0.0
        j = head[k_to]
        while j >= 0:
            if j != i:
                d = _dist(xy, i, j)
                if d > dt:
                    c = _pair_cost(d, dt)
                    conf[j] += c
                    ci += c
                    ist[NCONF] += 1
                    if movable[j]:
                        _set_add(hot_list, hot_pos, ist, NHOT, j)
            j = nxt[j]
        fst[CONF] += ci
        conf[i] = ci
        if ci > 0:
            _set_add(hot_list, hot_pos, ist, NHOT, i)
        else:
            _set_remove(hot_list, hot_pos, ist, NHOT, i)
        if ist[NCONF] == 0:
            fst[CONF] = 0.0


@nb.njit(cache=True, inline="always")
def _add_cand(i: int, k: int, delta: float, cu: np.ndarray, ck: np.ndarray, cd: np.ndarray,
              nc: int, cv: np.ndarray, partner: int = -1) -> int:
    """Append candidate "unit i to territory k" (with ``partner`` going the other way)."""
    if nc < len(cu) and delta < np.inf:
        cu[nc] = i
        ck[nc] = k
        cd[nc] = delta
        cv[nc] = partner
        nc += 1
    return nc


@nb.njit(cache=True, inline="always")
def _moves_of(i: int, g, cxy, st, ist, fst, cu, ck, cd, nc: int, cv) -> int:
    """Add every move of unit i to a distinct adjacent territory."""
    indptr, indices = g[G_INDPTR], g[G_INDICES]
    a = st[S_A]
    for t in range(indptr[i], indptr[i + 1]):
        k = a[indices[t]]
        if k == a[i]:
            continue
        dup = False
        for t2 in range(indptr[i], t):
            if a[indices[t2]] == k:
                dup = True
                break
        if not dup:
            nc = _add_cand(i, k, _eval_move(i, k, g, cxy, st, ist, fst), cu, ck, cd, nc, cv)
    return nc


@nb.njit(cache=True)
def record(g, cxy, st, ist: np.ndarray, fst: np.ndarray) -> bool:
    """Keep the current plan as the best when it is feasible and better; returns True if kept.

    In diameter mode this also lowers the threshold just below the new largest diameter.
    """
    a, best_a, queue = st[S_A], st[S_BEST_A], st[S_QUEUE]
    if ist[NVIOL] > 0:
        return False
    if ist[MODE] == SUM_DISTANCE:
        obj = fst[OBJ]
        if ist[HAS_BEST] and obj >= fst[BEST_OBJ] - 1e-9 * abs(fst[BEST_OBJ]):
            return False
        fst[BEST_OBJ] = obj
    else:
        if ist[NCONF] > 0:
            return False
        d = max_diameter(g[G_XY], st[S_HEAD], st[S_NXT], st[S_CNT], 0.0, queue)
        obj = d + fst[OBJ]
        if ist[HAS_BEST] and obj >= fst[BEST_OBJ]:
            # Feasible at the threshold but not better (move costs): tighten anyway.
            fst[DT] = max(d * (1.0 - 1e-7), 1e-12)
            _recompute_conflicts(g, st, ist, fst)
            return False
        fst[BEST_OBJ] = obj
        fst[DT] = max(d * (1.0 - 1e-7), 1e-12)
    best_a[:] = a
    ist[HAS_BEST] = 1
    ist[N_RECORDS] += 1
    ist[LAST_IMPROVE] = ist[IT]
    fst[PROGRESS] = np.inf
    fst[PROGRESS_OBJ] = np.inf
    fst[BEST_SCORE] = np.inf
    if ist[MODE] == DIAMETER:
        _recompute_conflicts(g, st, ist, fst)
    return True


@nb.njit(cache=True)
def _chunk_move(i: int, k_to: int, score: float, g, cxy: np.ndarray, st, ist: np.ndarray,
                fst: np.ndarray, chunk: np.ndarray, tabu: np.ndarray, it: int,
                rng: np.ndarray) -> bool:
    """Move cut vertex ``i`` to ``k_to`` with the pieces of its territory it would cut off
    (``_cut_off_chunk``, at most ``len(chunk)`` units, all free to join ``k_to``), keeping the
    move when the score falls and the move budget holds; else everything is put back."""
    size = _cut_off_chunk(i, 0, np.inf, g, st, ist)
    if size == 0 or size > len(chunk):
        return False
    ugroup = g[G_UGROUP]
    tgroup = g[G_TGROUP]
    a = st[S_A]
    queue = st[S_QUEUE]
    for q in range(size):
        chunk[q] = queue[q]
        if ugroup[chunk[q]] != tgroup[k_to] or tabu[chunk[q]] > it:
            return False
    src = a[i]
    for q in range(size):
        apply_move(chunk[q], k_to, g, cxy, st, ist, fst)
    if _score(ist, fst) < score - _EPS and fst[MOVED] <= fst[BUDGET] + _EPS:
        ist[LAST_FROM] = src
        ist[LAST_TO] = k_to
        tenure = it + ist[TABU_MIN] + _randint(rng, ist[TABU_MAX] - ist[TABU_MIN] + 1)
        for q in range(size):
            tabu[chunk[q]] = tenure
        return True
    for q in range(size - 1, -1, -1):
        apply_move(chunk[q], src, g, cxy, st, ist, fst)
    return False


@nb.njit(cache=True)
def run(g, cxy: np.ndarray, st, ist: np.ndarray, fst: np.ndarray, rng: np.ndarray,
        n_iter: int, stall_iterations: int) -> int:
    """Run up to ``n_iter`` tabu iterations.

    Returns ``RUNNING`` (budget used), ``STALLED`` (``stall_iterations`` without progress) or
    ``IDLE`` (no candidate move: a local optimum with nothing to repair).
    """
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    a = st[S_A]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    viol_list = st[S_VIOL_LIST]
    viol_pos = st[S_VIOL_POS]
    hot_list = st[S_HOT_LIST]
    tabu = st[S_TABU]
    mark = st[S_MARK]
    queue = st[S_QUEUE]
    contiguous = ist[CONTIG] == 1
    cap = 8192
    cu = np.empty(cap, dtype=np.int64)
    ck = np.empty(cap, dtype=np.int64)
    cd = np.empty(cap, dtype=np.float64)
    cv = np.empty(cap, dtype=np.int64)
    inside = np.empty((3, 64), dtype=np.int64)
    outside = np.empty((3, 64), dtype=np.int64)
    n_in = np.zeros(3, dtype=np.int64)
    n_out = np.zeros(3, dtype=np.int64)
    chunk = np.empty(CHUNK_UNITS, dtype=np.int64)
    for _ in range(n_iter):
        it = ist[IT]
        nc = 0
        # objective-driven candidates
        # While many territories violate their bounds, a move is mostly a repair: score fewer
        # candidates per move (one violated territory, an eighth of the hot sample).
        nv = ist[NVIOL]
        crowded = nv > 30
        n_hot = ist[SAMPLE_HOT] // 8 if crowded else ist[SAMPLE_HOT]
        nh = ist[NHOT]
        if nh <= n_hot:
            for q in range(nh):
                nc = _moves_of(hot_list[q], g, cxy, st, ist, fst, cu, ck, cd, nc, cv)
        else:
            for _q in range(n_hot):
                nc = _moves_of(hot_list[_randint(rng, nh)], g, cxy, st, ist, fst, cu, ck, cd,
                               nc, cv)
        # balance-driven candidates around up to three violated territories: moves in and out
        # across the boundary; the boundary units are listed for swaps
        n_terr = 1 if crowded else min(nv, 3)
        for q in range(n_terr):
            k = viol_list[q] if nv <= 3 else viol_list[_randint(rng, nv)]
            # an ejection chain goes on from the territory the last move pushed out of its band
            if nv > 3 and q < 2:
                last = ist[LAST_TO] if q == 0 else ist[LAST_FROM]
                if last >= 0 and viol_pos[last] >= 0:
                    k = last
            # ``mark`` tags outside units already listed this iteration
            ist[STAMP] += 1
            seen = ist[STAMP]
            n_in[q] = 0
            n_out[q] = 0
            i = head[k]
            while i >= 0 and nc < cap - 64:
                on_boundary = False
                for t in range(indptr[i], indptr[i + 1]):
                    j = indices[t]
                    if a[j] != k:
                        on_boundary = True
                        if mark[j] != seen:
                            mark[j] = seen
                            nc = _add_cand(j, k, _eval_move(j, k, g, cxy, st, ist, fst),
                                           cu, ck, cd, nc, cv)
                            if n_out[q] < outside.shape[1]:
                                outside[q, n_out[q]] = j
                                n_out[q] += 1
                if on_boundary:
                    nc = _moves_of(i, g, cxy, st, ist, fst, cu, ck, cd, nc, cv)
                    if n_in[q] < inside.shape[1]:
                        inside[q, n_in[q]] = i
                        n_in[q] += 1
                i = nxt[i]
        # swaps of a boundary unit with a unit across the same boundary: the second
        # neighbourhood, scored only when no single move improves
        if ist[SWAPS] and n_terr > 0:
            improving = False
            for c in range(nc):
                if cd[c] < -_EPS:
                    improving = True
                    break
            if not improving:
                for q in range(n_terr):
                    for x in range(n_in[q]):
                        i = inside[q, x]
                        for y in range(n_out[q]):
                            j = outside[q, y]
                            if nc >= cap:
                                break
                            # j's territory must border i (contiguity after the swap)
                            touches = False
                            for t in range(indptr[i], indptr[i + 1]):
                                if a[indices[t]] == a[j]:
                                    touches = True
                                    break
                            if touches:
                                nc = _add_cand(i, a[j], _eval_swap(i, j, g, cxy, st, ist, fst),
                                               cu, ck, cd, nc, cv, j)
        if nc == 0:
            return IDLE
        score = _score(ist, fst)
        # best admissible move, trying the next best when the donor would split
        chosen = -1
        chunk_moved = False
        for _try in range(16):
            best = np.inf
            bi = -1
            ties = 0
            for c in range(nc):
                dlt = cd[c]
                if dlt == np.inf:
                    continue
                if ((tabu[cu[c]] > it or (cv[c] >= 0 and tabu[cv[c]] > it))
                        and score + dlt >= fst[BEST_SCORE] - _EPS):
                    continue
                if dlt < best - _EPS:
                    best = dlt
                    bi = c
                    ties = 1
                elif dlt <= best + _EPS:
                    ties += 1
                    if _randint(rng, ties) == 0:
                        bi = c
            if bi < 0:
                break
            if cv[bi] >= 0:
                if not contiguous or _swap_keeps_connected(cu[bi], cv[bi], a, indptr, indices,
                                                           mark, queue, ist):
                    chosen = bi
                    break
                cd[bi] = np.inf
                continue
            if not contiguous or _removal_keeps_connected(cu[bi], a, indptr, indices, mark,
                                                          queue, ist):
                chosen = bi
                break
            # The unit is a cut vertex of its territory (a neck: over account-level graphs most
            # boundary units of a ragged territory are), and single moves find no way through:
            # an improving move is tried with the pieces it would cut off (kept if the score
            # falls, else undone).
            if best < -_EPS and _chunk_move(cu[bi], ck[bi], score, g, cxy, st, ist, fst,
                                            chunk, tabu, it, rng):
                chunk_moved = True
                break
            # every single move of that unit would split the same donor
            u = cu[bi]
            for c in range(nc):
                if cu[c] == u and cv[c] < 0:
                    cd[c] = np.inf
        if chosen < 0 and not chunk_moved:
            ist[IT] += 1
            if ist[IT] - ist[LAST_IMPROVE] > stall_iterations:
                return STALLED
            continue
        if chosen >= 0:
            if ist[MODE] == SUM_DISTANCE and cd[chosen] >= 0:
                # about to leave a local optimum: keep it if it is the best plan so far
                record(g, cxy, st, ist, fst)
            i = cu[chosen]
            j = cv[chosen]
            home = a[i]
            ist[LAST_FROM] = home
            ist[LAST_TO] = ck[chosen]
            apply_move(i, ck[chosen], g, cxy, st, ist, fst)
            tabu[i] = it + ist[TABU_MIN] + _randint(rng, ist[TABU_MAX] - ist[TABU_MIN] + 1)
            if j >= 0:
                apply_move(j, home, g, cxy, st, ist, fst)
                tabu[j] = tabu[i]
        ist[IT] += 1
        if ist[MODE] == DIAMETER and ist[NCONF] == 0 and ist[NVIOL] == 0:
            record(g, cxy, st, ist, fst)
        new_score = _score(ist, fst)
        if new_score < fst[BEST_SCORE]:
            fst[BEST_SCORE] = new_score
        if _made_progress(ist, fst):
            ist[LAST_IMPROVE] = ist[IT]
        # strategic oscillation of the balance weight
        ist[ADAPT] += 1
        if ist[ADAPT] >= 10:
            ist[ADAPT] = 0
            if ist[NVIOL] > 0:
                fst[LAM] = min(fst[LAM] * 1.25, fst[LAM_MAX])
            else:
                fst[LAM] = max(fst[LAM] / 1.25, fst[LAM_MIN])
            fst[BEST_SCORE] = _score(ist, fst)
        if ist[IT] - ist[LAST_IMPROVE] > stall_iterations:
            return STALLED
    return RUNNING


@nb.njit(cache=True)
def perturb(g, cxy: np.ndarray, st, ist: np.ndarray, fst: np.ndarray, rng: np.ndarray,
            n_moves: int) -> None:
    """Apply ``n_moves`` random admissible boundary moves (kick of an iterated local search)."""
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    movable = g[G_MOVABLE]
    ugroup = g[G_UGROUP]
    tgroup = g[G_TGROUP]
    current = g[G_CURRENT]
    move_size = g[G_MOVE_SIZE]
    a, cnt = st[S_A], st[S_CNT]
    mark, queue = st[S_MARK], st[S_QUEUE]
    n = len(a)
    done = 0
    for _ in range(20 * n_moves + 100):
        if done >= n_moves:
            break
        i = _randint(rng, n)
        if not movable[i] or indptr[i + 1] == indptr[i]:
            continue
        j = indices[indptr[i] + _randint(rng, indptr[i + 1] - indptr[i])]
        k = a[j]
        if k == a[i] or tgroup[k] != ugroup[i] or cnt[a[i]] <= 1:
            continue
        if current[i] >= 0 and current[i] == a[i] and fst[MOVED] + move_size[i] > fst[BUDGET]:
            continue
        if ist[CONTIG] == 1 and not _removal_keeps_connected(i, a, indptr, indices, mark, queue,
                                                             ist):
            continue
        apply_move(i, k, g, cxy, st, ist, fst)
        done += 1


@nb.njit(cache=True)
def _cut_off_chunk(i: int, c: int, limit: float, g, st, ist: np.ndarray) -> int:
    """Unit i plus the pieces of its territory that removing it would cut off; written to
    ``queue[:size]``, returns size, or 0 when the chunk holds a pinned unit, weighs more than
    ``limit`` in measure ``c``, or would leave nothing behind.

    The piece kept is the one holding the territory's pinned units (refused when two pieces
    hold some), else the one with the most units.
    """
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    movable = g[G_MOVABLE]
    w = g[G_W]
    a = st[S_A]
    mark = st[S_MARK]
    queue = st[S_QUEUE]
    k = a[i]
    n_nb = indptr[i + 1] - indptr[i]
    starts = np.empty(n_nb + 1, np.int64)
    pinned = np.zeros(n_nb, np.bool_)
    ist[STAMP] += 1
    seen = ist[STAMP]
    mark[i] = seen
    # queue[0] is i; the pieces follow, one after the other
    queue[0] = i
    qt = 1
    n_pieces = 0
    for t in range(indptr[i], indptr[i + 1]):
        j = indices[t]
        if a[j] != k or mark[j] == seen:
            continue
        starts[n_pieces] = qt
        mark[j] = seen
        queue[qt] = j
        qh = qt
        qt += 1
        while qh < qt:
            u = queue[qh]
            qh += 1
            if not movable[u]:
                pinned[n_pieces] = True
            for t2 in range(indptr[u], indptr[u + 1]):
                v = indices[t2]
                if a[v] == k and mark[v] != seen:
                    mark[v] = seen
                    queue[qt] = v
                    qt += 1
        n_pieces += 1
    starts[n_pieces] = qt
    if n_pieces < 2 or not movable[i]:
        return 0
    keep = -1
    for q in range(n_pieces):
        if pinned[q]:
            if keep >= 0:
                return 0
            keep = q
    if keep < 0:
        keep = 0
        for q in range(1, n_pieces):
            if starts[q + 1] - starts[q] > starts[keep + 1] - starts[keep]:
                keep = q
    # drop the kept piece from the queue by moving the last pieces over it
    lo, hi = starts[keep], starts[keep + 1]
    width = hi - lo
    for q in range(hi, qt):
        queue[q - width] = queue[q]
    size = qt - width
    total = 0.0
    for q in range(size):
        total += w[queue[q], c]
    if total > limit:
        return 0
    return size


@nb.njit(cache=True)
def transfer(src: int, dst: int, amount: float, c: int, g, cxy: np.ndarray, st,
             ist: np.ndarray, fst: np.ndarray) -> float:
    """Move units of ``src`` that touch ``dst`` into ``dst`` until about ``amount`` of measure
    ``c`` has gone over; returns the amount moved.

    One unit at a time, the cheapest in the objective (distance to the centres) among those
    whose move brings the moved amount closer to ``amount``; every move is admissible for the
    search (movable, same group, budget, ``src`` keeps a unit and stays connected). This is
    how a flow of measure between adjacent territories (``engine._flow_repair``) becomes units:
    the frontier advances as units change hands, so a flow larger than one boundary layer
    still finds units.
    """
    indptr = g[G_INDPTR]
    indices = g[G_INDICES]
    xy = g[G_XY]
    w = g[G_W]
    wdist = g[G_WDIST]
    current = g[G_CURRENT]
    move_cost = g[G_MOVE_COST]
    a = st[S_A]
    head = st[S_HEAD]
    nxt = st[S_NXT]
    mark = st[S_MARK]
    queue = st[S_QUEUE]
    contiguous = ist[CONTIG] == 1
    moved = 0.0
    # units found splitting ``src`` are not tried again (a short list: ``mark`` belongs to
    # the connectivity check)
    barred = np.empty(256, dtype=np.int64)
    n_barred = 0
    while amount - moved > 0.0:
        left = amount - moved
        best = -1
        best_cost = np.inf
        i = head[src]
        while i >= 0:
            wi = w[i, c]
            if 0.0 < wi < 2.0 * left:
                touches = False
                for t in range(indptr[i], indptr[i + 1]):
                    if a[indices[t]] == dst:
                        touches = True
                        break
                if touches and _eval_move(i, dst, g, cxy, st, ist, fst) < np.inf:
                    cost = (_unit_cost(i, dst, xy, cxy, wdist, current, move_cost)
                            - _unit_cost(i, src, xy, cxy, wdist, current, move_cost))
                    if cost < best_cost:
                        for q in range(n_barred):
                            if barred[q] == i:
                                cost = np.inf
                                break
                        if cost < best_cost:
                            best_cost = cost
                            best = i
            i = nxt[i]
        if best < 0:
            break
        if contiguous and not _removal_keeps_connected(best, a, indptr, indices, mark, queue,
                                                       ist):
            # Taking ``best`` would cut ``src``: move it with the pieces it would cut off
            # (everything but the piece holding the pinned units, or the largest), when that
            # chunk is free to move and not more than the flow asks.
            size = _cut_off_chunk(best, c, 2.0 * left, g, st, ist)
            if size > 0:
                for q in range(size):
                    u = queue[q]
                    apply_move(u, dst, g, cxy, st, ist, fst)
                    moved += w[u, c]
                continue
            if n_barred == len(barred):
                break
            barred[n_barred] = best
            n_barred += 1
            continue
        apply_move(best, dst, g, cxy, st, ist, fst)
        moved += w[best, c]
    return moved
