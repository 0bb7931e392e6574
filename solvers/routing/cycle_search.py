"""Ruin-and-recreate search over the whole cycle (numba), with overnight-stay moves.

State: one route per day (``routes[d, :rlen[d]]`` node ids), the start and end location of
every day (home, or an account's location for a stay; ``eloc[d] == sloc[d + 1]``), and per route
the forward/backward time arrays of ``cycle_sched`` so an insertion test costs O(K).

Objective (integer cost units): ``sum_d travel cost of day d + night_cost * nights
+ sum over unserved nodes of penalty``.

Iteration (after Christiaens & Vanden Berghe, "Slack induction by string removals", 2020):

1. ruin: from a random served seed visit, walk its nearest visits and cut one string of
   consecutive visits from each of up to ``k_s`` days (string length up to ``l_max``, mean
   ``c_bar`` visits removed); with probability ``p_stay`` instead add a trip (1..k nights at
   one remote account, emptying its days and the day after) or drop a night or a whole trip;
   with probability ``p_target`` (while visits are unserved) make room for an unserved visit
   instead (``target_ruin``: a string from one of its days, strings near it; it is inserted
   first);
2. recreate: the cut visits plus unserved visits near the seed (``n_extra``, four times as
   many after a stay move), in one of five orders (random, value, far from home, close to
   home, value per minute of visit and nearest legs), each at its cheapest feasible position on any allowed day, skipping each position
   with probability ``blink``; stays touched are then moved to the last visit of their day or
   the first of the next when cheaper;
3. accept by simulated annealing on the objective, temperature ``T`` given per call
   (the driver lowers it geometrically over the run).

Randomness: a xorshift64* generator whose state is an explicit array (reproducible, no global
seed).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from solvers._random import rand_u64
from solvers.routing.cycle_sched import (
    ALLOWED,
    APP,
    COST,
    INF,
    LOC,
    LUNCH,
    PEN,
    SPAN,
    SVC,
    TRAVEL,
    WE,
    WS,
    insert_ok,
    refresh_route,
)

# Indices into the auxiliary tuple ``X`` (see ``cycle._pack_aux``).
(ADAYS_PTR, ADAYS_IDX, ACC_PTR, ACC_NODES, NODE_ACC, GAP, ADJ, STAY_OK, LINKABLE, DAY_WEEK,
 NIGHTS_LEFT, NIGHT_COST, HOME_DIST) = range(13)
# Indices into a state tuple ``S``.
ROUTES, RLEN, SLOC, ELOC, NDAY, NPOS, EN, ET, LN, LT, RCOST, DUR, CAP = range(13)


# ---------------------------------------------------------------------------- random numbers
@njit(cache=True, inline="always")
def rand01(rng: np.ndarray) -> float:
    return float(rand_u64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def randint(rng: np.ndarray, n: int) -> int:
    """Uniform integer in ``[0, n)``."""
    return int(rand01(rng) * n) if n > 0 else 0


# ---------------------------------------------------------------------------- state
def new_state(n_days: int, n_nodes: int, max_len: int, home: int = 0) -> tuple:
    """Empty routes, every day from home to home."""
    return (
        np.zeros((n_days, max_len + 1), dtype=np.int64),
        np.zeros(n_days, dtype=np.int64),
        np.full(n_days, home, dtype=np.int64),
        np.full(n_days, home, dtype=np.int64),
        np.full(n_nodes, -1, dtype=np.int64),
        np.full(n_nodes, -1, dtype=np.int64),
        np.zeros((n_days, max_len + 2), dtype=np.int64),
        np.zeros((n_days, max_len + 2), dtype=np.int64),
        np.zeros((n_days, max_len + 2), dtype=np.int64),
        np.zeros((n_days, max_len + 2), dtype=np.int64),
        np.zeros(n_days, dtype=np.int64),
        np.zeros(n_days, dtype=np.int64),
        np.zeros(n_days, dtype=np.int64),
    )


@njit(cache=True)
def copy_state(src: tuple, dst: tuple) -> None:
    dst[ROUTES][:] = src[ROUTES]
    dst[RLEN][:] = src[RLEN]
    dst[SLOC][:] = src[SLOC]
    dst[ELOC][:] = src[ELOC]
    dst[NDAY][:] = src[NDAY]
    dst[NPOS][:] = src[NPOS]
    dst[EN][:] = src[EN]
    dst[ET][:] = src[ET]
    dst[LN][:] = src[LN]
    dst[LT][:] = src[LT]
    dst[RCOST][:] = src[RCOST]
    dst[DUR][:] = src[DUR]
    dst[CAP][:] = src[CAP]


@njit(cache=True)
def refresh(P: tuple, S: tuple, d: int) -> bool:
    """Recompute day ``d``'s time arrays, travel cost and node positions; return feasibility.

    Also keeps ``DUR[d]`` (driving + visit minutes, no waiting) for the cheap capacity test
    of ``best_insertion``; ``CAP[d]`` (set once by ``set_capacity``) bounds it.
    """
    seq = S[ROUTES][d]
    m = S[RLEN][d]
    loc = P[LOC]
    cost = P[COST]
    travel = P[TRAVEL]
    svc = P[SVC]
    p = S[SLOC][d]
    c = 0
    dur = 0
    for i in range(m):
        v = seq[i]
        c += cost[p, loc[v]]
        dur += travel[p, loc[v]] + svc[v]
        p = loc[v]
        S[NPOS][v] = i
        S[NDAY][v] = d
    c += cost[p, S[ELOC][d]]
    dur += travel[p, S[ELOC][d]]
    S[RCOST][d] = c
    S[DUR][d] = dur
    return refresh_route(P, d, seq, m, S[SLOC][d], S[ELOC][d], S[EN][d], S[ET][d], S[LN][d],
                         S[LT][d])


def set_capacity(P: tuple, S: tuple) -> None:
    """``CAP[d]``: the most driving + visit minutes day ``d`` can hold.

    The lunch lies inside the day unless the day fits before its latest start or after its
    earliest end, so ``cap = max(we - ws - lm, le - ws, we - ls - lm)``, and never above the
    span bound.
    """
    ws, we, span, lunch = P[WS], P[WE], P[SPAN], P[LUNCH]
    ls, le, lm = int(lunch[0]), int(lunch[1]), int(lunch[2])
    for d in range(S[CAP].shape[0]):
        full = int(we[d] - ws[d])
        cap = full
        if lm > 0:
            cap = max(full - lm, le - int(ws[d]), int(we[d]) - ls - lm)
        S[CAP][d] = min(cap, full, int(span[d]))


@njit(cache=True)
def objective(P: tuple, X: tuple, S: tuple) -> int:
    """Travel cost + nights + penalties of unserved nodes (cost units)."""
    total = 0
    n_days = S[RLEN].shape[0]
    for d in range(n_days):
        total += S[RCOST][d]
        if S[ELOC][d] != 0:
            total += X[NIGHT_COST]
    pen = P[PEN]
    nday = S[NDAY]
    for v in range(nday.shape[0]):
        if nday[v] < 0:
            total += pen[v]
    return total


@njit(cache=True, inline="always")
def gap_ok(X: tuple, S: tuple, v: int, d: int) -> bool:
    """Gap mode: ``v`` on day ``d`` keeps ``gap`` days from its account's other visits."""
    g = X[GAP]
    if g <= 0:
        return True
    a = X[NODE_ACC][v]
    ptr = X[ACC_PTR]
    nodes = X[ACC_NODES]
    for k in range(ptr[a], ptr[a + 1]):
        u = nodes[k]
        if u == v:
            continue
        du = S[NDAY][u]
        if du >= 0 and abs(du - d) < g:
            return False
    return True


@njit(cache=True)
def best_insertion(P: tuple, X: tuple, S: tuple, v: int, rng: np.ndarray, blink: float,
                   buf: np.ndarray) -> tuple[int, int, int]:
    """Cheapest feasible ``(delta cost, day, position)`` for node ``v``; delta INF if none."""
    cost = P[COST]
    loc = P[LOC]
    travel = P[TRAVEL]
    q = loc[v]
    need = P[SVC][v]
    best = INF
    bd = -1
    bp = -1
    ptr = X[ADAYS_PTR]
    idx = X[ADAYS_IDX]
    max_len = S[ROUTES].shape[1] - 1
    routes = S[ROUTES]
    en = S[EN]
    et = S[ET]
    ln = S[LN]
    lt = S[LT]
    for k in range(ptr[v], ptr[v + 1]):
        d = idx[k]
        m = S[RLEN][d]
        if m >= max_len:
            continue
        if not gap_ok(X, S, v, d):
            continue
        free = S[CAP][d] - S[DUR][d] - need
        if free < -60:
            # Even a 60-minute shortcut (triangle inequality broken) would not make room.
            continue
        prev = S[SLOC][d]
        el = S[ELOC][d]
        for p in range(m + 1):
            nxt = el if p == m else loc[routes[d, p]]
            if travel[prev, q] + travel[q, nxt] - travel[prev, nxt] > free:
                prev = nxt
                continue
            delta = cost[prev, q] + cost[q, nxt] - cost[prev, nxt]
            if delta < best and (blink <= 0.0 or rand01(rng) >= blink):
                if insert_ok(P, d, routes, m, S[SLOC][d], el, en, et, ln, lt, p, v, buf):
                    best = delta
                    bd = d
                    bp = p
            prev = nxt
    return best, bd, bp


@njit(cache=True)
def do_insert(P: tuple, S: tuple, v: int, d: int, p: int) -> bool:
    seq = S[ROUTES][d]
    m = S[RLEN][d]
    for i in range(m, p, -1):
        seq[i] = seq[i - 1]
    seq[p] = v
    S[RLEN][d] = m + 1
    return refresh(P, S, d)


@njit(cache=True)
def remove_positions(S: tuple, d: int, lo: int, hi: int, app: np.ndarray,
                     out: np.ndarray, n_out: int) -> int:
    """Remove non-appointment nodes at positions ``lo..hi-1`` of day ``d`` (no refresh)."""
    seq = S[ROUTES][d]
    m = S[RLEN][d]
    w = 0
    for i in range(m):
        v = seq[i]
        if lo <= i < hi and not app[v]:
            out[n_out] = v
            n_out += 1
            S[NDAY][v] = -1
            S[NPOS][v] = -1
        else:
            seq[w] = v
            w += 1
    S[RLEN][d] = w
    return n_out


@njit(cache=True)
def nights_in_week(X: tuple, S: tuple, w: int) -> int:
    c = 0
    wk = X[DAY_WEEK]
    for d in range(wk.shape[0]):
        if wk[d] == w and S[ELOC][d] != 0:
            c += 1
    return c


# ---------------------------------------------------------------------------- recreate
@njit(cache=True, inline="always")
def near_legs(P: tuple, X: tuple, v: int) -> float:
    """Minutes of the two legs joining ``v`` to its nearest other location (or home)."""
    loc = P[LOC]
    travel = P[TRAVEL]
    q = loc[v]
    best = float(travel[0, q] + travel[q, 0])
    adj = X[ADJ]
    for k in range(adj.shape[1]):
        u = adj[v, k]
        if u < 0:
            break
        if loc[u] != q:
            t = float(travel[loc[u], q] + travel[q, loc[u]])
            if t < best:
                best = t
            break
    return best


@njit(cache=True)
def order_candidates(P: tuple, X: tuple, cand: np.ndarray, nc: int, how: int,
                     rng: np.ndarray) -> None:
    """Sort ``cand[:nc]`` in place: 0 random, 1 value desc, 2 far first, 3 close first,
    4 value per minute desc (visit minutes plus the legs to the nearest other location)."""
    keys = np.empty(nc, dtype=np.float64)
    pen = P[PEN]
    hd = X[HOME_DIST]
    app = P[APP]
    for i in range(nc):
        v = cand[i]
        r = rand01(rng)
        if how == 0:
            k = r
        elif how == 1:
            k = -float(pen[v]) * (1.0 + 0.1 * r)
        elif how == 2:
            k = -float(hd[v]) - r
        elif how == 3:
            k = float(hd[v]) + r
        else:
            k = -float(pen[v]) / (float(P[SVC][v]) + near_legs(P, X, v) + 1.0) \
                * (1.0 + 0.1 * r)
        if app[v]:
            k = -1e30
        keys[i] = k
    order = np.argsort(keys)
    tmp = cand[:nc].copy()
    for i in range(nc):
        cand[i] = tmp[order[i]]


@njit(cache=True)
def recreate(P: tuple, X: tuple, S: tuple, cand: np.ndarray, nc: int, rng: np.ndarray,
             blink: float, buf: np.ndarray) -> None:
    """Insert each candidate (in order) at its cheapest feasible position, if any."""
    for i in range(nc):
        v = cand[i]
        if S[NDAY][v] >= 0:
            continue
        _, d, p = best_insertion(P, X, S, v, rng, blink, buf)
        if d >= 0:
            if not do_insert(P, S, v, d, p):
                # The O(K) test and the full refresh disagree only on the span bound; undo.
                seq = S[ROUTES][d]
                m = S[RLEN][d]
                for k in range(p, m - 1):
                    seq[k] = seq[k + 1]
                S[RLEN][d] = m - 1
                S[NDAY][v] = -1
                S[NPOS][v] = -1
                refresh(P, S, d)


@njit(cache=True)
def construct(P: tuple, X: tuple, S: tuple, rng: np.ndarray, how: int, buf: np.ndarray
              ) -> None:
    """Greedy start: every unserved node (appointments first) in the given order."""
    v_count = S[NDAY].shape[0]
    cand = np.empty(v_count, dtype=np.int64)
    nc = 0
    for v in range(v_count):
        if S[NDAY][v] < 0:
            cand[nc] = v
            nc += 1
    order_candidates(P, X, cand, nc, how, rng)
    recreate(P, X, S, cand, nc, rng, 0.0, buf)


# ---------------------------------------------------------------------------- stays
@njit(cache=True)
def set_nights(P: tuple, X: tuple, S: tuple, lo: int, hi: int, where: int,
               removed: np.ndarray, n_rem: int) -> tuple[int, bool]:
    """Sleep at location ``where`` (0 = home) after days ``lo..hi``; empty days lo..hi + 1.

    Emptying the days (rather than trimming them until feasible) measured clearly better:
    recreate then rebuilds the trip around the stay.
    """
    app = P[APP]
    for dd in range(lo, hi + 1):
        S[ELOC][dd] = where
        S[SLOC][dd + 1] = where
    ok = True
    for dd in range(lo, hi + 2):
        n_rem = remove_positions(S, dd, 0, S[RLEN][dd], app, removed, n_rem)
        if not refresh(P, S, dd):
            ok = False
    return n_rem, ok


@njit(cache=True)
def polish_stay(P: tuple, X: tuple, S: tuple, d: int) -> None:
    """Move the stay after day ``d`` to the last visit of d or the first of d + 1 if cheaper."""
    cur = S[ELOC][d]
    if cur == 0:
        return
    loc = P[LOC]
    base = S[RCOST][d] + S[RCOST][d + 1]
    best = cur
    opts = np.full(2, -1, dtype=np.int64)
    if S[RLEN][d] > 0:
        opts[0] = loc[S[ROUTES][d, S[RLEN][d] - 1]]
    if S[RLEN][d + 1] > 0:
        opts[1] = loc[S[ROUTES][d + 1, 0]]
    for k in range(2):
        o = opts[k]
        if o < 0 or o == cur or not X[STAY_OK][o]:
            continue
        S[ELOC][d] = o
        S[SLOC][d + 1] = o
        ok = refresh(P, S, d) and refresh(P, S, d + 1)
        c = S[RCOST][d] + S[RCOST][d + 1]
        if ok and c < base:
            base = c
            best = o
    S[ELOC][d] = best
    S[SLOC][d + 1] = best
    refresh(P, S, d)
    refresh(P, S, d + 1)


@njit(cache=True)
def stay_move(P: tuple, X: tuple, S: tuple, rng: np.ndarray, removed: np.ndarray,
              touched: np.ndarray, p_unserved: float) -> tuple[int, int, int]:
    """Add a trip (1..k nights at one remote location), or drop a night or a whole trip.

    The days of the changed nights and the day after are emptied for recreate. Returns
    ``(n removed, n touched days, ok)``; ``ok = 0`` when no move applies or a day with an
    appointment cannot take the new start or end.
    """
    n_days = S[RLEN].shape[0]
    link = X[LINKABLE]
    stay_ok = X[STAY_OK]
    week = X[DAY_WEEK]
    left = X[NIGHTS_LEFT]
    loc = P[LOC]
    v_count = loc.shape[0]
    n_stays = 0
    for d in range(n_days):
        if S[ELOC][d] != 0 and link[d]:
            n_stays += 1
    if n_stays > 0 and rand01(rng) < 0.4:
        k = randint(rng, n_stays)
        for d in range(n_days):
            if S[ELOC][d] != 0 and link[d]:
                if k == 0:
                    lo = d
                    hi = d
                    if rand01(rng) < 0.5:
                        while lo > 0 and S[ELOC][lo - 1] != 0 and link[lo - 1]:
                            lo -= 1
                        while hi + 1 < n_days and S[ELOC][hi + 1] != 0 and link[hi + 1]:
                            hi += 1
                    n_rem, ok = set_nights(P, X, S, lo, hi, 0, removed, 0)
                    nt = 0
                    for dd in range(lo, hi + 2):
                        touched[nt] = dd
                        nt += 1
                    return n_rem, nt, 1 if ok else 0
                k -= 1
        return 0, 0, 0
    # The stay: a remote visit, mostly an unserved one (value left out there).
    want_unserved = rand01(rng) < p_unserved
    for attempt in range(40):
        u = randint(rng, v_count)
        if not stay_ok[loc[u]]:
            continue
        if want_unserved and attempt < 30 and S[NDAY][u] >= 0:
            continue
        # Candidate trips (first night d, nights L) that touch one of u's days.
        n_opt = 0
        for pick in range(2):
            if pick == 1:
                if n_opt == 0:
                    break
                k = randint(rng, n_opt)
            for d in range(n_days - 1):
                if not link[d]:
                    continue
                w = week[d]
                used = 0
                for dd in range(n_days):
                    if week[dd] == w and S[ELOC][dd] != 0:
                        used += 1
                length = 0
                while d + length < n_days - 1 and link[d + length] and \
                        week[d + length] == w:
                    dd = d + length
                    if S[ELOC][dd] == 0:
                        used += 1
                    if used > left[w]:
                        break
                    length += 1
                    hit = False
                    for x in range(d, dd + 2):
                        if P[ALLOWED][u, x]:
                            hit = True
                    if not hit:
                        continue
                    if pick == 1:
                        if k == 0:
                            n_rem, ok = set_nights(P, X, S, d, dd, loc[u], removed, 0)
                            nt = 0
                            for x in range(d, dd + 2):
                                touched[nt] = x
                                nt += 1
                            # Free the stay's own node too, so the trip is built around it;
                            # it goes first: the caller seeds the extra candidates with it.
                            du = S[NDAY][u]
                            if du >= 0 and not P[APP][u]:
                                pu = S[NPOS][u]
                                n_rem = remove_positions(S, du, pu, pu + 1, P[APP], removed,
                                                         n_rem)
                                refresh(P, S, du)
                                touched[nt] = du
                                nt += 1
                            elif du < 0:
                                seen = False
                                for x in range(n_rem):
                                    if removed[x] == u:
                                        seen = True
                                if not seen:
                                    removed[n_rem] = u
                                    n_rem += 1
                            for x in range(n_rem):
                                if removed[x] == u:
                                    removed[x] = removed[0]
                                    removed[0] = u
                            return n_rem, nt, 1 if ok else 0
                        k -= 1
                    else:
                        n_opt += 1
    return 0, 0, 0


# ---------------------------------------------------------------------------- the search
@njit(cache=True)
def ruin(P: tuple, X: tuple, S: tuple, rng: np.ndarray, seed: int, c_bar: float,
         l_max: float, allow: np.ndarray, cand: np.ndarray, nc: int, touched: np.ndarray,
         nt: int) -> tuple[int, int, bool]:
    """Cut strings of consecutive visits from days near ``seed`` (SISR string removal).

    Walks ``seed`` and its nearest nodes; from each day with ``allow[d]`` that is not cut yet,
    a string of up to ``min(l_max, mean route length)`` visits containing the node goes to
    ``cand``; stops after ``k_s`` days (mean ``c_bar`` removed visits). Returns the new counts
    and whether every cut day is still feasible.
    """
    n_days = S[RLEN].shape[0]
    app = P[APP]
    adj = X[ADJ]
    served = 0
    used = 0
    for d in range(n_days):
        served += S[RLEN][d]
        if S[RLEN][d] > 0:
            used += 1
    ls_max = min(l_max, served / max(used, 1))
    ks = int(1.0 + rand01(rng) * (4.0 * c_bar / (1.0 + ls_max) - 1.0))
    if ks < 1:
        ks = 1
    ok = True
    cut = 0
    start_nt = nt
    for k in range(-1, adj.shape[1]):
        c = seed if k < 0 else adj[seed, k]
        if c < 0:
            break
        d = S[NDAY][c]
        if d < 0 or not allow[d] or app[c]:
            continue
        done = False
        for i in range(start_nt, nt):
            if touched[i] == d:
                done = True
        if done:
            continue
        m = S[RLEN][d]
        length = int(1.0 + rand01(rng) * min(float(m), ls_max))
        if length > m:
            length = m
        lo = S[NPOS][c] - randint(rng, length)
        if lo < 0:
            lo = 0
        if lo + length > m:
            lo = m - length
        nc = remove_positions(S, d, lo, lo + length, app, cand, nc)
        touched[nt] = d
        nt += 1
        cut += 1
        if not refresh(P, S, d):
            ok = False
        if cut >= ks:
            break
    return nc, nt, ok


@njit(cache=True)
def add_unserved_near(X: tuple, S: tuple, seed: int, cand: np.ndarray, nc: int,
                      extra: int) -> int:
    """Append ``seed`` (if unserved) and up to ``extra`` unserved nodes nearest to it."""
    adj = X[ADJ]
    added = 0
    for k in range(-1, adj.shape[1]):
        if added >= extra:
            break
        c = seed if k < 0 else adj[seed, k]
        if c < 0:
            break
        if S[NDAY][c] >= 0:
            continue
        present = False
        for i in range(nc):
            if cand[i] == c:
                present = True
                break
        if not present:
            cand[nc] = c
            nc += 1
            if k >= 0:
                added += 1
    return nc


@njit(cache=True)
def rebuild(P: tuple, X: tuple, S: tuple, rng: np.ndarray, cand: np.ndarray, nc: int,
            blink: float, buf: np.ndarray) -> None:
    """Recreate: candidates in a random one of the five orders (weights 4/4/2/1/4)."""
    r = rand01(rng) * 15.0
    how = 0 if r < 4.0 else 1 if r < 8.0 else 2 if r < 10.0 else 3 if r < 11.0 else 4
    order_candidates(P, X, cand, nc, how, rng)
    recreate(P, X, S, cand, nc, rng, blink, buf)


@njit(cache=True)
def target_ruin(P: tuple, X: tuple, S: tuple, rng: np.ndarray, c_bar: float, l_max: float,
                allow: np.ndarray, cand: np.ndarray, touched: np.ndarray
                ) -> tuple[int, int, int, bool]:
    """Make room for an unserved visit ``u`` (the better of two random ones by penalty).

    Cuts a string from one of ``u``'s allowed days (near where ``u`` would go) and strings
    from days near the visits closest to ``u`` (SISR walk from the nearest served one).
    Returns ``(u, n cand, n touched, ok)``; ``u = -1`` when every visit is served.
    """
    v_count = S[NDAY].shape[0]
    pen = P[PEN]
    u = -1
    for _ in range(2):
        w = -1
        for _t in range(16):
            x = randint(rng, v_count)
            if S[NDAY][x] < 0:
                w = x
                break
        if w >= 0 and (u < 0 or pen[w] > pen[u]):
            u = w
    if u < 0:
        return -1, 0, 0, True
    # A random allowed day of u: cut a string there, around the position nearest to u.
    ptr = X[ADAYS_PTR]
    idx = X[ADAYS_IDX]
    n_allowed = ptr[u + 1] - ptr[u]
    nc = 0
    nt = 0
    ok = True
    app = P[APP]
    loc = P[LOC]
    travel = P[TRAVEL]
    if n_allowed > 0:
        d = idx[ptr[u] + randint(rng, n_allowed)]
        m = S[RLEN][d]
        if m > 0 and gap_ok(X, S, u, d):
            q = loc[u]
            bp = 0
            bt = INF
            for i in range(m):
                t = travel[loc[S[ROUTES][d, i]], q]
                if t < bt:
                    bt = t
                    bp = i
            length = int(1.0 + rand01(rng) * min(float(m), 2.0 * l_max))
            if length > m:
                length = m
            lo = bp - randint(rng, length)
            if lo < 0:
                lo = 0
            if lo + length > m:
                lo = m - length
            nc = remove_positions(S, d, lo, lo + length, app, cand, nc)
            touched[nt] = d
            nt += 1
            if not refresh(P, S, d):
                ok = False
    # And the usual string removal from the served visit nearest to u.
    adj = X[ADJ]
    seed = -1
    for k in range(adj.shape[1]):
        c = adj[u, k]
        if c < 0:
            break
        if S[NDAY][c] >= 0:
            seed = c
            break
    if seed >= 0 and rand01(rng) < 0.5:
        nc, nt, ok2 = ruin(P, X, S, rng, seed, c_bar * 0.5, l_max, allow, cand, nc, touched,
                           nt)
        ok = ok and ok2
    return u, nc, nt, ok


@njit(cache=True)
def search_chunk(P: tuple, X: tuple, S: tuple, C: tuple, B: tuple, rng: np.ndarray,
                 n_iter: int, temp0: float, temp1: float, params: np.ndarray,
                 stats: np.ndarray) -> tuple[int, int]:
    """Run ``n_iter`` ruin-and-recreate iterations; ``S`` is scratch, ``C`` current, ``B`` best.

    ``params`` = (c_bar, l_max, p_stay, blink, n_extra, p_unserved, p_target).
    ``stats`` accumulates (iterations, accepted, improved best, stay moves, stay moves
    accepted, stay moves that improved the best). Returns the current and best objectives.
    """
    c_bar = params[0]
    l_max = params[1]
    p_stay = params[2]
    blink = params[3]
    n_extra = int(params[4])
    p_target = params[6]
    v_count = S[NDAY].shape[0]
    n_days = S[RLEN].shape[0]
    cand = np.empty(v_count + 1, dtype=np.int64)
    touched = np.empty(n_days + 2, dtype=np.int64)
    allow = np.ones(n_days, dtype=np.bool_)
    buf = np.empty(S[ROUTES].shape[1] + 2, dtype=np.int64)
    has_stays = False
    for d in range(n_days):
        if X[LINKABLE][d]:
            has_stays = True
    any_stay_node = False
    for v in range(v_count):
        if X[STAY_OK][P[LOC][v]]:
            any_stay_node = True
    has_stays = has_stays and any_stay_node
    cur = objective(P, X, C)
    best = objective(P, X, B)
    if v_count == 0:
        return cur, best
    for it in range(n_iter):
        frac = it / max(n_iter, 1)
        temp = temp0 * (temp1 / temp0) ** frac if temp0 > 0 and temp1 > 0 else 0.0
        nt = 0
        nc = 0
        seed = -1
        ok = True
        extra = n_extra
        is_stay = has_stays and rand01(rng) < p_stay
        target = -1
        if not is_stay and p_target > 0 and rand01(rng) < p_target:
            target, nc, nt, ok = target_ruin(P, X, S, rng, c_bar, l_max, allow, cand,
                                             touched)
        if target >= 0:
            seed = target
            if ok:
                # The target goes first; the cut visits and its unserved neighbours follow.
                _, d, p = best_insertion(P, X, S, target, rng, 0.0, buf)
                if d >= 0 and not do_insert(P, S, target, d, p):
                    ok = False
        elif is_stay:
            stats[3] += 1
            nc, nt, okk = stay_move(P, X, S, rng, cand, touched, params[5])
            ok = okk == 1 and nt > 0
            if nc > 0:
                seed = cand[0]
            # Emptied trip days have room for many visits around the stay.
            extra = 4 * n_extra
        else:
            # Seed: a random served node (or any node when nothing is served).
            for _ in range(8):
                seed = randint(rng, v_count)
                if S[NDAY][seed] >= 0:
                    break
            nc, nt, ok = ruin(P, X, S, rng, seed, c_bar, l_max, allow, cand, 0, touched, 0)
        if ok:
            # Unserved nodes near the seed compete for the freed time.
            if seed >= 0:
                nc = add_unserved_near(X, S, seed, cand, nc, extra)
            rebuild(P, X, S, rng, cand, nc, blink, buf)
            for k in range(nt):
                d = touched[k]
                if d + 1 < n_days and S[ELOC][d] != 0:
                    polish_stay(P, X, S, d)
            new = objective(P, X, S)
            stats[0] += 1
            accept = new < cur or (temp > 0 and new < cur - temp * np.log(rand01(rng) + 1e-300))
            if accept:
                copy_state(S, C)
                cur = new
                stats[1] += 1
                if is_stay:
                    stats[4] += 1
                if new < best:
                    copy_state(S, B)
                    best = new
                    stats[2] += 1
                    if is_stay:
                        stats[5] += 1
                continue
        copy_state(C, S)
    return cur, best
