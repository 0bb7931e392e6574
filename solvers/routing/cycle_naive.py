"""The plan a rep makes by hand: the baseline every planner result is compared against.

Rules (deliberately simple, like a spreadsheet plan):

1. Appointments go to their day first.
2. Then accounts by value, highest first, and each account's visits in order ``j = 0, 1, ...``:
   the visit goes to the *first* day of its allowed days (spacing window, account open,
   reachable, not frozen) that still has room.
3. A day "has room" if its visits in nearest-neighbour order (from home, always to the nearest
   unvisited account) still make a feasible day: opening hours, lunch, working hours and
   ``max_work_min`` (timed as in ``cycle_sched``).
4. No overnight stays (a day that starts at a frozen stay keeps that start).

Whatever does not fit is dropped with reason ``no_time`` (or the pre-solve reasons of
``cycle_prep``).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit

from solvers.routing.cycle_plan import CallCyclePlan
from solvers.routing.cycle_prep import build_instance
from solvers.routing.cycle_problem import CallCycleProblem
from solvers.routing.cycle_sched import LOC, TRAVEL, eval_seq, pack_instance

__all__ = ["plan_naive"]


@njit(cache=True)
def _nn_order(P: tuple, d: int, nodes: np.ndarray, m: int, sloc: int, out: np.ndarray) -> None:
    """Nearest-neighbour order of ``nodes[:m]`` from ``sloc`` into ``out``."""
    travel = P[TRAVEL]
    loc = P[LOC]
    used = np.zeros(m, dtype=np.bool_)
    cur = sloc
    for k in range(m):
        best = -1
        bt = 1 << 60
        for i in range(m):
            if not used[i]:
                t = travel[cur, loc[nodes[i]]]
                if t < bt:
                    bt = t
                    best = i
        used[best] = True
        out[k] = nodes[best]
        cur = loc[nodes[best]]
    _ = d


@njit(cache=True)
def _naive_fill(P: tuple, order: np.ndarray, ptr: np.ndarray, idx: np.ndarray,
                sloc: np.ndarray, eloc: np.ndarray, routes: np.ndarray, rlen: np.ndarray
                ) -> None:
    max_len = routes.shape[1]
    cand = np.empty(max_len + 1, dtype=np.int64)
    seq = np.empty(max_len + 1, dtype=np.int64)
    span = P[11]
    ws = P[9]
    we = P[10]
    for v in order:
        for k in range(ptr[v], ptr[v + 1]):
            d = idx[k]
            m = rlen[d]
            if m >= max_len:
                continue
            cand[:m] = routes[d, :m]
            cand[m] = v
            _nn_order(P, d, cand, m + 1, sloc[d], seq)
            ok, e, s = eval_seq(P, d, seq, m + 1, sloc[d], eloc[d])
            if ok and (span[d] >= we[d] - ws[d] or e - s <= span[d]):
                routes[d, : m + 1] = seq[: m + 1]
                rlen[d] = m + 1
                break


def plan_naive(problem: CallCycleProblem) -> CallCyclePlan:
    """The hand-made baseline plan (see the module docstring).

    Parameters
    ----------
    problem : CallCycleProblem

    Returns
    -------
    CallCyclePlan
        With ``stop_reason="naive"``.
    """
    from solvers.routing.cycle import _extract, _max_len, _state_from_routes

    t0 = time.perf_counter()
    inst = build_instance(problem)
    P = pack_instance(inst)
    d_count = problem.n_days
    sloc = np.where(inst.fixed_start_loc >= 0, inst.fixed_start_loc, 0).astype(np.int64)
    eloc = np.zeros(d_count, dtype=np.int64)
    value = np.asarray(problem.value)[inst.node_acc] if inst.n_nodes else np.zeros(0)
    # Appointments, then by account value (desc), account, visit number.
    order = np.lexsort((inst.node_j, inst.node_acc, -value, ~inst.node_app)).astype(np.int64)
    ptr = np.zeros(inst.n_nodes + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(inst.allowed.sum(axis=1))
    idx = np.nonzero(inst.allowed)[1].astype(np.int64)
    max_len = _max_len(inst)
    routes = np.zeros((d_count, max_len), dtype=np.int64)
    rlen = np.zeros(d_count, dtype=np.int64)
    if inst.gap > 0:
        _naive_gap(problem, inst, P, order, sloc, eloc, routes, rlen)
    else:
        _naive_fill(P, order, ptr, idx, sloc, eloc, routes, rlen)
    S, bad = _state_from_routes(P, inst, [list(routes[d, : rlen[d]]) for d in range(d_count)],
                                sloc, eloc)
    assert not bad
    return _extract(problem, inst, P, S, t0, "naive", 0, {"method": "naive"})


def _naive_gap(problem: CallCycleProblem, inst: object, P: tuple, order: np.ndarray,
               sloc: np.ndarray, eloc: np.ndarray, routes: np.ndarray, rlen: np.ndarray
               ) -> None:
    """Gap mode: like ``_naive_fill`` but a day must keep the gap to the account's visits."""
    g = int(problem.min_gap_days or 0)
    allowed = inst.allowed  # type: ignore[attr-defined]
    node_acc = inst.node_acc  # type: ignore[attr-defined]
    days_of: dict[int, list[int]] = {}
    max_len = routes.shape[1]
    cand = np.empty(max_len + 1, dtype=np.int64)
    seq = np.empty(max_len + 1, dtype=np.int64)
    span = P[11]
    for v in order:
        a = int(node_acc[v])
        for d in np.nonzero(allowed[v])[0]:
            if any(abs(int(d) - x) < g for x in days_of.get(a, [])):
                continue
            m = int(rlen[d])
            if m >= max_len:
                continue
            cand[:m] = routes[d, :m]
            cand[m] = v
            _nn_order(P, int(d), cand, m + 1, int(sloc[d]), seq)
            ok, e, s = eval_seq(P, int(d), seq, m + 1, int(sloc[d]), int(eloc[d]))
            if ok and (span[d] >= P[10][d] - P[9][d] or e - s <= span[d]):
                routes[d, : m + 1] = seq[: m + 1]
                rlen[d] = m + 1
                days_of.setdefault(a, []).append(int(d))
                break
