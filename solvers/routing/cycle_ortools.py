"""The call cycle as one OR-Tools routing model with a vehicle per working day.

Model
-----
* Vehicle ``k`` is free day ``d = frozen_days + k``; it starts and ends at fixed nodes (home,
  or the stay chosen beforehand: stays are decided by the caller, e.g. the ruin-and-recreate
  search, and kept fixed here).
* One node per visit node of ``cycle_prep`` (required visit or appointment), restricted to its
  allowed days through ``VehicleVar(i).SetValues([-1] + vehicles)`` (in OR-Tools 9.15's Python
  wrapper ``SetAllowedVehiclesForIndex`` raised a TypeError here).
* One time dimension on an absolute clock, ``t = d * 1440 + minute of day``: a node's cumul
  domain is the union over its allowed days of its start windows shifted by ``d * 1440``, so the
  opening hours that depend on the weekday of the day the visit lands on need no node copies:
  vehicle ``k``'s start and end cumuls lie in its own day, which selects that day's windows.
  Transit ``i -> j`` = service of ``i`` + driving minutes (rounded up).
* Lunch: a fixed-duration break interval per vehicle, start in ``[d*1440 + lunch_start,
  d*1440 + lunch_end - lunch_min]``, with the node service times as visit transits (a break
  never overlaps a visit; it may fall before the start or after the end, as in ``cycle_sched``).
* ``max_work_min``: span upper bound per vehicle (``CallCycleProblem.span_bound_min``).
* Drops: one disjunction per node with the node's penalty.
* Gap mode: for two nodes of one account, ``|V_u - V_w| + g (2 - A_u - A_w) >= g`` (vehicle
  and active variables), a CP constraint outside the local-search filters.
* Arc cost: the integer travel cost of ``cycle_prep`` (1/100 objective unit).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from solvers.routing.cycle_prep import Instance
from solvers.routing.cycle_problem import MINUTES_PER_DAY

__all__ = ["OrToolsResult", "solve_ortools"]


@dataclass(frozen=True)
class OrToolsResult:
    """Routes per day (node ids of the instance) and how the search ended."""

    routes: list[list[int]]
    found: bool
    status: int
    objective: int
    build_s: float
    solve_s: float


def solve_ortools(inst: Instance, sloc: np.ndarray, eloc: np.ndarray, *,
                  time_limit_s: float, initial: list[list[int]] | None = None,
                  solution_limit: int | None = None,
                  first_solution: str = "PARALLEL_CHEAPEST_INSERTION",
                  metaheuristic: str = "GUIDED_LOCAL_SEARCH",
                  gls_lambda: float | None = None) -> OrToolsResult:
    """Solve (or polish ``initial``) with OR-Tools on one thread.

    Parameters
    ----------
    inst : Instance
    sloc, eloc : ndarray (D,)
        Start and end location of every day (0 = home, else a stay location).
    time_limit_s : float
        Search time in seconds (model building is extra, reported in ``build_s``).
    initial : list of list of int, optional
        Routes per day (all ``D`` days, node ids) to start guided local search from.
    solution_limit : int, optional
        Stop after this many solutions (reproducible runs).
    first_solution, metaheuristic : str
        ``FirstSolutionStrategy`` and ``LocalSearchMetaheuristic`` names.
    gls_lambda : float, optional
        Guided local search lambda coefficient (OR-Tools default 0.1).

    Returns
    -------
    OrToolsResult
    """
    t0 = time.perf_counter()
    d_count = inst.n_days
    frozen = inst.first_free_day
    free = list(range(frozen, d_count))
    n_veh = len(free)
    v_count = inst.n_nodes
    dep_locs = sorted({int(sloc[d]) for d in free} | {int(eloc[d]) for d in free} | {0})
    dep_of = {loc: i for i, loc in enumerate(dep_locs)}
    n_dep = len(dep_locs)
    locs = np.concatenate([np.asarray(dep_locs, dtype=np.int64), inst.node_loc])
    svc = np.concatenate([np.zeros(n_dep, dtype=np.int64), inst.node_svc])
    n_nodes = n_dep + v_count
    starts = [dep_of[int(sloc[d])] for d in free]
    ends = [dep_of[int(eloc[d])] for d in free]
    manager = pywrapcp.RoutingIndexManager(n_nodes, max(n_veh, 1), starts or [0],
                                           ends or [0])
    routing = pywrapcp.RoutingModel(manager)
    sub = np.ix_(locs, locs)
    time_mat = (svc[:, None] + inst.travel[sub]).tolist()
    cost_mat = inst.cost[sub].tolist()
    time_cb = routing.RegisterTransitMatrix(time_mat)
    cost_cb = routing.RegisterTransitMatrix(cost_mat)
    routing.SetArcCostEvaluatorOfAllVehicles(cost_cb)
    horizon = (d_count + 1) * MINUTES_PER_DAY
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    solver = routing.solver()
    ls, le, lm = (int(x) for x in inst.lunch)
    visit_transits = [0] * routing.Size()
    for index in range(routing.Size()):
        visit_transits[index] = int(svc[manager.IndexToNode(index)])
    for k, d in enumerate(free):
        off = d * MINUTES_PER_DAY
        ws, we = int(inst.day_ws[d]), int(inst.day_we[d])
        tdim.CumulVar(routing.Start(k)).SetRange(off + ws, off + we)
        tdim.CumulVar(routing.End(k)).SetRange(off + ws, off + we)
        if inst.day_span[d] < we - ws:
            tdim.SetSpanUpperBoundForVehicle(int(inst.day_span[d]), k)
        if lm > 0:
            brk = solver.FixedDurationIntervalVar(off + ls, off + le, lm, False, f"lunch{d}")
            tdim.SetBreakIntervalsOfVehicle([brk], k, visit_transits)
    for v in range(v_count):
        index = manager.NodeToIndex(n_dep + v)
        days = np.nonzero(inst.allowed[v])[0]
        routing.VehicleVar(index).SetValues([-1] + [int(d) - frozen for d in days])
        iv: list[tuple[int, int]] = []
        for d in days:
            off = int(d) * MINUTES_PER_DAY
            for lo, hi in zip(inst.win_lo[v, d], inst.win_hi[v, d], strict=True):
                if lo < 0:
                    break
                iv.append((off + int(lo), off + int(hi)))
        iv.sort()
        cum = tdim.CumulVar(index)
        cum.SetRange(iv[0][0], iv[-1][1])
        for (_, hi), (lo2, _) in pairwise(iv):
            if lo2 > hi + 1:
                cum.RemoveInterval(hi + 1, lo2 - 1)
        routing.AddDisjunction([index], int(inst.node_pen[v]))
    if inst.gap > 0:
        g = int(inst.gap)
        by_acc: dict[int, list[int]] = {}
        for v in range(v_count):
            by_acc.setdefault(int(inst.node_acc[v]), []).append(v)
        for nodes in by_acc.values():
            for i, u in enumerate(nodes):
                for w in nodes[i + 1:]:
                    iu = manager.NodeToIndex(n_dep + u)
                    iw = manager.NodeToIndex(n_dep + w)
                    vu, vw = routing.VehicleVar(iu), routing.VehicleVar(iw)
                    au, aw = routing.ActiveVar(iu), routing.ActiveVar(iw)
                    solver.Add(abs(vu - vw) + g * (2 - au - aw) >= g)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy,
                                             first_solution)
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic,
                                                metaheuristic)
    if gls_lambda is not None:
        params.guided_local_search_lambda_coefficient = gls_lambda
    params.time_limit.FromMilliseconds(max(int(time_limit_s * 1000), 1))
    if solution_limit is not None:
        params.solution_limit = int(solution_limit)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    if initial is not None:
        init_routes = [[manager.NodeToIndex(n_dep + v) for v in initial[d]] for d in free]
        routing.CloseModelWithParameters(params)
        start = routing.ReadAssignmentFromRoutes(init_routes, True)
        if start is None:
            sol = routing.SolveWithParameters(params)
        else:
            sol = routing.SolveFromAssignmentWithParameters(start, params)
    else:
        sol = routing.SolveWithParameters(params)
    solve_s = time.perf_counter() - t1
    routes: list[list[int]] = [[] for _ in range(d_count)]
    if sol is None:
        return OrToolsResult(routes, False, int(routing.status()), 0, build_s, solve_s)
    for k, d in enumerate(free):
        index = sol.Value(routing.NextVar(routing.Start(k)))
        while not routing.IsEnd(index):
            routes[d].append(manager.IndexToNode(index) - n_dep)
            index = sol.Value(routing.NextVar(index))
    return OrToolsResult(routes, True, int(routing.status()), int(sol.ObjectiveValue()),
                         build_s, solve_s)
