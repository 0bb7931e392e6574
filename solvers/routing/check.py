"""Independent feasibility check and re-costing of a VRPTW solution.

Shares nothing with the solver backends but the problem's integer arrays
(:attr:`VRPTWProblem.scaled`), so a bug in a backend's model cannot hide here. All arithmetic is
in scaled integers, hence exact for data that are multiples of ``1 / scale`` (DIMACS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from solvers.errors import SolverInputError
from solvers.routing.problem import VRPTWProblem

__all__ = ["RouteSchedule", "SolutionCheck", "check_solution", "schedule_route"]

#: How many violations a check lists before summarising the rest.
MAX_VIOLATIONS = 50


@dataclass(frozen=True)
class RouteSchedule:
    """One route's schedule and measures, in scaled integers (divide by ``scale`` for units).

    ``start`` is the departure from the start depot: the earliest one among those giving the
    minimal duration when the route is time-feasible (no idle wait before the first window
    opens), the depot's opening otherwise.
    ``time_warp`` is the total lateness (Vidal et al. 2013): 0 iff every window is met.
    """

    arrival: np.ndarray
    service_start: np.ndarray
    departure: np.ndarray
    start: int
    end: int
    distance: int
    duration: int
    load: int
    time_warp: int
    late_nodes: tuple[int, ...]
    excess_load: int
    excess_duration: int

    @property
    def feasible(self) -> bool:
        """True when windows, capacity and maximum duration all hold."""
        return self.time_warp == 0 and self.excess_load == 0 and self.excess_duration == 0


def schedule_route(problem: VRPTWProblem, vehicle: int, visits: Sequence[int]) -> RouteSchedule:
    """Schedule ``visits`` on ``vehicle`` with waiting allowed and measure every constraint.

    Parameters
    ----------
    problem : VRPTWProblem
    vehicle : int
        Vehicle index in ``[0, V)``.
    visits : sequence of int
        Visit nodes in order (no depots); assumed valid node indices.

    Returns
    -------
    RouteSchedule
        In scaled integers. An empty route has zero everything.
    """
    a = problem.scaled
    s_node, e_node = int(problem.starts[vehicle]), int(problem.ends[vehicle])
    seq = np.asarray(visits, dtype=np.int64)
    if seq.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return RouteSchedule(z, z, z, 0, 0, 0, 0, 0, 0, (), 0, 0)
    path = np.concatenate(([s_node], seq, [e_node]))
    arc_dur = a.duration[path[:-1], path[1:]]
    distance = int(a.distance[path[:-1], path[1:]].sum())
    load = int(a.demand[seq].sum())
    early, late, service = a.tw_early, a.tw_late, a.service

    def forward(t0: int) -> tuple[np.ndarray, np.ndarray, int, int, list[int]]:
        arrival = np.empty(len(seq), dtype=np.int64)
        begin = np.empty(len(seq), dtype=np.int64)
        t, warp, late_nodes = t0, 0, []
        for k, node in enumerate(seq.tolist()):
            t += int(arc_dur[k])
            arrival[k] = t
            t = max(t, int(early[node]))
            if t > late[node]:
                # Time warp: pretend to travel back in time to the deadline and go on.
                warp += t - int(late[node])
                late_nodes.append(node)
                t = int(late[node])
            begin[k] = t
            t += int(service[node])
        t += int(arc_dur[-1])
        t = max(t, int(early[e_node]))
        if t > late[e_node]:
            warp += t - int(late[e_node])
            late_nodes.append(e_node)
            t = int(late[e_node])
        return arrival, begin, t, warp, late_nodes

    t_first = int(early[s_node])
    arrival, begin, end, warp, late_nodes = forward(t_first)
    if warp == 0:
        # The duration end(s) - s never grows with the departure s, and end(s) =
        # max(s + to_end, end(earliest)) while every window holds; so the earliest departure
        # with the minimal duration is end(earliest) - to_end, capped by the latest departure
        # that still meets every window without waiting before it.
        prefix = np.cumsum(arc_dur[:-1]) + np.concatenate(([0], np.cumsum(service[seq])[:-1]))
        to_end = int(arc_dur.sum() + service[seq].sum())
        s_max = min(
            int(late[s_node]),
            int((late[seq] - prefix).min()),
            int(late[e_node]) - to_end,
        )
        best = min(max(end - to_end, t_first), s_max)
        if best > t_first:
            t_first = best
            arrival, begin, end, warp, late_nodes = forward(t_first)
    duration = end - t_first
    return RouteSchedule(
        arrival=arrival,
        service_start=begin,
        departure=begin + service[seq],
        start=t_first,
        end=end,
        distance=distance,
        duration=duration,
        load=load,
        time_warp=warp,
        late_nodes=tuple(late_nodes),
        excess_load=max(0, load - int(a.capacity[vehicle])),
        excess_duration=max(0, duration - int(a.max_duration[vehicle])),
    )


@dataclass(frozen=True)
class SolutionCheck:
    """Result of :func:`check_solution` (floats in problem units, ``*_scaled`` in integers).

    Attributes
    ----------
    feasible : bool
        Every route meets windows, capacity and maximum duration, no visit is served twice
        and every required visit is served.
    violations : tuple of str
        One line per violation (at most ``MAX_VIOLATIONS`` listed, then a count).
    routes : tuple of tuple of int
        The routes as checked, padded with ``()`` to one per vehicle.
    schedules : tuple of RouteSchedule
        Per vehicle (scaled integers).
    dropped : tuple of int
        Visits not served (sorted), required or not.
    unserved_required : tuple of int
        The required ones among ``dropped``.
    objective_scaled : int
        Objective in integer cost units (``objective_multiplier * scale`` per objective unit).
    objective, distance, duration : float
        Objective (penalties of dropped optional visits included; required ones add nothing),
        total distance and total route duration, in problem units.
    """

    feasible: bool
    violations: tuple[str, ...]
    routes: tuple[tuple[int, ...], ...]
    schedules: tuple[RouteSchedule, ...]
    dropped: tuple[int, ...]
    unserved_required: tuple[int, ...]
    objective_scaled: int
    objective: float
    distance: float
    duration: float

    @property
    def n_routes(self) -> int:
        """Number of non-empty routes."""
        return sum(1 for r in self.routes if r)


def check_solution(problem: VRPTWProblem, routes: Sequence[Sequence[int]]) -> SolutionCheck:
    """Verify a solution independently of any solver and recompute its cost.

    Parameters
    ----------
    problem : VRPTWProblem
    routes : sequence of sequence of int
        Route ``k`` is driven by vehicle ``k``; at most V routes (missing ones are empty).
        Visits only: no depot nodes.

    Returns
    -------
    SolutionCheck
        Feasibility, violations, per-route schedules and the recomputed objective.

    Raises
    ------
    SolverInputError
        When there are more routes than vehicles or a route holds a node index out of range or
        a depot (the routes cannot be read as a solution at all).
    """
    n, v = problem.n_nodes, problem.n_vehicles
    if len(routes) > v:
        raise SolverInputError(f"routes: {len(routes)} routes for {v} vehicles.")
    is_depot = np.zeros(n, dtype=bool)
    is_depot[problem.depots] = True
    padded: list[tuple[int, ...]] = []
    for k in range(v):
        route = tuple(int(x) for x in routes[k]) if k < len(routes) else ()
        for node in route:
            if not 0 <= node < n:
                raise SolverInputError(f"routes[{k}]: node {node} out of range [0, {n}).")
            if is_depot[node]:
                raise SolverInputError(f"routes[{k}]: node {node} is a depot; list visits only.")
        padded.append(route)

    violations: list[str] = []
    count = np.zeros(n, dtype=np.int64)
    for route in padded:
        np.add.at(count, np.asarray(route, dtype=np.int64), 1)
    for node in np.flatnonzero(count > 1).tolist():
        violations.append(f"node {node} served {int(count[node])} times")

    a = problem.scaled
    schedules = []
    for k, route in enumerate(padded):
        sched = schedule_route(problem, k, route)
        schedules.append(sched)
        if sched.time_warp:
            violations.append(
                f"vehicle {k}: time windows missed at nodes {list(sched.late_nodes)} "
                f"(total lateness {sched.time_warp / problem.scale:g})"
            )
        if sched.excess_load:
            violations.append(f"vehicle {k}: load {sched.load} > capacity {int(a.capacity[k])}")
        if sched.excess_duration:
            violations.append(
                f"vehicle {k}: duration {sched.duration / problem.scale:g} > max_duration "
                f"{a.max_duration[k] / problem.scale:g}"
            )

    visits = problem.visits
    dropped = visits[count[visits] == 0]
    unserved = dropped[problem.required[dropped]]
    if unserved.size:
        shown = unserved[:20].tolist()
        more = f" and {unserved.size - 20} more" if unserved.size > 20 else ""
        violations.append(f"required visits not served: {shown}{more}")

    used = np.array([bool(r) for r in padded])
    dist = sum(s.distance for s in schedules)
    dur = sum(s.duration for s in schedules)
    optional_dropped = dropped[~problem.required[dropped]]
    obj = (
        a.distance_cost * dist
        + a.duration_cost * dur
        + int(a.fixed_cost[used].sum())
        + int(a.drop_penalty[optional_dropped].sum())
    )
    if len(violations) > MAX_VIOLATIONS:
        violations = [
            *violations[:MAX_VIOLATIONS],
            f"... and {len(violations) - MAX_VIOLATIONS} more",
        ]
    return SolutionCheck(
        feasible=not violations,
        violations=tuple(violations),
        routes=tuple(padded),
        schedules=tuple(schedules),
        dropped=tuple(int(x) for x in dropped),
        unserved_required=tuple(int(x) for x in unserved),
        objective_scaled=int(obj),
        objective=obj / (a.objective_multiplier * problem.scale),
        distance=dist / problem.scale,
        duration=dur / problem.scale,
    )
