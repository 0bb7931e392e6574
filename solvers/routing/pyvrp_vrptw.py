"""PyVRP backend (optional dependency): the VRPTW on PyVRP's iterated local search.

PyVRP (>= 0.14) is imported lazily; the rest of the library works without it and
:func:`solve_pyvrp` raises :class:`PyVRPMissingError` when it is asked for and absent.

Mapping (integers from :attr:`VRPTWProblem.scaled`): every node is a PyVRP location with the
problem's matrices; depot nodes are PyVRP depots, the others clients (service, window,
demand; optional ones ``required=False`` with their drop penalty as prize). Vehicles with equal
start, end, capacity, maximum duration, fixed cost and depot windows form one vehicle type
(``tw_early`` = start window opening, ``start_late`` = its close, ``tw_late`` = end window
close, ``shift_duration`` = maximum duration). PyVRP's objective is then exactly ours in
integer cost units: ``unit_distance_cost * distance + unit_duration_cost * duration +
fixed costs + uncollected prizes``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from solvers.errors import SolverInputError
from solvers.routing.problem import BackendRun, VRPTWProblem

__all__ = [
    "PyVRPMissingError",
    "PyvrpParams",
    "build_pyvrp_data",
    "pyvrp_available",
    "pyvrp_routes",
    "solve_pyvrp",
]


class PyVRPMissingError(SolverInputError, ImportError):
    """The PyVRP backend was requested but ``pyvrp`` is not installed."""


def pyvrp_available() -> bool:
    """True when ``import pyvrp`` works (version >= 0.14 API)."""
    try:
        import pyvrp  # noqa: F401
        from pyvrp import Location  # noqa: F401  (0.14 API: locations apart from clients)
    except ImportError:
        return False
    return True


def _import_pyvrp() -> Any:
    try:
        import pyvrp
        from pyvrp import Location  # noqa: F401
    except ImportError as exc:
        raise PyVRPMissingError(
            "backend='pyvrp' needs PyVRP >= 0.14: pip install 'pyvrp>=0.14' "
            "(or use backend='ortools')."
        ) from exc
    return pyvrp


@dataclass(frozen=True)
class PyvrpParams:
    """Knobs of the PyVRP backend (run controls are separate).

    Defaults are PyVRP 0.14's own except two, tuned for budgets of seconds to minutes rather
    than PyVRP's benchmark hours (``benchmarks/README.md``): a late-acceptance history of 100
    instead of 300 (converges faster: 1000 customers reach in 40k iterations what 300 needs far
    more for), and fresh restarts of stalled runs (``restart_after``; 100-customer runs
    otherwise sit on one local optimum for most of a 30 s budget).
    :meth:`pyvrp_defaults` gives PyVRP's own, which reproduce ``pyvrp.solve`` exactly.

    Parameters
    ----------
    num_neighbours : int
        Size of the granular neighbourhood of each client.
    weight_wait_time : float
        Weight of unavoidable waiting in the neighbourhood proximity.
    history_length : int
        Late-acceptance history length of the iterated local search.
    num_iters_no_improvement : int
        Iterations without improvement before a restart from the best solution.
    min_perturbations, max_perturbations : int
        Range of the number of perturbation moves per iteration.
    restart_after : int
        Start a fresh run (new random solution, empty history; the best solution so far is
        kept) once the current run has gone this many iterations without a new best, and at
        least as many as it took to find that best; 0 = never. Small instances stall long
        before a 30 s budget ends and a fresh run is a better use of the rest; runs that
        are still improving, as on 1000 customers, are left alone.
    """

    num_neighbours: int = 50
    weight_wait_time: float = 0.2
    history_length: int = 100
    num_iters_no_improvement: int = 150_000
    min_perturbations: int = 1
    max_perturbations: int = 25
    restart_after: int = 3_000

    @classmethod
    def pyvrp_defaults(cls) -> PyvrpParams:
        """PyVRP's own ``SolveParams`` defaults (a single run, no fresh restarts)."""
        return cls(history_length=300, restart_after=0)

    def __post_init__(self) -> None:
        for name in ("num_neighbours", "history_length", "max_perturbations"):
            if getattr(self, name) < 1:
                raise SolverInputError(f"{name}={getattr(self, name)!r}; expected >= 1.")
        if not 0 <= self.min_perturbations <= self.max_perturbations:
            raise SolverInputError(
                f"min_perturbations={self.min_perturbations!r}; "
                "expected 0 <= min_perturbations <= max_perturbations."
            )
        for name in ("weight_wait_time", "num_iters_no_improvement", "restart_after"):
            if getattr(self, name) < 0:
                raise SolverInputError(f"{name}={getattr(self, name)!r}; expected >= 0.")


@dataclass(frozen=True, eq=False)
class PyvrpData:
    """A PyVRP ``ProblemData`` and the maps back to problem nodes and vehicles."""

    data: Any
    client_node: np.ndarray  # client index -> problem node
    type_vehicles: tuple[tuple[int, ...], ...]  # vehicle type -> problem vehicles


def build_pyvrp_data(problem: VRPTWProblem) -> PyvrpData:
    """Translate ``problem`` into a PyVRP ``ProblemData`` (see the module docstring).

    Raises
    ------
    PyVRPMissingError
        When PyVRP is not installed.
    """
    pyvrp = _import_pyvrp()
    from pyvrp.constants import MAX_VALUE

    a = problem.scaled
    n = problem.n_nodes
    depots = problem.depots.tolist()
    depot_pos = {node: k for k, node in enumerate(depots)}
    clients_nodes = problem.visits
    with_load = problem.has_capacity()

    locations = [pyvrp.Location(0.0, 0.0) for _ in range(n)]
    py_depots = [
        pyvrp.Depot(location=node, tw_early=int(a.tw_early[node]), tw_late=int(a.tw_late[node]))
        for node in depots
    ]
    clients = []
    for node in clients_nodes.tolist():
        pen = int(a.drop_penalty[node])
        clients.append(
            pyvrp.Client(
                location=node,
                delivery=[int(a.demand[node])] if with_load else [],
                service_duration=int(a.service[node]),
                tw_early=int(a.tw_early[node]),
                tw_late=int(a.tw_late[node]),
                prize=min(pen, MAX_VALUE) if pen >= 0 else 0,
                required=pen < 0,
            )
        )

    groups: dict[tuple[int, ...], list[int]] = {}
    for k in range(problem.n_vehicles):
        s, e = int(problem.starts[k]), int(problem.ends[k])
        key = (
            s,
            e,
            int(a.capacity[k]),
            int(a.max_duration[k]),
            int(a.fixed_cost[k]),
        )
        groups.setdefault(key, []).append(k)
    vehicle_types = []
    for (s, e, cap, max_dur, fixed), members in groups.items():
        vehicle_types.append(
            pyvrp.VehicleType(
                num_available=len(members),
                capacity=[min(cap, MAX_VALUE)] if with_load else [],
                start_depot=depot_pos[s],
                end_depot=depot_pos[e],
                fixed_cost=fixed,
                tw_early=int(a.tw_early[s]),
                start_late=int(a.tw_late[s]),
                tw_late=int(a.tw_late[e]),
                shift_duration=min(max_dur, MAX_VALUE),
                unit_distance_cost=int(a.distance_cost),
                unit_duration_cost=int(a.duration_cost),
            )
        )
    data = pyvrp.ProblemData(
        locations=locations,
        clients=clients,
        depots=py_depots,
        vehicle_types=vehicle_types,
        distance_matrices=[np.ascontiguousarray(a.distance)],
        duration_matrices=[np.ascontiguousarray(a.duration)],
    )
    return PyvrpData(
        data=data,
        client_node=clients_nodes.copy(),
        type_vehicles=tuple(tuple(m) for m in groups.values()),
    )


def pyvrp_routes(pdata: PyvrpData, solution: Any, n_vehicles: int) -> list[list[int]]:
    """Per problem vehicle, the visited nodes of a PyVRP ``Solution`` (empty when unused)."""
    routes: list[list[int]] = [[] for _ in range(n_vehicles)]
    free = [list(m) for m in pdata.type_vehicles]
    for route in solution.routes():
        vehicle = free[route.vehicle_type()].pop(0)
        routes[vehicle] = [int(pdata.client_node[act.idx]) for act in route if act.is_client()]
    return routes


def _to_pyvrp_solution(pyvrp: Any, pdata: PyvrpData, routes: list[list[int]]) -> Any:
    """A PyVRP ``Solution`` from problem routes (per vehicle, problem node ids)."""
    client_of = {int(node): k for k, node in enumerate(pdata.client_node)}
    type_of = {v: t for t, members in enumerate(pdata.type_vehicles) for v in members}
    py_routes = [
        pyvrp.Route(pdata.data, [client_of[node] for node in route], type_of[k])
        for k, route in enumerate(routes)
        if route
    ]
    return pyvrp.Solution(pdata.data, py_routes)


class _Deadline:
    """Stopping criterion: an absolute wall-clock deadline and an optional iteration cap.

    PyVRP's ``MaxRuntime`` starts its clock at the first iteration, after building the data and
    the initial local search; an absolute deadline keeps the caller's limit.
    """

    def __init__(self, deadline: float, max_iterations: int | None) -> None:
        self.deadline = deadline
        self.max_iterations = max_iterations
        self.iterations = 0
        self.hit: str | None = None

    def __call__(self, best_cost: float) -> bool:
        if self.max_iterations is not None and self.iterations >= self.max_iterations:
            self.hit = "max_iterations"
            return True
        self.iterations += 1
        if time.perf_counter() >= self.deadline:
            self.hit = "time_limit"
            return True
        return False


def _iterated_local_search(
    ls: Any,
    pm: Any,
    init: Any,
    fresh_start: Callable[[], Any],
    params: PyvrpParams,
    stop: _Deadline,
) -> tuple[Any, int, int]:
    """PyVRP's iterated local search (late-acceptance hill climbing, as in
    ``pyvrp.IteratedLocalSearch.run``, which it reproduces exactly when ``restart_after`` is 0)
    with one addition: a run that has stalled (see ``PyvrpParams.restart_after``) gives way to
    a fresh run from ``fresh_start()``.

    Returns the best solution over all runs (feasible ones first), iterations and runs.
    """
    from pyvrp.RingBuffer import RingBuffer

    overall, overall_cost = init, math.inf
    iters, runs = 0, 0
    curr = init
    while True:
        runs += 1
        start = curr
        best = curr
        history: RingBuffer = RingBuffer(params.history_length)
        since_best = since_run_best = run_iters = run_best_at = 0
        cost_eval = pm.cost_evaluator()
        stopped = False
        while True:
            if stop(cost_eval.cost(best)):
                stopped = True
                break
            # A run that has stalled for as long as it took to find its best, and at least
            # restart_after iterations, is unlikely to improve soon: start afresh.
            if params.restart_after and since_run_best >= max(params.restart_after, run_best_at):
                break
            iters += 1
            run_iters += 1
            if since_best == params.num_iters_no_improvement:
                # PyVRP's own restart: back to the run's best with an empty history.
                history.clear()
                curr = best
                since_best = 0
            cost_eval = pm.cost_evaluator()
            cand = ls(curr, cost_eval, exhaustive=False)
            pm.register(cand)
            since_best += 1
            since_run_best += 1
            if cost_eval.cost(cand) < cost_eval.cost(best):
                best = cand
                since_best = since_run_best = 0
                run_best_at = run_iters
                # As PyVRP: polish a new best exhaustively; the polished one goes on either way.
                cand = ls(cand, cost_eval, exhaustive=True)
                if cand.is_feasible():
                    best = cand
            cand_cost = cost_eval.penalised_cost(cand)
            curr_cost = cost_eval.penalised_cost(curr)
            late = history.peek()
            late_cost = cost_eval.penalised_cost(late if late is not None else start)
            if cand_cost < late_cost or cand_cost < curr_cost:
                curr, curr_cost = cand, cand_cost
            if curr_cost < late_cost or late is None:
                history.append(curr)
            else:
                history.skip()
        # Compare runs on the true cost (CostEvaluator.cost is huge when infeasible).
        run_cost = cost_eval.cost(best) if best.is_feasible() else math.inf
        if run_cost < overall_cost or (overall_cost == math.inf and runs == 1):
            overall, overall_cost = best, run_cost
        if stopped:
            return overall, iters, runs
        curr = fresh_start()


def solve_pyvrp(
    problem: VRPTWProblem,
    *,
    time_limit_s: float = 30.0,
    seed: int = 0,
    max_iterations: int | None = None,
    params: PyvrpParams | None = None,
    initial_routes: list[list[int]] | None = None,
) -> BackendRun:
    """Solve ``problem`` with PyVRP's iterated local search.

    Parameters
    ----------
    problem : VRPTWProblem
    time_limit_s : float
        Wall-clock budget (seconds), data building and the initial local search included.
    seed : int
        PyVRP's random seed (same seed and ``max_iterations`` give the same result).
    max_iterations : int, optional
        Deterministic stop after this many iterations (unless the time limit comes first).
    params : PyvrpParams, optional
    initial_routes : list of list of int, optional
        Warm start, per vehicle, problem node ids; replaces PyVRP's random start.

    Returns
    -------
    BackendRun

    Raises
    ------
    PyVRPMissingError
        When PyVRP is not installed.
    """
    t0 = time.perf_counter()
    pyvrp = _import_pyvrp()
    from pyvrp.search import (
        OPERATORS,
        LocalSearch,
        NeighbourhoodParams,
        PerturbationManager,
        PerturbationParams,
        compute_neighbours,
    )

    params = params or PyvrpParams()
    pdata = build_pyvrp_data(problem)
    data = pdata.data
    stop = _Deadline(t0 + time_limit_s, max_iterations)

    rng = pyvrp.RandomNumberGenerator(seed=int(seed) % (2**32))
    neighbours = compute_neighbours(
        data,
        NeighbourhoodParams(
            weight_wait_time=params.weight_wait_time, num_neighbours=params.num_neighbours
        ),
    )
    perturbation = PerturbationManager(
        PerturbationParams(params.min_perturbations, params.max_perturbations)
    )
    ls = LocalSearch(data, rng, neighbours, perturbation)
    for op in OPERATORS:
        if op.supports(data):
            ls.add_operator(op(data))
    penalty_params = pyvrp.PenaltyParams()
    pm = pyvrp.PenaltyManager(penalty_params.midpoint_penalties(data), penalty_params)

    def fresh_start() -> Any:
        return ls(pyvrp.Solution.make_random(data, rng), pm.max_cost_evaluator(), exhaustive=True)

    if initial_routes is not None:
        init = ls(
            _to_pyvrp_solution(pyvrp, pdata, initial_routes),
            pm.max_cost_evaluator(),
            exhaustive=True,
        )
        start_kind = "initial_routes"
    else:
        init = fresh_start()
        start_kind = "random"
    best, n_iter, n_runs = _iterated_local_search(ls, pm, init, fresh_start, params, stop)
    routes = pyvrp_routes(pdata, best, problem.n_vehicles)
    return BackendRun(
        routes=routes,
        stop_reason=stop.hit or "converged",
        runtime_s=time.perf_counter() - t0,
        stats={
            "iterations": n_iter,
            "runs": n_runs,
            "start": start_kind,
            "pyvrp_feasible": bool(best.is_feasible()),
            "solver_objective": int(
                best.distance_cost()
                + best.duration_cost()
                + best.fixed_vehicle_cost()
                + best.uncollected_prizes()
            ),
        },
    )
