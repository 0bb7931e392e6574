"""Routing engine: the single-day VRPTW core (OR-Tools and PyVRP backends) and the multi-day
call-cycle planner (``cycle_*`` modules).

The VRPTW core::

    from solvers.routing import VRPTWProblem, solve_vrptw, check_solution
    result = solve_vrptw(problem, time_limit_s=10, seed=0)   # backend="auto"
    print(result.summary())

The call-cycle planner (one rep, a four-week cycle; see ``solvers.routing.cycle``)::

    from solvers.routing import CallCycleProblem, plan_call_cycle, check_cycle_plan
    plan = plan_call_cycle(problem, time_limit_s=10, seed=0)
    assert check_cycle_plan(problem, plan) == []
"""

from solvers.routing.check import SolutionCheck, check_solution
from solvers.routing.cycle import CycleParams, plan_call_cycle
from solvers.routing.cycle_check import check_cycle_plan
from solvers.routing.cycle_naive import plan_naive
from solvers.routing.cycle_plan import (
    DROP_REASONS,
    CallCyclePlan,
    DayPlan,
    DroppedVisit,
    PlannedVisit,
)
from solvers.routing.cycle_problem import CallCycleProblem, default_calendar, windows_from_hours
from solvers.routing.ortools_vrptw import OrtoolsParams, build_ortools_model, solve_ortools
from solvers.routing.problem import Objective, RoutingResult, VRPTWProblem
from solvers.routing.pyvrp_vrptw import PyVRPMissingError, PyvrpParams, pyvrp_available
from solvers.routing.vrptw import choose_backend, solve_vrptw, unreachable_visits

__all__ = [
    "DROP_REASONS",
    "CallCyclePlan",
    "CallCycleProblem",
    "CycleParams",
    "DayPlan",
    "DroppedVisit",
    "Objective",
    "OrtoolsParams",
    "PlannedVisit",
    "PyVRPMissingError",
    "PyvrpParams",
    "RoutingResult",
    "SolutionCheck",
    "VRPTWProblem",
    "build_ortools_model",
    "check_cycle_plan",
    "check_solution",
    "choose_backend",
    "default_calendar",
    "plan_call_cycle",
    "plan_naive",
    "pyvrp_available",
    "solve_ortools",
    "solve_vrptw",
    "unreachable_visits",
    "windows_from_hours",
]
