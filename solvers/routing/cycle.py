"""Call-cycle planner for one rep: ``plan_call_cycle(problem, time_limit_s=10, seed=0)``.

The model (visits, spacing, opening hours, lunch, working hours, stays, appointments, frozen
days, objective) is stated in ``cycle_problem``; the result in ``cycle_plan``; the rules a plan
must satisfy are checked independently by ``cycle_check.check_cycle_plan``.

Method
------
1. ``cycle_prep.build_instance``: one node per required visit ``(account, j)`` still to plan
   (plus appointments), the days each node may use (its spacing window, the weekdays the
   account is open, reachable at all, not frozen) and its start windows on each of those days.
   Weekday-dependent opening hours need no node copies: windows are stored per node *and
   day*. Visits no plan can serve are dropped here with their reason (``closed``,
   ``unreachable``, ``frozen``, ``gap``) and never reach a solver.
2. Greedy construction: appointments first, then visits by value, each at its cheapest
   feasible position over its allowed days (``cycle_search.construct``).
3. Ruin and recreate with simulated annealing over the whole cycle (``cycle_search``):
   string removals around a seed visit (SISR), recreate in one of five orders (random, value,
   far first, close first, value per minute) with blinks, unserved visits near the seed
   competing for the freed time; 15 % of the iterations add, move or drop an overnight trip;
   while visits are unserved, ``p_target`` of the others make room for one of them (the
   more valuable of two random unserved visits): a string is cut from one of its allowed
   days around the position nearest to it (and, half the time, strings near it), the visit
   is inserted first and the cut visits compete with its unserved neighbours for the rest.
   On sized reps this finds room for a remote visit that random seeds rarely reach; on
   over-loaded reps it is the swap of served low-value visits for a dropped valuable one. Feasibility of an insertion is an O(K) test on forward /
   backward time arrays with two lunch states (``cycle_sched``), after an exact capacity
   filter (driving + visit minutes of the day); this gives 10-25k iterations a second.
   Temperature: geometric from ``temp_start`` x mean leg cost (+ ``temp_penalty`` x the
   median visit penalty when visits are dropped: trading a little value for a better
   structure pays on over-loaded reps) down to ``temp_end`` x mean leg cost.
4. Optionally (``CycleParams.ortools_share > 0``) OR-Tools guided local search polishes the
   routes with the stays fixed (``cycle_ortools``, one vehicle per day on an absolute clock).
   Measured: it found nothing to improve after step 3, so it is off by default; the same
   model solved from scratch is the benchmark's "plain OR-Tools" baseline.
5. Times: each day is timed by ``cycle_sched.schedule`` (end as early as possible, leave as
   late as that allows, lunch where the earliest schedule puts it).

Overnight stays
---------------
A stay is a property of the night between day ``d`` and ``d + 1`` (same week, consecutive
weekdays): day ``d`` ends and day ``d + 1`` starts at the location of a stay-capable account
(at least ``stay_min_drive_min`` from home and reachable from home within a working day,
lunch included). The search moves trips as a whole: add 1..k consecutive nights at one remote
account (emptying those days and the day after, then recreate builds the trip around it),
drop one night or a whole trip; after each such move every night is moved to the last visit of
its day or the first of the next when that is cheaper, so the rep sleeps near a visit. Night
costs and the per-week limit are part of the objective / move generation. Accounts more than
a day's drive away are served on the middle days of trips based at the nearest stay-capable
account; beyond that they are ``unreachable``.

Dropping
--------
A node's drop penalty is ``value[a]`` x a unit that makes the smallest penalty exceed any
detour plus one night, so the search serves every visit it can and, when time runs out, keeps
the most value (value per minute it costs, through the annealing). Dropped visits are reported
with reason ``no_time`` (or ``appointment`` for an appointment no plan could keep).

Run controls
------------
The search runs in chunks of about 50 ms between clock checks and stops at the time limit,
at ``max_iterations``, or (``converged``) when in the second half of the schedule no new best
was found for ``max(stall_iterations, stall_per_node x nodes)`` iterations. With
``max_iterations`` the annealing follows the iteration count and chunks have a fixed size, so
the same seed and ``max_iterations`` give the same plan (if the time limit is not hit first).
The numba core compiles on the very first call in a fresh environment (measured: about
47 s of one core, cached on disk next to the sources; loading the cache takes about 0.5 s
afterwards); call ``warm_up()`` at service start. ``pack_instance`` hands numba writeable
arrays only, so a problem built from read-only arrays does not compile a second variant.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from solvers.routing.cycle_plan import (
    CallCyclePlan,
    DayPlan,
    DroppedVisit,
    PlannedVisit,
)
from solvers.routing.cycle_prep import COST_SCALE, Instance, build_instance
from solvers.routing.cycle_problem import CallCycleProblem
from solvers.routing.cycle_sched import NEG, pack_instance, schedule
from solvers.routing.cycle_search import (
    ELOC,
    NDAY,
    NPOS,
    RCOST,
    RLEN,
    ROUTES,
    SLOC,
    construct,
    copy_state,
    gap_ok,
    new_state,
    objective,
    refresh,
    search_chunk,
    set_capacity,
)

__all__ = ["CycleParams", "plan_call_cycle", "warm_up"]


@dataclass(frozen=True)
class CycleParams:
    """Modelling and search knobs of the call-cycle planner (defaults from the benchmark).

    Attributes
    ----------
    c_bar, l_max : float
        Mean visits removed per ruin and the longest string cut from one day.
    p_stay : float
        Share of iterations that add, move or drop an overnight stay (when stays are possible).
    p_unserved : float
        Probability that a new stay is placed at an unserved remote visit (else any remote one).
    blink : float
        Probability of skipping a position during recreate (diversification).
    n_extra : int
        Unserved visits near the ruin seed offered to recreate each iteration.
    temp_start, temp_end : float
        Annealing temperatures as multiples of the mean leg cost of the first solution.
    temp_penalty : float
        Added to the start temperature, times the median visit penalty, when the first
        solution drops visits (3.0 measured better than 1.0 on over-loaded reps with many
        remote accounts: up to 2 % more value served at 10 s, neutral elsewhere).
    stall_iterations : int
        Stop (``"converged"``) after this many iterations without a new best, counted at
        least ``stall_per_node`` per visit node, once ``stall_after`` of the budget (time or
        iterations) is used.
    stall_per_node : int
    stall_after : float
    chunk : int
        Iterations per call into the compiled search (fixed size with ``max_iterations``).
    starts, start_share : int, float
        Best of ``starts`` independent runs over the first ``start_share`` of the annealing
        schedule continues over the rest (1: a single run).
    ortools_share : float
        Share of the time limit given to OR-Tools guided local search after the search (0 off).
    p_target : float
        Share of the (non-stay) iterations, while visits are unserved, that make room for an
        unserved visit: cut a string from one of its days and near it, insert it first.
    warm_temp_start : float
        Start temperature (times the mean leg cost) when the search starts from ``initial``
        routes: low, so the search refines them instead of annealing them away.
    """

    c_bar: float = 20.0
    l_max: float = 10.0
    p_stay: float = 0.15
    p_unserved: float = 0.7
    blink: float = 0.01
    n_extra: int = 10
    temp_start: float = 0.5
    temp_end: float = 0.05
    temp_penalty: float = 3.0
    stall_iterations: int = 50_000
    stall_per_node: int = 500
    stall_after: float = 0.5
    chunk: int = 200
    starts: int = 1
    start_share: float = 0.1
    ortools_share: float = 0.0
    p_target: float = 0.4
    warm_temp_start: float = 0.1


def _pack_aux(inst: Instance, n_adj: int = 40) -> tuple:
    """Auxiliary numba arrays: allowed days (CSR), nodes per account, neighbours, stays."""
    v_count = inst.n_nodes
    allowed = inst.allowed
    ptr = np.zeros(v_count + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(allowed.sum(axis=1))
    idx = np.nonzero(allowed)[1].astype(np.int64)
    n_acc = inst.n_accounts
    order = np.argsort(inst.node_acc, kind="stable")
    acc_ptr = np.zeros(n_acc + 1, dtype=np.int64)
    np.add.at(acc_ptr, inst.node_acc + 1, 1)
    acc_ptr = np.cumsum(acc_ptr)
    k = min(n_adj, max(v_count - 1, 0))
    adj = np.full((v_count, max(k, 1)), -1, dtype=np.int64)
    if k > 0:
        loc = inst.node_loc
        t = inst.travel.astype(np.float64)
        sym = (t + t.T)[np.ix_(loc, loc)]
        np.fill_diagonal(sym, np.inf)
        part = np.argpartition(sym, k - 1, axis=1)[:, :k]
        rows = np.arange(v_count)[:, None]
        part = part[rows, np.argsort(sym[rows, part], axis=1, kind="stable")]
        adj[:, :k] = part
    home_dist = inst.travel[0, inst.node_loc].astype(np.float64)
    return (
        ptr, idx, acc_ptr, order.astype(np.int64), inst.node_acc.astype(np.int64),
        int(inst.gap), adj, inst.stay_ok.astype(np.bool_), inst.linkable.astype(np.bool_),
        inst.day_week.astype(np.int64), inst.nights_left.astype(np.int64),
        int(inst.night_cost), home_dist,
    )


def _state_from_routes(P: tuple, inst: Instance, routes: list[list[int]], sloc: np.ndarray,
                       eloc: np.ndarray) -> tuple[tuple, list[int]]:
    """A search state holding ``routes`` (node ids per day); returns it and infeasible days."""
    max_len = max(_max_len(inst), max((len(r) for r in routes), default=0))
    S = new_state(inst.n_days, inst.n_nodes, max_len)
    set_capacity(P, S)
    bad = []
    for d, r in enumerate(routes):
        S[SLOC][d] = sloc[d]
        S[ELOC][d] = eloc[d]
        S[ROUTES][d, : len(r)] = r
        S[RLEN][d] = len(r)
        if not refresh(P, S, d):
            bad.append(d)
    return S, bad


def _warm_state(P: tuple, X: tuple, inst: Instance, initial: InitialDays) -> tuple | None:
    """A search state holding what of ``initial`` the problem allows (see ``plan_call_cycle``),
    or None when nothing of it can be used."""
    n_days = inst.n_days
    gap_mode = bool((inst.node_j == -2).any())
    free: dict[tuple[int, int], int] = {}
    by_acc: dict[int, list[int]] = {}
    for v in range(inst.n_nodes):
        a, j = int(inst.node_acc[v]), int(inst.node_j[v])
        if inst.node_app[v]:
            continue  # appointments are placed first by the construction, as in a cold start
        if gap_mode:
            by_acc.setdefault(a, []).append(v)
        else:
            free[(a, j)] = v
    n_loc = inst.travel.shape[0]
    routes: list[list[int]] = []
    eloc = np.zeros(n_days, dtype=np.int64)
    used: set[int] = set()
    placed = 0
    for d in range(n_days):
        visits, stay = initial[d] if d < len(initial) else ((), None)
        route: list[int] = []
        for a, j in visits:
            a, j = int(a), int(j)
            if gap_mode:
                cands = [v for v in by_acc.get(a, []) if v not in used]
                v = cands[0] if cands else -1
            else:
                v = free.get((a, j), -1)
            if v < 0 or v in used or not inst.allowed[v, d]:
                continue
            used.add(v)
            route.append(v)
        routes.append(route)
        placed += len(route)
        if (stay is not None and 0 <= int(stay) + 1 < n_loc and d + 1 < n_days
                and inst.linkable[d] and inst.stay_ok[int(stay) + 1]):
            eloc[d] = int(stay) + 1
    if placed == 0:
        return None
    sloc = np.zeros(n_days, dtype=np.int64)
    sloc[1:] = eloc[:-1]
    S, bad = _state_from_routes(P, inst, routes, sloc, eloc)
    for d in bad:
        # Keep the longest feasible start of the day's route; the rest is inserted again.
        seq = S[ROUTES][d]
        while S[RLEN][d] > 0 and not refresh(P, S, d):
            v = seq[S[RLEN][d] - 1]
            S[RLEN][d] -= 1
            S[NDAY][v] = -1
            S[NPOS][v] = -1
        if not refresh(P, S, d):
            return None
    # Weekly nights and visit spacing held in the plan the routes came from; checked here
    # because the territory (and so the visit numbering) may differ.
    nights = np.zeros(int(inst.day_week.max()) + 1 if n_days else 1, dtype=np.int64)
    for d in range(n_days):
        if S[ELOC][d] != 0:
            nights[inst.day_week[d]] += 1
    if (nights > inst.nights_left[: len(nights)]).any():
        return None
    if gap_mode and inst.gap > 0:
        for v in range(inst.n_nodes):
            d = S[NDAY][v]
            if d >= 0 and not gap_ok(X, S, v, d):
                return None
    return S


def _max_len(inst: Instance) -> int:
    if inst.n_nodes == 0:
        return 1
    shortest = max(int(inst.node_svc.min()), 1)
    longest_day = int((inst.day_we - inst.day_ws).max())
    return int(min(inst.n_nodes, longest_day // shortest + 1))


def warm_up() -> float:
    """Compile (or load from numba's on-disk cache) the planner's compiled core; seconds taken.

    The first call in a fresh environment compiles for about half a minute of CPU; the result
    is cached next to the sources, after which loading takes well under a second. Call this at
    service start so the first timed ``plan_call_cycle`` honours its limit.
    """
    from solvers.routing.cycle_naive import plan_naive

    t0 = time.perf_counter()
    pts = np.array([0.0, 10.0, 20.0, 200.0])
    minutes = np.abs(pts[:, None] - pts[None, :])
    # The far account makes the stay moves run too.
    tiny = CallCycleProblem(minutes=minutes, km=minutes, visits=np.array([2, 1, 1]),
                            visit_min=np.array([30, 30, 30]))
    for problem in (tiny, dataclasses.replace(tiny, min_gap_days=3)):
        # A warm start too: in gap mode it checks the spacing from Python (gap_ok).
        cold = plan_call_cycle(problem, time_limit_s=60.0, max_iterations=20)
        plan_call_cycle(problem, time_limit_s=60.0, max_iterations=20, initial=[
            ([(v.account, v.visit) for v in day.visits], day.stay) for day in cold.days])
    plan_naive(tiny)
    plan_naive(dataclasses.replace(tiny, min_gap_days=3))
    return time.perf_counter() - t0


#: Warm-start routes: per day, the visits in order as (account, visit number) and the account
#: the rep sleeps near after the day (None: home).
InitialDays = Sequence[tuple[Sequence[tuple[int, int]], int | None]]


def plan_call_cycle(problem: CallCycleProblem, *, time_limit_s: float = 10.0, seed: int = 0,
                    max_iterations: int | None = None, params: CycleParams | None = None,
                    initial: InitialDays | None = None) -> CallCyclePlan:
    """Plan one rep's call cycle.

    Parameters
    ----------
    problem : CallCycleProblem
    time_limit_s : float
        Wall-clock budget in seconds (honoured within 10 % plus about a second; the first call
        in a fresh environment also compiles the numba core, which is cached on disk).
    seed : int
        Seed of the search's random generator.
    max_iterations : int, optional
        Stop after this many ruin-and-recreate iterations (reproducible plans).
    params : CycleParams, optional
    initial : sequence of (visits, stay) per day, optional
        Routes to start from, e.g. the rep's current plan after its territory changed: each
        day's visits as ``(account, visit number)`` in order and the account the rep sleeps
        near after it (``None``: home). Visits the problem does not hold (accounts that left,
        visit numbers beyond the account's visits, days the visit may not take) are skipped;
        a day left infeasible (opening hours, a stay no longer possible) keeps the longest
        feasible start of its route; visits not placed are inserted as in a cold start. The
        search then refines from there at a low temperature (``warm_temp_start``), and never
        returns worse than its start. Ignored with frozen days.

    Returns
    -------
    CallCyclePlan
        Every required visit is either in a day exactly once or in ``dropped`` with a reason.

    Raises
    ------
    SolverInputError
        Invalid ``time_limit_s`` or ``max_iterations`` (the problem validates itself).
    """
    from solvers.errors import SolverInputError

    t_start = time.perf_counter()
    if not time_limit_s > 0:
        raise SolverInputError(f"time_limit_s={time_limit_s!r}; expected > 0")
    if max_iterations is not None and max_iterations < 0:
        raise SolverInputError(f"max_iterations={max_iterations!r}; expected >= 0")
    params = params or CycleParams()
    deadline = t_start + time_limit_s
    rng_np = np.random.default_rng(seed)
    rng = np.array([rng_np.integers(1, 2**63 - 1)], dtype=np.uint64)

    inst = build_instance(problem)
    P = pack_instance(inst)
    X = _pack_aux(inst)
    n_days = problem.n_days
    max_len = _max_len(inst)
    S = new_state(n_days, inst.n_nodes, max_len)
    set_capacity(P, S)
    for d in range(n_days):
        if inst.fixed_start_loc[d] >= 0:
            S[SLOC][d] = inst.fixed_start_loc[d]
        refresh(P, S, d)
    stats: dict[str, Any] = {"nodes": inst.n_nodes, "pre_dropped": len(inst.pre_dropped),
                             "params": asdict(params)}
    buf = np.empty(max_len + 3, dtype=np.int64)
    warm = False
    if initial is not None and problem.frozen_days == 0 and inst.n_nodes > 0:
        S_warm = _warm_state(P, X, inst, initial)
        if S_warm is not None:
            S, warm = S_warm, True
            buf = np.empty(S[ROUTES].shape[1] + 2, dtype=np.int64)
    stats["warm_start"] = warm
    construct(P, X, S, rng, 1, buf)
    stats["construct_objective"] = float(objective(P, X, S)) / COST_SCALE
    stats["construct_s"] = time.perf_counter() - t_start

    stop_reason = "trivial" if inst.n_nodes == 0 else "converged"
    polish = params.ortools_share > 0 and inst.n_nodes > 0
    if inst.n_nodes > 0:
        search_deadline = deadline
        if polish:
            search_deadline = t_start + (deadline - t_start) * (1.0 - params.ortools_share)
        stop_reason = _search(P, X, S, rng, params, search_deadline, max_iterations, stats,
                              warm=warm)
    if polish:
        S = _polish_ortools(inst, P, X, S, deadline, max_iterations, stats)
        stop_reason = "max_iterations" if max_iterations is not None else "time_limit"
    plan = _extract(problem, inst, P, S, t_start, stop_reason, seed, stats)
    return plan


def _polish_ortools(inst: Instance, P: tuple, X: tuple, S: tuple, deadline: float,
                    max_iterations: int | None, stats: dict[str, Any]) -> tuple:
    """Guided local search from the current routes with the stays fixed; keep the better."""
    from solvers.routing.cycle_ortools import solve_ortools

    routes = [list(S[ROUTES][d, : S[RLEN][d]]) for d in range(inst.n_days)]
    sloc = S[SLOC].copy()
    eloc = S[ELOC].copy()
    left = deadline - time.perf_counter() - 0.1
    # OR-Tools counts model building outside its limit; leave it a share of the time.
    res = solve_ortools(inst, sloc, eloc, time_limit_s=max(left * 0.8, 0.05), initial=routes,
                        solution_limit=None if max_iterations is None else
                        max(1, max_iterations // 10))
    stats["ortools"] = {"found": res.found, "status": res.status, "build_s": res.build_s,
                        "solve_s": res.solve_s}
    if not res.found:
        return S
    S2, bad = _state_from_routes(P, inst, res.routes, sloc, eloc)
    before = objective(P, X, S)
    after = objective(P, X, S2)
    stats["ortools"].update(before=before / COST_SCALE, after=after / COST_SCALE,
                            infeasible_days=len(bad))
    if bad or after > before:
        return S
    return S2


def _search(P: tuple, X: tuple, S: tuple, rng: np.ndarray, params: CycleParams,
            deadline: float, max_iterations: int | None, stats: dict[str, Any],
            warm: bool = False) -> str:
    """Anneal from the constructed state in ``S``; leave the best state in ``S``.

    With ``params.starts = k > 1`` the first ``start_share`` of the schedule is run ``k`` times
    from the construction and the best of those runs continues over the rest: runs diverge
    early (which trips, which days hold the far visits) and then mostly refine, so the best
    of a few cheap beginnings lowers the spread of the final result.
    """
    served = int(S[RLEN].sum())
    legs = served + int((S[RLEN] > 0).sum())
    mean_leg = float(S[RCOST].sum()) / max(legs, 1)
    if mean_leg <= 0:
        mean_leg = float(P[1].mean()) if P[1].size else 1.0
    pen = P[4]
    unserved = S[NDAY] < 0
    # When visits are dropped, the value at stake dwarfs travel: start hot enough to trade a
    # little value for a better structure (trips, clusters), end on the travel scale.
    pen_scale = float(np.median(pen)) if unserved.any() else 0.0
    t0 = max(params.temp_start * mean_leg + params.temp_penalty * pen_scale, 1e-9)
    if warm:
        # Routes that were good for most of this territory: refine them, do not melt them.
        t0 = max(params.warm_temp_start * mean_leg, params.temp_end * mean_leg, 1e-9)
    t1 = max(params.temp_end * mean_leg, 1e-12)
    pvec = np.array([params.c_bar, params.l_max, params.p_stay, params.blink, params.n_extra,
                     params.p_unserved, params.p_target], dtype=np.float64)
    counters = np.zeros(6, dtype=np.int64)
    s0 = time.perf_counter()
    budget = max(deadline - s0 - 0.05, 1e-3)
    starts = max(int(params.starts), 1)
    share = min(max(params.start_share, 0.0), 1.0 / starts) if starts > 1 else 0.0
    run = _Anneal(P, X, rng, pvec, t0, t1, params, counters, s0)
    if starts > 1:
        best_state = None
        best_obj = 0
        for _ in range(starts):
            Sk = tuple(np.copy(a) for a in S)
            run.go(Sk, 0.0, share, budget * share,
                   None if max_iterations is None else int(max_iterations * share), final=False)
            obj = objective(P, X, Sk)
            if best_state is None or obj < best_obj:
                best_state, best_obj = Sk, obj
        assert best_state is not None
        copy_state(best_state, S)
    rest_iter = None if max_iterations is None else max_iterations - run.done
    reason = run.go(S, share, 1.0, max(s0 + budget - time.perf_counter(), 1e-3), rest_iter,
                    final=True)
    stats.update(iterations=int(counters[0]), accepted=int(counters[1]),
                 improvements=int(counters[2]), stay_moves=int(counters[3]),
                 stay_accepted=int(counters[4]), stay_improvements=int(counters[5]),
                 search_s=time.perf_counter() - s0,
                 best_objective=float(objective(P, X, S)) / COST_SCALE, trace=run.trace)
    return reason


class _Anneal:
    """Runs the compiled search in chunks over a stretch ``[f_lo, f_hi]`` of the schedule."""

    def __init__(self, P: tuple, X: tuple, rng: np.ndarray, pvec: np.ndarray, t0: float,
                 t1: float, params: CycleParams, counters: np.ndarray, s0: float) -> None:
        self.P, self.X, self.rng, self.pvec = P, X, rng, pvec
        self.t0, self.t1, self.params, self.counters, self.s0 = t0, t1, params, counters, s0
        self.done = 0
        self.trace: list[tuple[int, float, float]] = []

    def go(self, S: tuple, f_lo: float, f_hi: float, time_s: float, iters: int | None,
           final: bool) -> str:
        """Anneal ``S`` (left holding the best state) for ``time_s`` seconds or ``iters``."""
        P, X, params = self.P, self.X, self.params
        C = tuple(np.copy(a) for a in S)
        B = tuple(np.copy(a) for a in S)
        v_count = S[NDAY].shape[0]
        stall_limit = max(params.stall_iterations, params.stall_per_node * v_count)
        start = time.perf_counter()
        done = 0
        chunk = params.chunk if iters is not None else 20
        last_best = objective(P, X, B)
        last_improve = 0
        if final:
            self.trace.append((self.done, round(start - self.s0, 3),
                               float(last_best) / COST_SCALE))
        reason = "time_limit"
        span = f_hi - f_lo
        while True:
            now = time.perf_counter()
            if iters is not None and done >= iters:
                reason = "max_iterations"
                break
            if now >= start + time_s:
                reason = "time_limit"
                break
            local = done / iters if iters is not None else (now - start) / time_s
            if final and f_lo + span * local >= params.stall_after and \
                    done - last_improve >= stall_limit:
                # Late in the schedule (cold) and no new best for long: more time will not
                # help.
                reason = "converged"
                break
            n = chunk
            if iters is not None:
                n = min(n, iters - done)
                g0, g1 = done / iters, (done + n) / iters
            else:
                g0 = (now - start) / time_s
                rate = done / max(now - start, 1e-9) if done else 0.0
                g1 = min(g0 + (n / rate if rate > 0 else 0.0) / time_s, 1.0)
            fa = f_lo + span * min(g0, 1.0)
            fb = f_lo + span * min(g1, 1.0)
            ta = self.t0 * (self.t1 / self.t0) ** fa
            tb = self.t0 * (self.t1 / self.t0) ** fb
            tc = time.perf_counter()
            _, best = search_chunk(P, X, S, C, B, self.rng, n, ta, tb, self.pvec,
                                   self.counters)
            elapsed = time.perf_counter() - tc
            done += n
            self.done += n
            if best < last_best:
                last_best = best
                last_improve = done
                if final:
                    self.trace.append((self.done, round(time.perf_counter() - self.s0, 3),
                                       float(best) / COST_SCALE))
            if iters is None:
                # Chunks of about 50 ms keep the clock checks cheap and the limit tight.
                chunk = int(max(10, min(5000, n * 0.05 / max(elapsed, 1e-6))))
        copy_state(B, S)
        return reason


def _extract(problem: CallCycleProblem, inst: Instance, P: tuple, S: tuple, t_start: float,
             stop_reason: str, seed: int, stats: dict[str, Any]) -> CallCyclePlan:
    """Build the ``CallCyclePlan`` from the search state (timing each day with ``schedule``)."""
    n_days = problem.n_days
    minutes = problem.minutes
    km = problem.km
    vmin = problem.visit_min
    node_acc = inst.node_acc
    node_day = S[NDAY]
    routes = S[ROUTES]
    rlen = S[RLEN]
    # Visit numbers: window mode has them; gap mode numbers each account's visits by day.
    number = inst.node_j.copy()
    dropped: list[DroppedVisit] = []
    value = problem.value
    if problem.gap_mode:
        taken: dict[int, set[int]] = {}
        for fd, nums in zip(inst.frozen_days, inst.frozen_visit_numbers, strict=True):
            for pv, j in zip(fd.visits, nums, strict=True):
                taken.setdefault(pv.account, set()).add(j)
        for pd in inst.pre_dropped:
            taken.setdefault(pd.account, set()).add(pd.visit)
        by_acc: dict[int, list[tuple[int, int]]] = {}
        for v in range(inst.n_nodes):
            key = int(node_day[v]) if node_day[v] >= 0 else 10**6 + v
            by_acc.setdefault(int(node_acc[v]), []).append((key, v))
        for a, lst in by_acc.items():
            used = taken.setdefault(a, set())
            j = 0
            for _, v in sorted(lst):
                while j in used:
                    j += 1
                number[v] = j
                used.add(j)
    for pd in inst.pre_dropped:
        dropped.append(DroppedVisit(pd.account, pd.visit, pd.reason, float(value[pd.account])))
    for v in range(inst.n_nodes):
        if node_day[v] < 0:
            reason = "appointment" if inst.node_app[v] else "no_time"
            dropped.append(DroppedVisit(int(node_acc[v]), int(number[v]), reason,
                                        float(value[node_acc[v]])))
    days: list[DayPlan] = []
    wd = problem.day_weekday
    wk = problem.day_week
    ws = problem.work_start
    lunch_min = problem.lunch_min
    travel_cost = 0.0
    for d in range(n_days):
        if d < problem.frozen_days:
            fd = inst.frozen_days[d]
            # Kept as planned; only the visit numbers follow this problem's frequencies.
            kept = tuple(dataclasses.replace(v, visit=j) for v, j in
                         zip(fd.visits, inst.frozen_visit_numbers[d], strict=True))
            days.append(dataclasses.replace(fd, visits=kept, frozen=True))
            travel_cost += _day_travel_cost(problem, fd)
            continue
        m = int(rlen[d])
        seq = routes[d, :m].copy()
        sloc = int(S[SLOC][d])
        eloc = int(S[ELOC][d])
        out = np.zeros((max(m, 1), 3), dtype=np.int64)
        ok, start, end, lunch_start = schedule(P, d, seq, m, sloc, eloc, out)
        if not ok:  # pragma: no cover - the search keeps routes feasible
            raise RuntimeError(f"internal error: day {d} route is infeasible")
        if m == 0 and sloc == eloc:
            # A day off the road: no driving; the lunch is wherever its window says.
            start = end = int(ws[d])
            lunch_start = int(problem.lunch_start) if lunch_min > 0 else NEG
        visits = tuple(
            PlannedVisit(int(node_acc[v]), int(number[v]), int(out[i, 0]), int(out[i, 1]),
                         int(out[i, 2]), bool(inst.node_app[v]))
            for i, v in enumerate(seq))
        locs = [sloc] + [int(node_acc[v]) + 1 for v in seq] + [eloc]
        drive = float(sum(minutes[a, b] for a, b in pairwise(locs)))
        dist = float(sum(km[a, b] for a, b in pairwise(locs)))
        visit_total = float(sum(int(vmin[node_acc[v]]) for v in seq))
        if lunch_min > 0:
            ls_, le_ = int(lunch_start), int(lunch_start) + lunch_min
            brk = float(max(0, min(le_, end) - max(ls_, start)))
        else:
            ls_ = le_ = None  # type: ignore[assignment]
            brk = 0.0
        span = float(end - start)
        days.append(DayPlan(
            day=d, weekday=int(wd[d]), week=int(wk[d]), visits=visits, start_min=int(start),
            end_min=int(end), lunch_start=ls_, lunch_end=le_,
            start_stay=None if sloc == 0 else sloc - 1, stay=None if eloc == 0 else eloc - 1,
            drive_min=drive, travel_km=dist, visit_min=visit_total, break_min=brk,
            idle_min=span - drive - visit_total - brk, work_min=span - brk))
        travel_cost += problem.minute_cost * drive + problem.km_cost * dist
    required = int(np.sum(problem.visits))
    req_value = float(np.sum(problem.visits * problem.value))
    drop_value = float(sum(x.value for x in dropped if x.visit < problem.visits[x.account]))
    n_dropped_req = sum(1 for x in dropped if x.visit < problem.visits[x.account])
    nights = sum(1 for dp in days if dp.stay is not None)
    ppv = inst.penalty_unit / COST_SCALE
    objective_value = travel_cost + problem.night_cost * nights + ppv * drop_value
    avail = float(problem.available_min().sum())
    work = float(sum(dp.work_min for dp in days))
    stats["runtime_breakdown"] = {"total_s": time.perf_counter() - t_start}
    return CallCyclePlan(
        days=tuple(days), dropped=tuple(dropped), objective=float(objective_value),
        penalty_per_value=float(ppv), required=required, served=required - n_dropped_req,
        value_required=req_value, value_served=req_value - drop_value,
        value_dropped=drop_value, utilisation=work / avail if avail > 0 else 0.0,
        runtime_s=time.perf_counter() - t_start, stop_reason=stop_reason, seed=int(seed),
        stats=stats)


def _day_travel_cost(problem: CallCycleProblem, day: DayPlan) -> float:
    locs = ([0 if day.start_stay is None else day.start_stay + 1]
            + [v.account + 1 for v in day.visits] + [0 if day.stay is None else day.stay + 1])
    m = sum(problem.minutes[a, b] for a, b in pairwise(locs))
    k = sum(problem.km[a, b] for a, b in pairwise(locs))
    return float(problem.minute_cost * m + problem.km_cost * k)
