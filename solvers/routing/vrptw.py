"""``solve_vrptw``: one entry point over the OR-Tools and PyVRP backends.

Whatever the backend, the flow is the same:

1. visits no vehicle could serve even on a route of their own (window out of reach, demand
   over every capacity, route longer than every maximum duration) are set aside up front,
   with their reason, so that neither backend wastes time on them;
2. the backend solves the rest within what is left of ``time_limit_s``;
3. :func:`check_solution` re-checks and re-costs the routes; if a backend returned routes that
   break a constraint (PyVRP can end on an infeasible best when the fleet is too small), the
   visits causing it are removed one at a time and reported as dropped;
4. the :class:`RoutingResult` is built from that check, so every backend reports alike.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from solvers.errors import SolverInputError
from solvers.routing.check import SolutionCheck, check_solution, schedule_route
from solvers.routing.ortools_vrptw import OrtoolsParams, solve_ortools
from solvers.routing.problem import BackendRun, RoutingResult, VRPTWProblem
from solvers.routing.pyvrp_vrptw import PyvrpParams, pyvrp_available, solve_pyvrp

__all__ = ["BACKENDS", "choose_backend", "solve_vrptw", "unreachable_visits"]

BACKENDS = ("auto", "ortools", "pyvrp")

REASON_PENALTY = "left out: its drop penalty is cheaper than serving it"
REASON_NO_ROOM = "required visit not served: the fleet has no room for it (solver left it out)"
REASON_REPAIR = "removed from an infeasible route the solver returned (no feasible room found)"
REASON_NO_SOLUTION = "no solution found within the time limit"


def unreachable_visits(problem: VRPTWProblem) -> dict[int, str]:
    """Visits that no vehicle can serve even alone (depot -> visit -> depot), with the reason.

    Vectorised over vehicle classes x visits (scaled integers, exact).

    Returns
    -------
    dict
        ``{node: reason}`` for every such visit.
    """
    a = problem.scaled
    visits = problem.visits
    if visits.size == 0:
        return {}
    keys = np.stack([problem.starts, problem.ends, a.capacity, a.max_duration], axis=1)
    classes = np.unique(keys, axis=0)
    s, e, cap, max_dur = (classes[:, j][:, None] for j in range(4))
    d_si = a.duration[s, visits[None, :]]
    d_ie = a.duration[visits[None, :], e]
    early_i, late_i = a.tw_early[visits][None, :], a.tw_late[visits][None, :]
    svc = a.service[visits][None, :]
    cap_ok = a.demand[visits][None, :] <= cap
    begin = np.maximum(a.tw_early[s] + d_si, early_i)
    finish = np.maximum(begin + svc + d_ie, a.tw_early[e])
    tw_ok = (begin <= late_i) & (finish <= a.tw_late[e])
    # Latest departure keeping the single-visit route feasible minimises its duration.
    latest = np.minimum(np.minimum(a.tw_late[s], late_i - d_si), a.tw_late[e] - d_si - svc - d_ie)
    depart = np.maximum(a.tw_early[s], latest)
    begin2 = np.maximum(depart + d_si, early_i)
    finish2 = np.maximum(begin2 + svc + d_ie, a.tw_early[e])
    dur_ok = finish2 - depart <= max_dur
    out: dict[int, str] = {}
    for j in np.flatnonzero(~(cap_ok & tw_ok & dur_ok).any(axis=0)):
        node = int(visits[j])
        if not cap_ok[:, j].any():
            out[node] = f"demand {int(a.demand[node])} exceeds every vehicle's capacity"
        elif not (cap_ok[:, j] & tw_ok[:, j]).any():
            out[node] = (
                "time window cannot be met by any vehicle, even on a route of its own "
                "(too far from the depot for its window or the depot's hours)"
            )
        else:
            out[node] = "even a route of its own exceeds every vehicle's max_duration"
    return out


def choose_backend(problem: VRPTWProblem, backend: str = "auto", params: Any = None) -> str:
    """The backend ``solve_vrptw`` will use: ``ortools`` or ``pyvrp``.

    ``auto`` follows the type of ``params`` when given; otherwise it picks PyVRP when it is
    installed and models everything the problem uses, OR-Tools otherwise (see the benchmark in
    ``benchmarks/README.md``: on DIMACS VRPTW PyVRP is far closer to the best known solutions at
    equal time).

    Raises
    ------
    SolverInputError
        For an unknown backend name or params of the wrong type.
    """
    if backend not in BACKENDS:
        raise SolverInputError(f"backend={backend!r}; expected one of {', '.join(BACKENDS)}.")
    if isinstance(params, OrtoolsParams):
        kind = "ortools"
    elif isinstance(params, PyvrpParams):
        kind = "pyvrp"
    elif params is None:
        kind = None
    else:
        raise SolverInputError(
            f"params={type(params).__name__}; expected OrtoolsParams, PyvrpParams or None."
        )
    if backend == "auto":
        if kind is not None:
            return kind
        if pyvrp_available() and pyvrp_unsupported(problem) is None:
            return "pyvrp"
        return "ortools"
    if kind is not None and kind != backend:
        raise SolverInputError(f"params={type(params).__name__} do not fit backend={backend!r}.")
    return backend


def pyvrp_unsupported(problem: VRPTWProblem) -> str | None:
    """Why PyVRP cannot carry ``problem`` exactly, or None when it can.

    PyVRP's route end has no opening time of its own (an early return does not wait at the
    end depot), so a vehicle whose end depot opens later than its start is left to OR-Tools.
    """
    late_open = problem.tw_early[problem.ends] > problem.tw_early[problem.starts]
    if late_open.any():
        k = int(np.flatnonzero(late_open)[0])
        return f"vehicle {k}: end depot opens after its start depot (tw_early of the end)"
    return None


def _repair(problem: VRPTWProblem, routes: list[list[int]]) -> tuple[list[list[int]], list[int]]:
    """Remove visits from routes that break a constraint until each route holds.

    Greedy: on a broken route, drop the visit whose removal leaves the smallest violation
    (time warp + excess duration + excess load, scaled), until the route is feasible.
    """
    removed: list[int] = []
    seen: set[int] = set()
    fixed = []
    for k, route in enumerate(routes):
        # A visit listed twice keeps its first occurrence only.
        route = [x for x in dict.fromkeys(route) if x not in seen]
        seen.update(route)
        sched = schedule_route(problem, k, route)
        while route and not sched.feasible:
            best_j, best_key = 0, None
            for j in range(len(route)):
                trial = schedule_route(problem, k, route[:j] + route[j + 1 :])
                key = (
                    trial.time_warp + trial.excess_duration + trial.excess_load,
                    trial.distance,
                )
                if best_key is None or key < best_key:
                    best_j, best_key = j, key
            removed.append(route.pop(best_j))
            sched = schedule_route(problem, k, route)
        fixed.append(route)
    return fixed, removed


def _result(
    problem: VRPTWProblem,
    check: SolutionCheck,
    reasons: dict[int, str],
    *,
    runtime_s: float,
    stop_reason: str,
    seed: int,
    backend: str,
    stats: dict[str, Any],
) -> RoutingResult:
    s = problem.scale

    def per_route(field: str) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(x) / s for x in getattr(sc, field)) for sc in check.schedules)

    dropped = check.dropped
    drop_reasons = []
    for node in dropped:
        if node in reasons:
            drop_reasons.append(reasons[node])
        else:
            drop_reasons.append(REASON_NO_ROOM if problem.required[node] else REASON_PENALTY)
    return RoutingResult(
        routes=check.routes,
        arrival=per_route("arrival"),
        start=per_route("service_start"),
        departure=per_route("departure"),
        route_start=tuple(sc.start / s for sc in check.schedules),
        route_end=tuple(sc.end / s for sc in check.schedules),
        route_distance=tuple(sc.distance / s for sc in check.schedules),
        route_duration=tuple(sc.duration / s for sc in check.schedules),
        route_load=tuple(int(sc.load) for sc in check.schedules),
        dropped=dropped,
        dropped_reasons=tuple(drop_reasons),
        objective=check.objective,
        feasible=check.feasible,
        violations=check.violations,
        runtime_s=runtime_s,
        stop_reason=stop_reason,
        seed=seed,
        backend=backend,
        stats=stats,
    )


def solve_vrptw(
    problem: VRPTWProblem,
    *,
    time_limit_s: float = 30.0,
    seed: int = 0,
    backend: str = "auto",
    max_iterations: int | None = None,
    params: OrtoolsParams | PyvrpParams | None = None,
    initial_routes: list[list[int]] | None = None,
) -> RoutingResult:
    """Solve a single-day VRPTW.

    Parameters
    ----------
    problem : VRPTWProblem
    time_limit_s : float
        Wall-clock budget in seconds (honoured within 10 % plus about a second: OR-Tools'
        first-solution heuristics and PyVRP's initial local search cannot be interrupted).
    seed : int
        Random seed of the backend.
    backend : {"auto", "ortools", "pyvrp"}
        ``auto``: PyVRP when installed and able to model the problem, else OR-Tools
        (see :func:`choose_backend`).
    max_iterations : int, optional
        Deterministic stop (PyVRP: iterations; OR-Tools: accepted solutions of the
        improvement phase). With it, the same seed gives the same result unless the time
        limit is reached first.
    params : OrtoolsParams or PyvrpParams, optional
        Backend knobs; their type selects the backend under ``auto``.
    initial_routes : list of list of int, optional
        Warm start: per vehicle, visit nodes in order.

    Returns
    -------
    RoutingResult
        Always a result: visits that could not be served are listed in ``dropped`` with a
        reason, and ``feasible`` is False when a required one is among them.

    Raises
    ------
    SolverInputError
        For a bad argument (non-positive time limit, unknown backend, params of the wrong
        type, PyVRP requested but not installed).
    """
    t0 = time.perf_counter()
    if not (
        isinstance(time_limit_s, int | float) and math.isfinite(time_limit_s) and time_limit_s > 0
    ):
        raise SolverInputError(f"time_limit_s={time_limit_s!r}; expected a finite number > 0.")
    if max_iterations is not None and (not isinstance(max_iterations, int) or max_iterations < 1):
        raise SolverInputError(
            f"max_iterations={max_iterations!r}; expected an integer >= 1 or None."
        )
    if not isinstance(problem, VRPTWProblem):
        raise SolverInputError(f"problem: {type(problem).__name__}; expected a VRPTWProblem.")
    if initial_routes is not None:
        check_solution(problem, initial_routes)  # raises on unreadable routes
    seed = int(seed)
    chosen = choose_backend(problem, backend, params)

    reasons = unreachable_visits(problem)
    stats: dict[str, Any] = {"n_visits": int(problem.visits.size), "unreachable": len(reasons)}
    keep = np.setdiff1d(np.arange(problem.n_nodes), np.fromiter(reasons, dtype=np.int64))
    sub = problem if not reasons else problem.subproblem(keep)
    if sub.visits.size == 0:
        check = check_solution(problem, [])
        return _result(
            problem,
            check,
            reasons,
            runtime_s=time.perf_counter() - t0,
            stop_reason="trivial",
            seed=seed,
            backend=chosen,
            stats=stats,
        )
    sub_init = None
    if initial_routes is not None:
        pos = {int(node): k for k, node in enumerate(keep)}
        sub_init = [[pos[x] for x in r if x in pos] for r in initial_routes]
        sub_init += [[] for _ in range(problem.n_vehicles - len(sub_init))]

    left = time_limit_s - (time.perf_counter() - t0)
    kwargs: dict[str, Any] = {
        "time_limit_s": max(left, 0.01),
        "seed": seed,
        "max_iterations": max_iterations,
        "initial_routes": sub_init,
    }
    run: BackendRun
    if chosen == "pyvrp":
        run = solve_pyvrp(sub, params=params if isinstance(params, PyvrpParams) else None, **kwargs)
    else:
        run = solve_ortools(
            sub, params=params if isinstance(params, OrtoolsParams) else None, **kwargs
        )
    stats.update(run.stats)

    if run.routes is None:
        for node in problem.visits.tolist():
            reasons.setdefault(node, REASON_NO_SOLUTION)
        check = check_solution(problem, [])
    else:
        routes = [[int(keep[x]) for x in r] for r in run.routes]
        check = check_solution(problem, routes)
        if any(not sc.feasible for sc in check.schedules):
            routes, removed = _repair(problem, routes)
            for node in removed:
                reasons[node] = REASON_REPAIR
            stats["repaired"] = len(removed)
            check = check_solution(problem, routes)
    return _result(
        problem,
        check,
        reasons,
        runtime_s=time.perf_counter() - t0,
        stop_reason=run.stop_reason,
        seed=seed,
        backend=chosen,
        stats=stats,
    )
