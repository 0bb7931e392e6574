"""OR-Tools backend: the full VRPTW model on the OR-Tools routing library.

Model (integers from :attr:`VRPTWProblem.scaled`):

- arc cost ``distance_cost * distance[i, j]`` from one registered transit *matrix* (no Python
  callback per arc, so the C++ search never calls back into Python);
- a ``Time`` dimension with transit ``service[i] + duration[i, j]`` (service folded row-wise:
  leaving i takes its service first), slack up to the horizon (waiting), node windows on the
  cumuls, depot windows on the vehicle start/end cumuls, ``max_duration`` as span upper bound
  and ``duration_cost`` as span cost;
- a ``Capacity`` dimension from a unary transit vector of demands, when capacities bind;
- vehicle fixed costs;
- one disjunction per visit: its drop penalty, or a big penalty for required visits. Required
  visits get one too: without it, on tight instances (Solomon R101, RC101, RC105) OR-Tools'
  default first-solution strategy (PATH_CHEAPEST_ARC) finds no solution at all within 3 s, and
  any strategy fails outright when some visit cannot fit. With the big penalty a heuristic may
  drop a visit, the local search puts it back, and a visit still dropped is reported.

Search: several first-solution strategies are tried within a share of the budget; the best
(by OR-Tools' own objective, drops included) is improved for the rest by OR-Tools' iterated
local search (SISR ruin and recreate, simulated-annealing acceptance), or by guided local search
when a warm start won (OR-Tools' ILS cannot start from a given assignment).

Determinism: OR-Tools' single-threaded search is deterministic for a given model and
parameters, except where a *time* limit cuts a phase. With ``max_iterations`` every phase is
cut by counts instead (construction unlimited, improvement ``solution_limit``), so the result is
reproducible as long as the time limit is not reached first. ``seed`` re-seeds the constraint
solver's random generator, but neither guided local search nor the ILS ruin steps draw from
it: in our tests different seeds gave identical results. Diversity across runs has to come from
the parameters (strategies, metaheuristic), not the seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2, solver_parameters_pb2

from solvers.errors import SolverFailure, SolverInputError
from solvers.routing.problem import BackendRun, VRPTWProblem

__all__ = [
    "FIRST_SOLUTION_STRATEGIES",
    "OrtoolsModel",
    "OrtoolsParams",
    "build_ortools_model",
    "extract_routes",
    "solve_ortools",
]

FIRST_SOLUTION_STRATEGIES = tuple(
    k for k in routing_enums_pb2.FirstSolutionStrategy.Value.keys() if k not in ("UNSET",)
)
METAHEURISTICS = (
    "GUIDED_LOCAL_SEARCH",
    "ITERATED_LOCAL_SEARCH",
    "SIMULATED_ANNEALING",
    "TABU_SEARCH",
    "GENERIC_TABU_SEARCH",
    "GREEDY_DESCENT",
)


@dataclass(frozen=True)
class OrtoolsParams:
    """Modelling and search knobs of the OR-Tools backend (run controls are separate).

    Parameters
    ----------
    first_solution_strategies : tuple of str
        ``FirstSolutionStrategy`` names tried in order; the best first solution is improved.
    construction_share : float
        Largest share of the time limit spent on first solutions (each strategy gets an equal
        part of what is left; one that finds nothing in time is skipped).
    descend_first_solutions : bool
        Take each first solution down to a local optimum (greedy descent, within its share)
        before comparing them. Raw constructions rank differently from their local optima.
    metaheuristic : str
        ``ITERATED_LOCAL_SEARCH`` (default: OR-Tools' ruin (SISR) and recreate with simulated
        annealing acceptance; it restarts from the best strategy's first solution, so a warm
        start is improved with guided local search instead), ``GUIDED_LOCAL_SEARCH``,
        ``SIMULATED_ANNEALING``, ``TABU_SEARCH``, ``GENERIC_TABU_SEARCH`` or
        ``GREEDY_DESCENT`` (stop at the first local optimum). On 10 Solomon and Homberger-200
        instances at 10 s, ILS was closer to the best known on 8 and level on 2.
    gls_lambda : float
        Guided local search penalty coefficient.
    neighbors_ratio : float or None
        Share of nearest neighbours the local search operators consider (OR-Tools
        ``ls_operator_neighbors_ratio``); None = automatic (all up to 200 nodes, fewer above).
    required_penalty : int or None
        Disjunction penalty of required visits, in integer cost units; None = automatic (larger
        than any saving a drop can bring).
    log_search : bool
        Print OR-Tools' search log.
    extra : dict
        Further ``RoutingSearchParameters`` scalar fields to set, by name (advanced tuning).
    """

    first_solution_strategies: tuple[str, ...] = (
        "PARALLEL_CHEAPEST_INSERTION",
        "LOCAL_CHEAPEST_INSERTION",
        "PATH_CHEAPEST_ARC",
        "SAVINGS",
    )
    construction_share: float = 0.25
    descend_first_solutions: bool = True
    metaheuristic: str = "ITERATED_LOCAL_SEARCH"
    gls_lambda: float = 0.1
    neighbors_ratio: float | None = None
    required_penalty: int | None = None
    log_search: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.first_solution_strategies:
            raise SolverInputError("first_solution_strategies: empty; name at least one strategy.")
        for s in self.first_solution_strategies:
            if s not in FIRST_SOLUTION_STRATEGIES:
                raise SolverInputError(
                    f"first_solution_strategies: {s!r} unknown; expected one of "
                    f"{', '.join(FIRST_SOLUTION_STRATEGIES)}."
                )
        if self.metaheuristic not in METAHEURISTICS:
            raise SolverInputError(
                f"metaheuristic={self.metaheuristic!r}; "
                f"expected one of {', '.join(METAHEURISTICS)}."
            )
        if not 0 < self.construction_share < 1:
            raise SolverInputError(
                f"construction_share={self.construction_share!r}; expected a value in (0, 1)."
            )
        if self.neighbors_ratio is not None and not 0 < self.neighbors_ratio <= 1:
            raise SolverInputError(
                f"neighbors_ratio={self.neighbors_ratio!r}; expected a value in (0, 1] or None."
            )


@dataclass(eq=False)
class OrtoolsModel:
    """A built OR-Tools routing model of a :class:`VRPTWProblem`.

    Mutable on purpose: callers may add constraints (breaks, extra dimensions) through
    ``routing`` and the dimensions before calling :func:`solve_ortools` with ``model=``.
    Node ``i`` of the problem is OR-Tools node ``i``; use ``manager`` to map to indices.
    """

    problem: VRPTWProblem
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    time_dimension: pywrapcp.RoutingDimension
    capacity_dimension: pywrapcp.RoutingDimension | None
    required_penalty: int
    # The registered callbacks must outlive the model; keep their indices for reuse.
    transit_callbacks: dict[str, int] = field(default_factory=dict)


def _required_penalty(problem: VRPTWProblem) -> int:
    """A drop penalty for required visits that no saving from dropping one can outweigh.

    Dropping one visit saves at most its two arcs, a whole route's duration cost, one vehicle's
    fixed cost and the penalties of all optional visits (which it could make room for).
    """
    a = problem.scaled
    saving = (
        a.distance_cost * 2 * int(a.distance.max())
        + a.duration_cost * a.horizon
        + int(a.fixed_cost.max())
        + int(a.drop_penalty[a.drop_penalty > 0].sum())
    )
    penalty = 2 * saving + 1
    # OR-Tools sums the penalties of all dropped visits in int64.
    return int(min(penalty, (2**62) // (problem.n_nodes + 1)))


def build_ortools_model(
    problem: VRPTWProblem,
    *,
    required_penalty: int | None = None,
    compress_trail: bool = False,
) -> OrtoolsModel:
    """Build the OR-Tools routing model of ``problem`` (see the module docstring).

    Parameters
    ----------
    problem : VRPTWProblem
    required_penalty : int, optional
        Disjunction penalty for required visits (integer cost units); default automatic.
    compress_trail : bool
        Let the constraint solver compress its trail (less memory, slower). Default False.

    Returns
    -------
    OrtoolsModel
    """
    a = problem.scaled
    n, v = problem.n_nodes, problem.n_vehicles
    manager = pywrapcp.RoutingIndexManager(n, v, problem.starts.tolist(), problem.ends.tolist())
    model_params = pywrapcp.DefaultRoutingModelParameters()
    if not compress_trail:
        model_params.solver_parameters.compress_trail = (
            solver_parameters_pb2.ConstraintSolverParameters.NO_COMPRESSION
        )
    routing = pywrapcp.RoutingModel(manager, model_params)
    callbacks: dict[str, int] = {}

    if a.distance_cost > 0:
        callbacks["cost"] = routing.RegisterTransitMatrix((a.distance_cost * a.distance).tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(callbacks["cost"])

    time_matrix = a.service[:, None] + a.duration
    callbacks["time"] = routing.RegisterTransitMatrix(time_matrix.tolist())
    horizon = int(a.horizon)
    routing.AddDimension(callbacks["time"], horizon, horizon, False, "Time")
    time_dim = routing.GetDimensionOrDie("Time")
    for node in problem.visits.tolist():
        time_dim.CumulVar(manager.NodeToIndex(node)).SetRange(
            int(a.tw_early[node]), int(a.tw_late[node])
        )
    for k in range(v):
        s, e = int(problem.starts[k]), int(problem.ends[k])
        time_dim.CumulVar(routing.Start(k)).SetRange(int(a.tw_early[s]), int(a.tw_late[s]))
        time_dim.CumulVar(routing.End(k)).SetRange(int(a.tw_early[e]), int(a.tw_late[e]))
        if np.isfinite(problem.max_duration[k]):
            time_dim.SetSpanUpperBoundForVehicle(int(a.max_duration[k]), k)
        if a.duration_cost > 0:
            time_dim.SetSpanCostCoefficientForVehicle(int(a.duration_cost), k)
        if a.fixed_cost[k] > 0:
            routing.SetFixedCostOfVehicle(int(a.fixed_cost[k]), k)

    cap_dim = None
    if problem.has_capacity():
        callbacks["demand"] = routing.RegisterUnaryTransitVector(a.demand.tolist())
        routing.AddDimensionWithVehicleCapacity(
            callbacks["demand"], 0, a.capacity.tolist(), True, "Capacity"
        )
        cap_dim = routing.GetDimensionOrDie("Capacity")

    big = _required_penalty(problem) if required_penalty is None else int(required_penalty)
    for node in problem.visits.tolist():
        pen = int(a.drop_penalty[node])
        routing.AddDisjunction([manager.NodeToIndex(node)], big if pen < 0 else pen)

    return OrtoolsModel(
        problem=problem,
        manager=manager,
        routing=routing,
        time_dimension=time_dim,
        capacity_dimension=cap_dim,
        required_penalty=big,
        transit_callbacks=callbacks,
    )


def extract_routes(model: OrtoolsModel, assignment: pywrapcp.Assignment) -> list[list[int]]:
    """Per vehicle, the visited problem nodes in order (depots excluded)."""
    routing, manager = model.routing, model.manager
    routes = []
    for k in range(model.problem.n_vehicles):
        index = assignment.Value(routing.NextVar(routing.Start(k)))
        route = []
        while not routing.IsEnd(index):
            route.append(manager.IndexToNode(index))
            index = assignment.Value(routing.NextVar(index))
        routes.append(route)
    return routes


def _search_parameters(
    params: OrtoolsParams, strategy: str, time_limit_s: float | None, solution_limit: int | None
) -> Any:
    sp = pywrapcp.DefaultRoutingSearchParameters()
    sp.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, strategy)
    if params.metaheuristic == "ITERATED_LOCAL_SEARCH":
        # OR-Tools' ILS needs a ruin strategy: SISR (Christiaens and Vanden Berghe 2020) with
        # the paper's settings, simulated-annealing acceptance with temperatures from the arcs.
        sp.use_iterated_local_search = True
        ils = sp.iterated_local_search_parameters
        sisr = ils.ruin_recreate_parameters.ruin_strategies.add().sisr
        sisr.max_removed_sequence_size = 10
        sisr.avg_num_removed_visits = 10
        sisr.bypass_factor = 0.01
        sa = ils.reference_solution_acceptance_strategy.simulated_annealing
        sa.automatic_temperatures = True
    else:
        sp.local_search_metaheuristic = getattr(
            routing_enums_pb2.LocalSearchMetaheuristic, params.metaheuristic
        )
    sp.guided_local_search_lambda_coefficient = params.gls_lambda
    if params.neighbors_ratio is not None:
        sp.ls_operator_neighbors_ratio = params.neighbors_ratio
        sp.ls_operator_min_neighbors = 10
    if time_limit_s is not None:
        sp.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if solution_limit is not None:
        sp.solution_limit = int(solution_limit)
    sp.log_search = params.log_search
    for key, value in params.extra.items():
        setattr(sp, key, value)
    return sp


def sp_name(sp: Any) -> str:
    """The metaheuristic a ``RoutingSearchParameters`` selects, by name."""
    return routing_enums_pb2.LocalSearchMetaheuristic.Value.Name(sp.local_search_metaheuristic)


def solve_ortools(
    problem: VRPTWProblem,
    *,
    time_limit_s: float = 30.0,
    seed: int = 0,
    max_iterations: int | None = None,
    params: OrtoolsParams | None = None,
    initial_routes: list[list[int]] | None = None,
    model: OrtoolsModel | None = None,
) -> BackendRun:
    """Solve ``problem`` with OR-Tools (see the module docstring).

    Parameters
    ----------
    problem : VRPTWProblem
    time_limit_s : float
        Wall-clock budget (seconds), model building included.
    seed : int
        Re-seeds the constraint solver's random generator.
    max_iterations : int, optional
        Deterministic stop: number of solutions the improvement phase may accept (OR-Tools
        ``solution_limit``); first solutions are then built without time limits.
    params : OrtoolsParams, optional
    initial_routes : list of list of int, optional
        A warm start (per vehicle, visits only); tried before the first-solution strategies.
    model : OrtoolsModel, optional
        A model built by :func:`build_ortools_model` (possibly extended by the caller).

    Returns
    -------
    BackendRun
        Routes (empty when no solution was found), stop reason and search facts.

    Raises
    ------
    SolverFailure
        When OR-Tools rejects the model (invalid) rather than merely finding no solution.
    """
    t0 = time.perf_counter()
    params = params or OrtoolsParams()
    deadline = t0 + time_limit_s
    if model is None:
        model = build_ortools_model(problem, required_penalty=params.required_penalty)
    routing = model.routing
    routing.solver().ReSeed(int(seed) & 0x7FFFFFFF)
    deterministic = max_iterations is not None

    stats: dict[str, Any] = {"build_s": round(time.perf_counter() - t0, 3), "first_solutions": {}}
    best, best_cost, best_name = None, None, None
    candidates: list[tuple[str, Any]] = []
    if initial_routes is not None:
        candidates.append(("initial_routes", None))
    candidates += [(s, None) for s in params.first_solution_strategies]
    construction_end = t0 + params.construction_share * time_limit_s
    for name, _ in candidates:
        now = time.perf_counter()
        if now >= construction_end and best is not None:
            break
        if now >= deadline:
            break
        if name == "initial_routes":
            routing.CloseModelWithParameters(
                _search_parameters(params, params.first_solution_strategies[0], None, None)
            )
            # OR-Tools wants variable indices, which differ from nodes once depots are not 0.
            routes = initial_routes or []
            as_indices = [[model.manager.NodeToIndex(int(x)) for x in r] for r in routes]
            as_indices += [[] for _ in range(problem.n_vehicles - len(as_indices))]
            sol = routing.ReadAssignmentFromRoutes(as_indices, True)
        budget = None
        if not deterministic:
            # A construction is only cut at the overall deadline: OR-Tools was seen to give up
            # at once (NOT_SOLVED) when the guided local search started from a first solution
            # whose construction had been cut by a smaller budget. The construction share
            # only decides whether another strategy is tried.
            budget = max(0.05, deadline - now)
        # A first solution, descended to a local optimum when asked (cut by the budget):
        # raw constructions rank differently from their local optima (PATH_CHEAPEST_ARC is
        # the worst raw start on Homberger R2 and the best after descent).
        descent = params.descend_first_solutions
        limit = (max_iterations if deterministic else None) if descent else 1
        sp = _search_parameters(
            params, "AUTOMATIC" if name == "initial_routes" else name, budget, limit
        )
        sp.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
        sp.use_iterated_local_search = False
        if name == "initial_routes":
            if sol is not None and descent:
                sol = routing.SolveFromAssignmentWithParameters(sol, sp)
        else:
            sol = routing.SolveWithParameters(sp)
        if sol is None:
            stats["first_solutions"][name] = None
            continue
        cost = sol.ObjectiveValue()
        stats["first_solutions"][name] = cost
        if best_cost is None or cost < best_cost:
            best = routing.solver().Assignment(sol)
            best_cost, best_name = cost, name

    if best is None:
        status = routing.status()
        if status == routing_enums_pb2.RoutingSearchStatus.ROUTING_INVALID:
            raise SolverFailure(f"OR-Tools rejected the model of {problem.name or 'the problem'}.")
        return BackendRun(
            routes=None,
            stop_reason="no_solution",
            runtime_s=time.perf_counter() - t0,
            stats=stats,
        )
    stats["first_solution"] = best_name
    stats["first_solution_cost"] = best_cost

    remaining = deadline - time.perf_counter()
    final = best
    stop_reason = "time_limit"
    if remaining > 0.01 and best_name is not None:
        use_ils = params.metaheuristic == "ITERATED_LOCAL_SEARCH" and best_name != "initial_routes"
        if use_ils:
            # OR-Tools runs its ILS only from a first solution of its own: the best strategy's.
            sp = _search_parameters(params, best_name, remaining, max_iterations)
            sol = routing.SolveWithIteratedLocalSearch(sp)
        else:
            # Guided local search can start from any assignment, a warm start included.
            gls = (
                params
                if params.metaheuristic != "ITERATED_LOCAL_SEARCH"
                else replace(params, metaheuristic="GUIDED_LOCAL_SEARCH")
            )
            sp = _search_parameters(gls, "AUTOMATIC", remaining, max_iterations)
            sol = routing.SolveFromAssignmentWithParameters(best, sp)
        stats["metaheuristic"] = "ITERATED_LOCAL_SEARCH" if use_ils else sp_name(sp)
        if routing.status() == routing_enums_pb2.RoutingSearchStatus.ROUTING_INVALID:
            raise SolverFailure(
                f"OR-Tools rejected the search parameters of {params} (see its log on stderr)."
            )
        if sol is not None and sol.ObjectiveValue() <= best_cost:
            final = sol
        elapsed = time.perf_counter() - t0
        if elapsed < 0.97 * time_limit_s:
            stop_reason = "max_iterations" if deterministic else "converged"
    stats["solver_objective"] = final.ObjectiveValue()
    stats["required_penalty"] = model.required_penalty
    return BackendRun(
        routes=extract_routes(model, final),
        stop_reason=stop_reason,
        runtime_s=time.perf_counter() - t0,
        stats=stats,
    )


def with_params(params: OrtoolsParams | None, **changes: Any) -> OrtoolsParams:
    """A copy of ``params`` (default if None) with ``changes`` applied."""
    return replace(params or OrtoolsParams(), **changes)
