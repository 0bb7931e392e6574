"""The single-day VRPTW problem and its result, as small frozen dataclasses over numpy arrays.

Model (all times and distances in the caller's units, e.g. minutes and km)::

    nodes 0..N-1; vehicles 0..V-1 leave starts[v] and finish at ends[v] (depot nodes);
    every other node is a visit, served at most once, by one vehicle:
        arrival a_i = departure of the previous stop + duration[prev, i]
        service start b_i = max(a_i, tw_early[i]) <= tw_late[i]      (waiting allowed)
        departure d_i = b_i + service[i]
    route load  sum demand[i] <= capacity[v]
    route duration (end arrival - start departure, waiting included) <= max_duration[v]
    start departure in [tw_early[starts[v]], tw_late[starts[v]]], end arrival <= tw_late[ends[v]]
    minimise  w_dist * total distance + w_dur * total route duration
              + sum of vehicle_fixed_cost[v] over used vehicles
              + sum of drop_penalty[i] over visits left out
    a visit with drop_penalty None / inf is required.

Solvers work in integers: every time and distance is multiplied by ``scale`` and rounded, so a
problem whose values are multiples of ``1 / scale`` (DIMACS: one decimal, ``scale=10``) is solved
and checked exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from solvers.errors import SolverInputError

__all__ = ["BackendRun", "Objective", "RoutingResult", "ScaledArrays", "VRPTWProblem"]

#: Largest scaled time or distance accepted: keeps sums over 10^4 arcs far from int64 overflow
#: (OR-Tools and PyVRP both compute in int64; PyVRP caps single values at 2**44).
MAX_SCALED_VALUE = 2**40


@dataclass(frozen=True)
class Objective:
    """Weights of the objective terms, in objective units per unit of distance and of time.

    Parameters
    ----------
    distance : float
        Cost per unit of travelled distance (DIMACS: 1).
    duration : float
        Cost per unit of route duration, waiting included (DIMACS: 0).
    """

    distance: float = 1.0
    duration: float = 0.0

    def __post_init__(self) -> None:
        for name in ("distance", "duration"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SolverInputError(
                    f"objective.{name}={value!r}; expected a finite weight >= 0."
                )
        if self.distance == 0 and self.duration == 0:
            raise SolverInputError(
                "objective: distance and duration weights are both 0; give one a positive weight."
            )


class ScaledArrays(NamedTuple):
    """Integer copies of a problem's arrays (times and distances multiplied by ``scale``).

    ``tw_late``, ``max_duration`` use ``horizon`` for "no limit". ``drop_penalty`` is in
    scaled objective units (``objective_multiplier * scale`` per objective unit), -1 = required.
    ``distance_cost`` / ``duration_cost`` are the integer weights per scaled unit.
    """

    duration: np.ndarray
    distance: np.ndarray
    service: np.ndarray
    tw_early: np.ndarray
    tw_late: np.ndarray
    demand: np.ndarray
    capacity: np.ndarray
    max_duration: np.ndarray
    fixed_cost: np.ndarray
    drop_penalty: np.ndarray
    horizon: int
    distance_cost: int
    duration_cost: int
    objective_multiplier: int


def _weight_multiplier(weights: Sequence[float]) -> int:
    """Smallest power of ten (<= 10^6) that makes every weight an integer, else 10^6."""
    for k in range(7):
        m = 10**k
        if all(abs(w * m - round(w * m)) <= 1e-9 * max(1.0, w * m) for w in weights):
            return m
    return 10**6


@dataclass(frozen=True, eq=False)
class VRPTWProblem:
    """A single-day vehicle routing problem with time windows (see the module docstring).

    Parameters
    ----------
    duration : array_like, shape (N, N)
        Travel time from node i to node j (time units, e.g. minutes), >= 0, zero diagonal.
    distance : array_like, shape (N, N)
        Travel distance from i to j (distance units, e.g. km), >= 0, zero diagonal.
    tw_early, tw_late : array_like, shape (N,)
        Time window of each node (time units). For a visit: the service start must fall inside.
        For a start depot: the departure. For an end depot: the return (arriving before
        ``tw_early`` means waiting, which counts in the duration). ``tw_late`` may be ``inf``.
    starts, ends : array_like of int, shape (V,)
        Start and end depot node of each vehicle (may differ, may be shared).
    service : array_like, shape (N,), optional
        Service time of each visit (time units), 0 at depots. Default 0.
    demand : array_like of int, shape (N,), optional
        Load of each visit, 0 at depots. Default 0 (no capacity dimension).
    capacity : array_like of int, shape (V,), optional
        Capacity of each vehicle. Default unlimited.
    max_duration : array_like, shape (V,), optional
        Maximum route duration of each vehicle (time units, waiting included); ``inf`` = none.
    drop_penalty : array_like, shape (N,), optional
        Cost of leaving a visit out (objective units); ``inf`` (or None for all) = required.
        Entries at depot nodes are ignored.
    vehicle_fixed_cost : float or array_like, shape (V,), optional
        Cost of using a vehicle (objective units). Default 0.
    objective : Objective
        Weights of distance and route duration. Default: distance only.
    scale : int
        Integer resolution: times and distances are rounded to multiples of ``1 / scale``
        before solving and checking (DIMACS one-decimal data: 10). Default 100 (0.01 minute,
        10 m when the units are minutes and km).
    name : str
        Label used in results and logs.

    Raises
    ------
    SolverInputError
        When a field has the wrong shape, a negative or non-finite value, an index out of range
        or an inconsistent window; the message names the field, the entry and the fix.
    """

    duration: np.ndarray
    distance: np.ndarray
    tw_early: np.ndarray
    tw_late: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    # None means "the default"; __post_init__ replaces every one by a read-only array, so
    # readers always see arrays.
    service: np.ndarray = None  # type: ignore[assignment]
    demand: np.ndarray = None  # type: ignore[assignment]
    capacity: np.ndarray = None  # type: ignore[assignment]
    max_duration: np.ndarray = None  # type: ignore[assignment]
    drop_penalty: np.ndarray = None  # type: ignore[assignment]
    vehicle_fixed_cost: np.ndarray = None  # type: ignore[assignment]
    objective: Objective = field(default_factory=Objective)
    scale: int = 100
    name: str = ""

    # ------------------------------------------------------------------ validation
    def __post_init__(self) -> None:
        if (
            isinstance(self.scale, bool)
            or not isinstance(self.scale, int | np.integer)
            or self.scale < 1
        ):
            raise SolverInputError(f"scale={self.scale!r}; expected an integer >= 1.")
        object.__setattr__(self, "scale", int(self.scale))
        if not isinstance(self.objective, Objective):
            raise SolverInputError(
                f"objective={self.objective!r}; "
                "expected solvers.routing.Objective(distance=..., duration=...)."
            )
        duration = self._matrix("duration")
        n = duration.shape[0]
        self._matrix("distance", n)
        starts = self._indices("starts", n)
        ends = self._indices("ends", n, len(starts))
        v = len(starts)
        self._vector("tw_early", n, allow_inf=False)
        tw_late = self._vector("tw_late", n, allow_inf=True)
        early = self.tw_early
        bad = np.flatnonzero(~(early <= tw_late))
        if bad.size:
            i = int(bad[0])
            raise SolverInputError(
                f"tw_late[{i}]={tw_late[i]!r} < tw_early[{i}]={early[i]!r}; "
                "a window must have tw_early <= tw_late."
            )
        self._vector("service", n, default=0.0)
        demand = self._vector("demand", n, default=0.0, integral=True)
        self._vector("capacity", v, default=np.inf, allow_inf=True, integral=True)
        self._vector("max_duration", v, default=np.inf, allow_inf=True)
        self._vector("drop_penalty", n, default=np.inf, allow_inf=True)
        fixed = self.vehicle_fixed_cost
        if fixed is None or np.ndim(fixed) == 0:
            object.__setattr__(
                self, "vehicle_fixed_cost", np.full(v, 0.0 if fixed is None else float(fixed))
            )
        self._vector("vehicle_fixed_cost", v)
        depots = np.union1d(starts, ends)
        for name, values in (("service", self.service), ("demand", demand)):
            nz = depots[values[depots] != 0]
            if nz.size:
                i = int(nz[0])
                raise SolverInputError(
                    f"{name}[{i}]={values[i]!r} at depot node {i}; depots take no {name} "
                    "(fold it into the travel times of the depot's arcs)."
                )
        self._check_scaled_range()

    def _as_array(self, name: str, dtype: type, raw: Any) -> np.ndarray:
        try:
            arr: np.ndarray = np.array(raw, dtype=dtype, copy=True)
        except (TypeError, ValueError) as exc:
            raise SolverInputError(
                f"{name}: cannot be read as {dtype.__name__} array ({exc})."
            ) from exc
        arr.setflags(write=False)
        object.__setattr__(self, name, arr)
        return arr

    def _matrix(self, name: str, n: int | None = None) -> np.ndarray:
        arr = self._as_array(name, np.float64, getattr(self, name))
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or (n is not None and arr.shape[0] != n):
            want = "(N, N)" if n is None else f"({n}, {n})"
            raise SolverInputError(f"{name}: shape {arr.shape}; expected a square matrix {want}.")
        if arr.shape[0] < 1:
            raise SolverInputError(f"{name}: empty matrix; expected at least one node (the depot).")
        bad = np.argwhere(~(np.isfinite(arr) & (arr >= 0)))
        if bad.size:
            i, j = (int(x) for x in bad[0])
            raise SolverInputError(
                f"{name}[{i}, {j}]={arr[i, j]!r}; expected finite values >= 0 "
                f"({len(bad)} bad entries)."
            )
        diag = np.flatnonzero(np.diag(arr) != 0)
        if diag.size:
            i = int(diag[0])
            raise SolverInputError(f"{name}[{i}, {i}]={arr[i, i]!r}; the diagonal must be 0.")
        return arr

    def _indices(self, name: str, n: int, v: int | None = None) -> np.ndarray:
        raw = np.asarray(getattr(self, name))
        if raw.ndim != 1 or raw.size == 0 or (v is not None and raw.size != v):
            want = "(V,) with V >= 1" if v is None else f"({v},) like starts"
            raise SolverInputError(f"{name}: shape {raw.shape}; expected {want}.")
        if not np.issubdtype(raw.dtype, np.integer):
            if not (np.issubdtype(raw.dtype, np.floating) and np.all(raw == np.round(raw))):
                raise SolverInputError(f"{name}: dtype {raw.dtype}; expected integer node indices.")
        arr = self._as_array(name, np.int64, raw)
        bad = np.flatnonzero((arr < 0) | (arr >= n))
        if bad.size:
            k = int(bad[0])
            raise SolverInputError(f"{name}[{k}]={arr[k]}; expected a node index in [0, {n}).")
        return arr

    def _vector(
        self,
        name: str,
        size: int,
        *,
        default: float | None = None,
        allow_inf: bool = False,
        integral: bool = False,
    ) -> np.ndarray:
        raw = getattr(self, name)
        if raw is None:
            if default is None:
                raise SolverInputError(f"{name}: missing; expected an array of shape ({size},).")
            raw = np.full(size, default)
        arr: np.ndarray = self._as_array(name, np.float64, raw)
        if arr.shape != (size,):
            raise SolverInputError(f"{name}: shape {arr.shape}; expected ({size},).")
        ok = (arr >= 0) & (np.isfinite(arr) | (allow_inf & (arr == np.inf)))
        if integral:
            ok &= (arr == np.round(arr)) | (arr == np.inf)
        bad = np.flatnonzero(~ok)
        if bad.size:
            i = int(bad[0])
            want = "integers" if integral else "values"
            want += " >= 0" + (" (inf allowed)" if allow_inf else ", finite")
            raise SolverInputError(f"{name}[{i}]={arr[i]!r}; expected {want}.")
        return arr

    def _check_scaled_range(self) -> None:
        for name in ("duration", "distance", "tw_early", "tw_late", "service", "max_duration"):
            arr = getattr(self, name)
            finite = arr[np.isfinite(arr)]
            if finite.size and finite.max() * self.scale > MAX_SCALED_VALUE:
                raise SolverInputError(
                    f"{name}: max {finite.max()!r} x scale {self.scale} "
                    f"exceeds {MAX_SCALED_VALUE}; "
                    "use coarser units or a smaller scale."
                )

    # ------------------------------------------------------------------ derived
    @property
    def n_nodes(self) -> int:
        """Number of nodes N (depots included)."""
        return int(self.duration.shape[0])

    @property
    def n_vehicles(self) -> int:
        """Number of vehicles V."""
        return int(self.starts.shape[0])

    @cached_property
    def depots(self) -> np.ndarray:
        """Sorted depot nodes (every start and end)."""
        return np.union1d(self.starts, self.ends)

    @cached_property
    def visits(self) -> np.ndarray:
        """Sorted visit nodes (every node that is not a depot)."""
        mask = np.ones(self.n_nodes, dtype=bool)
        mask[self.depots] = False
        return np.flatnonzero(mask)

    @cached_property
    def required(self) -> np.ndarray:
        """Boolean (N,): True for visits that must be served (no finite drop penalty)."""
        req = ~np.isfinite(self.drop_penalty)
        req[self.depots] = False
        return req

    @cached_property
    def scaled(self) -> ScaledArrays:
        """Integer arrays used by the solvers and by :func:`check_solution` (exact arithmetic)."""
        s = self.scale
        mult = _weight_multiplier((self.objective.distance, self.objective.duration))

        def times(x: np.ndarray) -> np.ndarray:
            return np.rint(np.asarray(x) * s).astype(np.int64)

        duration = times(self.duration)
        service = times(self.service)
        early = times(self.tw_early)
        finite_late = self.tw_late[np.isfinite(self.tw_late)]
        # A bound on any route's return time: latest start plus every service and longest arc.
        horizon = int(
            max(early.max(), times(finite_late).max() if finite_late.size else 0)
            + service.sum()
            + duration.max(axis=1).sum()
            + 1
        )
        late = np.where(
            np.isfinite(self.tw_late), times(np.nan_to_num(self.tw_late, posinf=0)), horizon
        )
        max_dur = np.where(
            np.isfinite(self.max_duration),
            times(np.nan_to_num(self.max_duration, posinf=0)),
            horizon,
        )
        demand = self.demand.astype(np.int64)
        big_cap = int(demand.sum()) + 1
        capacity = np.where(
            np.isfinite(self.capacity), np.nan_to_num(self.capacity, posinf=0), big_cap
        ).astype(np.int64)
        obj_unit = mult * s  # integer cost units per objective unit
        fixed = np.rint(np.asarray(self.vehicle_fixed_cost) * obj_unit).astype(np.int64)
        penalty = np.where(
            np.isfinite(self.drop_penalty),
            np.rint(np.nan_to_num(self.drop_penalty, posinf=0) * obj_unit),
            -1,
        ).astype(np.int64)
        return ScaledArrays(
            duration=duration,
            distance=times(self.distance),
            service=service,
            tw_early=early,
            tw_late=late.astype(np.int64),
            demand=demand,
            capacity=capacity,
            max_duration=max_dur.astype(np.int64),
            fixed_cost=fixed,
            drop_penalty=penalty,
            horizon=horizon,
            distance_cost=round(self.objective.distance * mult),
            duration_cost=round(self.objective.duration * mult),
            objective_multiplier=mult,
        )

    def has_capacity(self) -> bool:
        """True when some vehicle has a finite capacity and some visit a positive demand."""
        return bool(np.isfinite(self.capacity).any() and (self.demand > 0).any())

    def subproblem(self, nodes: np.ndarray) -> VRPTWProblem:
        """The same problem restricted to ``nodes`` (which must contain every depot).

        Node ``k`` of the result is ``nodes[k]`` of this problem.

        Raises
        ------
        SolverInputError
            When a depot is missing from ``nodes``.
        """
        nodes = np.asarray(nodes, dtype=np.int64)
        if not np.isin(self.depots, nodes).all():
            raise SolverInputError("subproblem: nodes must include every start and end depot.")
        pos = np.full(self.n_nodes, -1, dtype=np.int64)
        pos[nodes] = np.arange(len(nodes))
        grid = np.ix_(nodes, nodes)
        return VRPTWProblem(
            duration=self.duration[grid],
            distance=self.distance[grid],
            tw_early=self.tw_early[nodes],
            tw_late=self.tw_late[nodes],
            starts=pos[self.starts],
            ends=pos[self.ends],
            service=self.service[nodes],
            demand=self.demand[nodes],
            capacity=self.capacity,
            max_duration=self.max_duration,
            drop_penalty=self.drop_penalty[nodes],
            vehicle_fixed_cost=self.vehicle_fixed_cost,
            objective=self.objective,
            scale=self.scale,
            name=self.name,
        )


def _jsonable(x: Any) -> Any:
    """Numbers and nested tuples as plain JSON types (inf and nan become None)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | np.ndarray):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


@dataclass(frozen=True)
class BackendRun:
    """What a backend hands back to :func:`solvers.routing.solve_vrptw` before checking.

    ``routes`` is one visit list per vehicle (problem node ids), or None when no solution was
    found; ``stop_reason`` as in :class:`RoutingResult`; ``stats`` JSON-ready facts.
    """

    routes: list[list[int]] | None
    stop_reason: str
    runtime_s: float
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingResult:
    """The outcome of :func:`solvers.routing.solve_vrptw`: routes, schedule, costs and run facts.

    Every number here is recomputed from the routes by :func:`solvers.routing.check_solution`,
    not copied from a solver, so all backends report alike. Times are in the problem's time
    units, distances in its distance units.

    Attributes
    ----------
    routes : tuple of tuple of int
        For each vehicle, its visits in order (depots excluded); ``()`` = vehicle unused.
    arrival, start, departure : tuple of tuple of float
        Per vehicle and visit: arrival, service start (after any wait) and departure time.
    route_start, route_end : tuple of float
        Per vehicle: departure from its start depot and arrival at its end depot (0 if unused).
        The departure is the earliest one that gives the route its minimal duration.
    route_distance, route_duration : tuple of float
        Per vehicle: travelled distance and duration (end - start, waiting included).
    route_load : tuple of int
        Per vehicle: sum of demands served.
    dropped : tuple of int
        Visits left out, with ``dropped_reasons`` (same order).
    objective : float
        Objective value (objective units), drop penalties included.
    feasible : bool
        True when every constraint holds and every required visit is served.
    violations : tuple of str
        What is violated when ``feasible`` is False.
    runtime_s : float
        Wall-clock time of the solve (seconds).
    stop_reason : str
        Why the search stopped: ``time_limit``, ``max_iterations``, ``converged``,
        ``trivial`` (nothing to route) or ``no_solution``.
    seed : int
        The seed the run used.
    backend : str
        ``ortools`` or ``pyvrp``.
    stats : dict
        Backend facts (first-solution strategy, iterations, solver objective ...), JSON-ready.
    """

    routes: tuple[tuple[int, ...], ...]
    arrival: tuple[tuple[float, ...], ...]
    start: tuple[tuple[float, ...], ...]
    departure: tuple[tuple[float, ...], ...]
    route_start: tuple[float, ...]
    route_end: tuple[float, ...]
    route_distance: tuple[float, ...]
    route_duration: tuple[float, ...]
    route_load: tuple[int, ...]
    dropped: tuple[int, ...]
    dropped_reasons: tuple[str, ...]
    objective: float
    feasible: bool
    violations: tuple[str, ...]
    runtime_s: float
    stop_reason: str
    seed: int
    backend: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def total_distance(self) -> float:
        """Sum of route distances (distance units)."""
        return float(sum(self.route_distance))

    @property
    def total_duration(self) -> float:
        """Sum of route durations (time units)."""
        return float(sum(self.route_duration))

    @property
    def n_routes(self) -> int:
        """Number of vehicles used."""
        return sum(1 for r in self.routes if r)

    def summary(self) -> str:
        """A few human-readable lines: status, cost, routes, drops and run facts."""
        status = "feasible" if self.feasible else "INFEASIBLE"
        lines = [
            f"{status}: objective {self.objective:.6g}, distance {self.total_distance:.6g}, "
            f"duration {self.total_duration:.6g}, {self.n_routes} route(s) of {len(self.routes)}",
            f"visits served {sum(len(r) for r in self.routes)}, dropped {len(self.dropped)}",
            f"backend {self.backend}, seed {self.seed}, {self.runtime_s:.2f} s, "
            f"stopped: {self.stop_reason}",
        ]
        lines += [f"  violation: {v}" for v in self.violations[:10]]
        if len(self.violations) > 10:
            lines.append(f"  ... and {len(self.violations) - 10} more violations")
        reasons: dict[str, int] = {}
        for r in self.dropped_reasons:
            reasons[r] = reasons.get(r, 0) + 1
        lines += [f"  dropped ({n}): {r}" for r, n in reasons.items()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-ready plain types (lists, floats, ints; inf as None)."""
        out = {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}
        out["total_distance"] = self.total_distance
        out["total_duration"] = self.total_duration
        out["n_routes"] = self.n_routes
        json.dumps(out)  # fail here, not in the caller's serializer
        return out
