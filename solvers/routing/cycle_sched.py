"""Day schedules with time windows and a lunch break: feasibility, insertion tests, times.

A day route is ``start -> v_1 -> ... -> v_m -> end`` on day ``d``. Visit ``v_i`` starts at
``s_i`` inside one of its start windows ``[lo_k, hi_k]`` (see ``cycle_prep``), lasts
``svc_i`` minutes, and the legs take ``t(p, q)`` whole minutes. The rep may wait anywhere.
The lunch break of ``lm`` minutes starts at ``b`` with ``ls <= b <= le`` and lies in one gap:
before leaving (``b + lm <= departure``), between two stops (the gap holds the leg *and* the
break), or after coming back (``b >= arrival``). Departure ``>= ws``, arrival ``<= we``.

Every position carries two states: lunch not yet taken (N) and taken (T).

* Forward, earliest service start ``E_N(i), E_T(i)``. From departures ``x_N, x_T``:
  ``a_N = x_N + t``, ``a_T = min(x_T + t, max(x_N + t, ls) + lm  if max(x_N, ls) <= le)``;
  ``E = first window start >= a``.
* Backward, latest service start ``L_N(i), L_T(i)`` from the latest arrivals at the end
  (``N: min(we, le)`` so lunch fits after, ``T: we``). Departure from ``i`` at ``x`` in state
  N reaches a next stop that must start by ``y_N, y_T`` iff ``x <= y_N - t`` or
  (``y_T - lm >= ls`` and ``x <= min(le, y_T - lm - t)``); in state T iff ``x <= y_T - t``.
  ``L = last window start <= latest departure - svc``.

Waiting is allowed, so feasibility is monotone in time and inserting ``v`` between positions
``p - 1`` and ``p`` is feasible iff the earliest arrival at ``p`` in some state is not later than
its latest start in that state: an O(K) test. The span bound (``end - start <= span``, from
``max_work_min``) is not monotone; when it binds, candidates are evaluated in full (O(m)).

All times are int64 minutes from midnight of the day; ``INF`` / ``NEG`` mark impossible.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

INF = np.int64(1) << np.int64(40)
NEG = -INF

# Indices into the instance tuple ``P`` (see ``pack_instance``).
TRAVEL, COST, LOC, SVC, PEN, APP, ALLOWED, WLO, WHI, WS, WE, SPAN, LUNCH = range(13)


_FIELDS = ("travel", "cost", "node_loc", "node_svc", "node_pen", "node_app", "allowed",
           "win_lo", "win_hi", "day_ws", "day_we", "day_span", "lunch")


def pack_instance(inst: Any) -> tuple:
    """The numba view of a ``cycle_prep.Instance``: a tuple of arrays in the order above
    (bool for ``node_app`` and ``allowed``, int64 for the rest), always C-contiguous and
    writeable: a read-only input array would be a new numba type, compiled anew (and not by
    ``warm_up``)."""
    return tuple(np.require(getattr(inst, f), dtype=np.bool_
                            if f in ("node_app", "allowed") else np.int64,
                            requirements=("C", "W"))
                 for f in _FIELDS)


@njit(cache=True, inline="always")
def first_start(a: int, lo: np.ndarray, hi: np.ndarray, v: int, d: int) -> int:
    """Earliest start ``>= a`` in node ``v``'s windows on day ``d`` (sorted by ``lo``, ``-1``
    padded), else INF."""
    for k in range(lo.shape[2]):
        w = lo[v, d, k]
        if w < 0:
            return INF
        if hi[v, d, k] >= a:
            return a if a > w else w
    return INF


@njit(cache=True, inline="always")
def latest_start(b: int, lo: np.ndarray, hi: np.ndarray, v: int, d: int) -> int:
    """Latest start ``<= b`` in node ``v``'s windows on day ``d``, else NEG."""
    best = NEG
    for k in range(lo.shape[2]):
        w = lo[v, d, k]
        if w < 0:
            break
        if w <= b:
            h = hi[v, d, k]
            s = h if h < b else b
            if s > best:
                best = s
    return best


@njit(cache=True, inline="always")
def lunch_transit(x_n: int, t: int, lunch: np.ndarray) -> int:
    """Earliest arrival after leaving at ``x_n`` (lunch not taken) with lunch on the way."""
    lm = lunch[2]
    if x_n >= INF or lm <= 0:
        return INF
    ls = lunch[0]
    b = x_n if x_n > ls else ls
    if b > lunch[1]:
        return INF
    a = x_n + t
    if a < ls:
        a = ls
    return a + lm


@njit(cache=True, inline="always")
def back_transit(y_n: int, y_t: int, t: int, lunch: np.ndarray) -> tuple[int, int]:
    """Latest departures (N, T) before a leg of ``t`` to a stop that must start by y_N / y_T."""
    d_t = y_t - t if y_t > NEG else NEG
    d_n = y_n - t if y_n > NEG else NEG
    lm = lunch[2]
    if lm > 0 and y_t > NEG and y_t - lm >= lunch[0]:
        alt = y_t - lm - t
        if alt > lunch[1]:
            alt = lunch[1]
        if alt > d_n:
            d_n = alt
    return d_n, d_t


@njit(cache=True, inline="always")
def start_departures(ws: int, lunch: np.ndarray) -> tuple[int, int]:
    """Earliest departures from the start in states N and T (T: lunch before leaving)."""
    if lunch[2] <= 0:
        return INF, ws
    x_t = lunch[0] + lunch[2]
    if x_t < ws:
        x_t = ws
    return ws, x_t


@njit(cache=True, inline="always")
def end_latest(we: int, lunch: np.ndarray) -> tuple[int, int]:
    """Latest arrivals at the end in states N (lunch after coming back) and T."""
    if lunch[2] <= 0:
        return NEG, we
    y_n = lunch[1] if lunch[1] < we else we
    return y_n, we


@njit(cache=True)
def eval_seq(P: tuple, d: int, seq: np.ndarray, m: int, sloc: int, eloc: int
             ) -> tuple[bool, int, int]:
    """Full evaluation of a day route.

    Returns
    -------
    feasible, earliest end, latest departure that still reaches the end by that time.
    """
    travel = P[TRAVEL]
    loc = P[LOC]
    svc = P[SVC]
    wlo = P[WLO]
    whi = P[WHI]
    lunch = P[LUNCH]
    ws = P[WS][d]
    we = P[WE][d]
    x_n, x_t = start_departures(ws, lunch)
    x_n0, x_t0 = x_n, x_t
    p = sloc
    for i in range(m):
        v = seq[i]
        q = loc[v]
        t = travel[p, q]
        a_n = x_n + t if x_n < INF else INF
        a_t = x_t + t if x_t < INF else INF
        alt = lunch_transit(x_n, t, lunch)
        if alt < a_t:
            a_t = alt
        e_n = first_start(a_n, wlo, whi, v, d)
        e_t = first_start(a_t, wlo, whi, v, d)
        if e_n >= INF and e_t >= INF:
            return False, INF, NEG
        x_n = e_n + svc[v] if e_n < INF else INF
        x_t = e_t + svc[v] if e_t < INF else INF
        p = q
    t = travel[p, eloc]
    y_n, y_t = end_latest(we, lunch)
    end = INF
    if x_n < INF and x_n + t <= y_n:
        end = x_n + t
    if x_t < INF and x_t + t <= y_t and x_t + t < end:
        end = x_t + t
    alt = lunch_transit(x_n, t, lunch)
    if alt <= y_t and alt < end:
        end = alt
    if end >= INF:
        return False, INF, NEG
    # Backward with deadline ``end``: the latest departure that still arrives by then.
    y_n, y_t = end_latest(end, lunch)
    q = eloc
    for i in range(m - 1, -1, -1):
        v = seq[i]
        pl = loc[v]
        dn, dt = back_transit(y_n, y_t, travel[pl, q], lunch)
        y_n = latest_start(dn - svc[v], wlo, whi, v, d) if dn > NEG else NEG
        y_t = latest_start(dt - svc[v], wlo, whi, v, d) if dt > NEG else NEG
        q = pl
    dn, dt = back_transit(y_n, y_t, travel[sloc, q], lunch)
    start = NEG
    if x_n0 < INF and dn >= x_n0:
        start = dn
    if dt >= x_t0 and dt > start:
        start = dt
    if start <= NEG:
        return False, INF, NEG
    return True, end, start


@njit(cache=True)
def refresh_route(P: tuple, d: int, seq: np.ndarray, m: int, sloc: int, eloc: int,
                  en: np.ndarray, et: np.ndarray, ln: np.ndarray, lt: np.ndarray) -> bool:
    """Fill the forward (``en, et``) and backward (``ln, lt``) arrays of a route.

    Entry ``i`` is position ``i``; entry ``m`` holds the end (forward: arrival, backward:
    latest arrival). Returns feasibility (including the span bound).
    """
    travel = P[TRAVEL]
    loc = P[LOC]
    svc = P[SVC]
    wlo = P[WLO]
    whi = P[WHI]
    lunch = P[LUNCH]
    ws = P[WS][d]
    we = P[WE][d]
    x_n, x_t = start_departures(ws, lunch)
    p = sloc
    for i in range(m):
        v = seq[i]
        q = loc[v]
        t = travel[p, q]
        a_n = x_n + t if x_n < INF else INF
        a_t = x_t + t if x_t < INF else INF
        alt = lunch_transit(x_n, t, lunch)
        if alt < a_t:
            a_t = alt
        e_n = first_start(a_n, wlo, whi, v, d)
        e_t = first_start(a_t, wlo, whi, v, d)
        en[i] = e_n
        et[i] = e_t
        x_n = e_n + svc[v] if e_n < INF else INF
        x_t = e_t + svc[v] if e_t < INF else INF
        p = q
    t = travel[p, eloc]
    en[m] = x_n + t if x_n < INF else INF
    a_t = x_t + t if x_t < INF else INF
    alt = lunch_transit(x_n, t, lunch)
    et[m] = alt if alt < a_t else a_t
    y_n, y_t = end_latest(we, lunch)
    ln[m] = y_n
    lt[m] = y_t
    feasible = en[m] <= y_n or et[m] <= y_t
    q = eloc
    for i in range(m - 1, -1, -1):
        v = seq[i]
        pl = loc[v]
        dn, dt = back_transit(y_n, y_t, travel[pl, q], lunch)
        y_n = latest_start(dn - svc[v], wlo, whi, v, d) if dn > NEG else NEG
        y_t = latest_start(dt - svc[v], wlo, whi, v, d) if dt > NEG else NEG
        ln[i] = y_n
        lt[i] = y_t
        q = pl
    if feasible and P[SPAN][d] < we - ws:
        ok, e, s = eval_seq(P, d, seq, m, sloc, eloc)
        feasible = ok and e - s <= P[SPAN][d]
    return feasible


@njit(cache=True, inline="always")
def insert_ok(P: tuple, d: int, routes: np.ndarray, m: int, sloc: int, eloc: int,
              en: np.ndarray, et: np.ndarray, ln: np.ndarray, lt: np.ndarray,
              p: int, v: int, buf: np.ndarray) -> bool:
    """Whether inserting node ``v`` before position ``p`` (0..m) of day ``d`` stays feasible.

    ``routes``, ``en``, ``et``, ``ln``, ``lt`` are the state's 2-D arrays (row ``d`` is used);
    ``buf`` is scratch of length ``>= m + 1`` for the span check.
    """
    travel = P[TRAVEL]
    loc = P[LOC]
    svc = P[SVC]
    lunch = P[LUNCH]
    wlo = P[WLO]
    whi = P[WHI]
    if p == 0:
        x_n, x_t = start_departures(P[WS][d], lunch)
        pl = sloc
    else:
        u = routes[d, p - 1]
        x_n = en[d, p - 1] + svc[u] if en[d, p - 1] < INF else INF
        x_t = et[d, p - 1] + svc[u] if et[d, p - 1] < INF else INF
        pl = loc[u]
    q = loc[v]
    t = travel[pl, q]
    a_n = x_n + t if x_n < INF else INF
    a_t = x_t + t if x_t < INF else INF
    alt = lunch_transit(x_n, t, lunch)
    if alt < a_t:
        a_t = alt
    e_n = first_start(a_n, wlo, whi, v, d)
    e_t = first_start(a_t, wlo, whi, v, d)
    if e_n >= INF and e_t >= INF:
        return False
    x_n = e_n + svc[v] if e_n < INF else INF
    x_t = e_t + svc[v] if e_t < INF else INF
    nl = eloc if p == m else loc[routes[d, p]]
    t = travel[q, nl]
    a_n = x_n + t if x_n < INF else INF
    a_t = x_t + t if x_t < INF else INF
    alt = lunch_transit(x_n, t, lunch)
    if alt < a_t:
        a_t = alt
    if not (a_n <= ln[d, p] or a_t <= lt[d, p]):
        return False
    if P[SPAN][d] < P[WE][d] - P[WS][d]:
        for i in range(p):
            buf[i] = routes[d, i]
        buf[p] = v
        for i in range(p, m):
            buf[i + 1] = routes[d, i]
        ok, e, s = eval_seq(P, d, buf, m + 1, sloc, eloc)
        return ok and e - s <= P[SPAN][d]
    return True


@njit(cache=True)
def schedule(P: tuple, d: int, seq: np.ndarray, m: int, sloc: int, eloc: int,
             out: np.ndarray) -> tuple[bool, int, int, int]:
    """Concrete times of a feasible route: end as early as possible, leave as late as that allows.

    ``out`` (m, 3) receives arrival, start and departure per visit. Returns ``(ok, day start,
    day end, lunch start)``; the lunch start is ``NEG`` when there is no lunch.
    """
    travel = P[TRAVEL]
    loc = P[LOC]
    svc = P[SVC]
    wlo = P[WLO]
    whi = P[WHI]
    lunch = P[LUNCH]
    lm = lunch[2]
    ok, deadline, start = eval_seq(P, d, seq, m, sloc, eloc)
    if not ok:
        return False, 0, 0, 0
    # Which start state allows leaving at ``start`` (backward bounds for the deadline).
    y_n, y_t = end_latest(deadline, lunch)
    q = eloc
    for i in range(m - 1, -1, -1):
        v = seq[i]
        pl = loc[v]
        dn, dt = back_transit(y_n, y_t, travel[pl, q], lunch)
        y_n = latest_start(dn - svc[v], wlo, whi, v, d) if dn > NEG else NEG
        y_t = latest_start(dt - svc[v], wlo, whi, v, d) if dt > NEG else NEG
        q = pl
    dn, dt = back_transit(y_n, y_t, travel[sloc, q], lunch)
    x_n0, _ = start_departures(P[WS][d], lunch)
    use_n = x_n0 < INF and start >= x_n0 and dn >= start
    x_n = start if use_n else INF
    x_t = INF if use_n else start
    # Forward from that state; via_n[i]: the earliest T time at stop i (m = end) took lunch on
    # the leg into it.
    e_n = np.empty(m, dtype=np.int64)
    e_t = np.empty(m, dtype=np.int64)
    via_n = np.zeros(m + 1, dtype=np.bool_)
    p = sloc
    for i in range(m):
        v = seq[i]
        qq = loc[v]
        t = travel[p, qq]
        a_n = x_n + t if x_n < INF else INF
        a_t = x_t + t if x_t < INF else INF
        alt = lunch_transit(x_n, t, lunch)
        if alt < a_t:
            a_t = alt
            via_n[i] = True
        e_n[i] = first_start(a_n, wlo, whi, v, d)
        e_t[i] = first_start(a_t, wlo, whi, v, d)
        x_n = e_n[i] + svc[v] if e_n[i] < INF else INF
        x_t = e_t[i] + svc[v] if e_t[i] < INF else INF
        p = qq
    t = travel[p, eloc]
    end_n = x_n + t if x_n < INF else INF
    end_t = x_t + t if x_t < INF else INF
    alt = lunch_transit(x_n, t, lunch)
    if alt < end_t:
        end_t = alt
        via_n[m] = True
    y_n, y_t = end_latest(deadline, lunch)
    # Backtrack the lunch state of every stop: taken[i] = lunch before stop i (m = end).
    taken = np.zeros(m + 1, dtype=np.bool_)
    taken[m] = not (lm > 0 and end_n <= y_n)
    lunch_leg = -1  # stop index whose incoming leg holds the lunch
    for i in range(m, -1, -1):
        if not taken[i]:
            if i > 0:
                taken[i - 1] = False
            continue
        if via_n[i]:
            lunch_leg = i
            if i > 0:
                taken[i - 1] = False
        elif i > 0:
            taken[i - 1] = True
    lunch_start = NEG
    if lm > 0 and taken[m] and lunch_leg < 0:
        # Lunch at home before leaving.
        b = lunch[1]
        if start - lm < b:
            b = start - lm
        lunch_start = b
    # Replay the chosen path.
    x = start
    p = sloc
    for i in range(m + 1):
        nl = eloc if i == m else loc[seq[i]]
        t = travel[p, nl]
        arrive = x + t
        ready = arrive
        if i == lunch_leg:
            b = x if x > lunch[0] else lunch[0]
            lunch_start = b
            if b < x + t:
                arrive = x + t + lm
                ready = arrive
            else:
                ready = b + lm
        if i == m:
            x = arrive
            break
        v = seq[i]
        s = first_start(ready, wlo, whi, v, d)
        out[i, 0] = arrive
        out[i, 1] = s
        out[i, 2] = s + svc[v]
        x = s + svc[v]
        p = nl
    day_end = x
    if lm > 0 and not taken[m]:
        lunch_start = day_end if day_end > lunch[0] else lunch[0]
    return True, start, day_end, lunch_start
