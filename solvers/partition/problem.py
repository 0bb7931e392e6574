"""The partitioning problem: what to carve, under which constraints (no solver knobs here).

Model
-----
Units ``i = 0..n-1`` at planar points ``x_i`` (km) with measures ``w_ia >= 0`` (``a = 0..m-1``)
are assigned to territories ``k = 0..p-1`` (assignment ``s(i)``, ``S_k = {i : s(i) = k}``):

* balance, every ``k`` and ``a``: ``|w_a(S_k) - t_ka| <= tol_a * t_ka`` with
  ``w_a(S) = sum_{i in S} w_ia`` and ``t_ka = targets[k, a]`` (default ``sum_i w_ia / p``);
* contiguity (``contiguous=True``): every ``S_k`` induces a connected subgraph of ``edges``;
* ``s(i) = locked[i]`` where ``locked[i] >= 0``; ``s(center_units[k]) = k``;
* groups: ``unit_group[i] = territory_group[s(i)]``;
* realignment: ``sum_{i moved} move_size[i] <= move_budget``, where ``i`` is moved when
  ``current[i] >= 0`` and ``s(i) != current[i]``.

Objective (minimised), plus ``sum_{i moved} move_cost[i]``:

* ``"sum_distance"``: ``sum_i weights[i] * ||x_i - c_{s(i)}||`` with ``c_k = centers[k]`` when
  given, else the weighted medoid of ``S_k`` (the unit ``j in S_k`` minimising
  ``sum_{i in S_k} weights[i] * ||x_i - x_j||``, so the problem is a balanced p-median);
* ``"diameter"``: ``max_k max_{i, j in S_k} ||x_i - x_j||`` (the CTDP benchmark objective).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from solvers.errors import SolverInputError

__all__ = ["OBJECTIVES", "PartitionProblem"]

OBJECTIVES = ("sum_distance", "diameter")


def _float_array(name: str, value: object, shape: tuple[int, ...]) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SolverInputError(f"{name}: cannot be read as numbers ({exc}).") from None
    if arr.shape != shape:
        raise SolverInputError(f"{name}: shape {arr.shape}; expected {shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise SolverInputError(
            f"{name}[{', '.join(map(str, idx))}] = {arr[tuple(idx)]}; expected a finite number."
        )
    return arr


def _int_array(name: str, value: object, shape: tuple[int, ...], lo: int, hi: int) -> np.ndarray:
    arr = np.array(value)
    if arr.shape != shape:
        raise SolverInputError(f"{name}: shape {arr.shape}; expected {shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or np.any(arr != np.round(arr)):
            raise SolverInputError(f"{name}: expected integers, got dtype {arr.dtype}.")
    arr = arr.astype(np.int64)
    bad = (arr < lo) | (arr >= hi)
    if bad.any():
        idx = np.argwhere(bad)[0]
        raise SolverInputError(
            f"{name}[{', '.join(map(str, idx))}] = {arr[tuple(idx)]}; "
            f"expected an index in [{lo}, {hi - 1}]."
        )
    return arr


def _nonnegative(name: str, arr: np.ndarray) -> None:
    if (arr < 0).any():
        idx = np.argwhere(arr < 0)[0]
        raise SolverInputError(
            f"{name}[{', '.join(map(str, idx))}] = {arr[tuple(idx)]}; expected >= 0."
        )


@dataclass(frozen=True, eq=False)
class PartitionProblem:
    """A territory-partitioning instance (see the module docstring for the model).

    Parameters
    ----------
    xy : (n, 2) planar coordinates in km (project lon/lat before).
    measures : (n, m) or (n,) measures to balance, >= 0 (accounts, potential, workload...).
    n_territories : p, 1 <= p <= n.
    tolerance : relative tolerance per measure, scalar or (m,), >= 0 (0.05 = +-5 %).
    edges : (e, 2) unit adjacency (e.g. :func:`solvers.partition.graph.delaunay_edges`);
        required when ``contiguous``. Without it the search neighbourhood is a Delaunay graph.
    contiguous : every territory must be connected in ``edges``.
    objective : ``"sum_distance"`` or ``"diameter"``.
    targets : (p, m) per-territory targets (reps of different capacity); default total / p.
    weights : (n,) weight of each unit in the sum-distance objective; default 1.
    centers : (p, 2) fixed territory centres (rep homes); default free (medoids).
    center_units : (p,) unit that must belong to territory k, or -1.
    locked : (n,) territory the unit must stay in, or -1.
    unit_group, territory_group : (n,) and (p,) group labels; a unit may only join a territory
        of its own group. Give both or neither.
    current : (n,) current territory of each unit, or -1 (realignment).
    move_cost : (n,) objective penalty per moved unit (needs ``current``).
    move_budget : bound on ``sum move_size`` over moved units (needs ``current``).
    move_size : (n,) size of each unit for the budget; default 1 (a count of units).
    measure_names : optional names for reports.

    Raises
    ------
    SolverInputError
        On a malformed field; the message names the field, the index and the value.
    """

    xy: np.ndarray
    measures: np.ndarray
    n_territories: int
    tolerance: np.ndarray | float = 0.05
    edges: np.ndarray | None = None
    contiguous: bool = True
    objective: Literal["sum_distance", "diameter"] = "sum_distance"
    targets: np.ndarray | None = None
    weights: np.ndarray | None = None
    centers: np.ndarray | None = None
    center_units: np.ndarray | None = None
    locked: np.ndarray | None = None
    unit_group: np.ndarray | None = None
    territory_group: np.ndarray | None = None
    current: np.ndarray | None = None
    move_cost: np.ndarray | None = None
    move_budget: float | None = None
    move_size: np.ndarray | None = None
    measure_names: tuple[str, ...] | None = field(default=None)

    def __post_init__(self) -> None:
        xy = np.asarray(self.xy)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise SolverInputError(f"xy: shape {xy.shape}; expected (n, 2).")
        n = xy.shape[0]
        if n == 0:
            raise SolverInputError("xy: no units; expected at least one.")
        set_ = object.__setattr__
        set_(self, "xy", _float_array("xy", xy, (n, 2)))
        meas = np.asarray(self.measures)
        if meas.ndim == 1:
            meas = meas.reshape(-1, 1)
        if meas.ndim != 2 or meas.shape[0] != n or meas.shape[1] == 0:
            raise SolverInputError(f"measures: shape {meas.shape}; expected ({n}, m), m >= 1.")
        m = meas.shape[1]
        meas = _float_array("measures", meas, (n, m))
        _nonnegative("measures", meas)
        set_(self, "measures", meas)

        p = self.n_territories
        if isinstance(p, bool) or not isinstance(p, int | np.integer):
            raise SolverInputError(f"n_territories: {p!r}; expected an int.")
        p = int(p)
        if not 1 <= p <= n:
            raise SolverInputError(f"n_territories = {p}; expected 1 <= p <= n = {n}.")
        set_(self, "n_territories", p)

        tol = self.tolerance
        if np.ndim(tol) == 0:
            tol = np.full(m, tol, dtype=np.float64)
        tol = _float_array("tolerance", tol, (m,))
        _nonnegative("tolerance", tol)
        set_(self, "tolerance", tol)

        if self.objective not in OBJECTIVES:
            raise SolverInputError(f"objective = {self.objective!r}; expected one of {OBJECTIVES}.")

        if self.edges is not None:
            e = np.asarray(self.edges)
            if e.size == 0:
                e = np.zeros((0, 2), dtype=np.int64)
            if e.ndim != 2 or e.shape[1] != 2:
                raise SolverInputError(f"edges: shape {e.shape}; expected (e, 2).")
            set_(self, "edges", _int_array("edges", e, e.shape, 0, n))
        elif self.contiguous and p < n:
            raise SolverInputError(
                "edges: None with contiguous=True; pass edges=delaunay_edges(xy) "
                "(solvers.partition.graph) or your own adjacency."
            )

        if self.targets is None:
            targets = np.broadcast_to(meas.sum(axis=0) / p, (p, m)).copy()
        else:
            targets = _float_array("targets", self.targets, (p, m))
            _nonnegative("targets", targets)
        set_(self, "targets", targets)

        if self.weights is not None:
            wts = _float_array("weights", self.weights, (n,))
            _nonnegative("weights", wts)
            set_(self, "weights", wts)
        if self.centers is not None:
            set_(self, "centers", _float_array("centers", self.centers, (p, 2)))
        if self.center_units is not None:
            cu = _int_array("center_units", self.center_units, (p,), -1, n)
            counts = np.bincount(cu[cu >= 0], minlength=n)
            if (counts > 1).any():
                dup = int(np.argmax(counts))
                raise SolverInputError(
                    f"center_units: unit {dup} is the centre unit of two territories; "
                    "give each territory its own unit or -1."
                )
            set_(self, "center_units", cu)
        if self.locked is not None:
            set_(self, "locked", _int_array("locked", self.locked, (n,), -1, p))
        if (self.unit_group is None) != (self.territory_group is None):
            raise SolverInputError(
                "unit_group/territory_group: give both or neither (groups nest units in "
                "territories of the same group)."
            )
        if self.unit_group is not None:
            lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
            ug = _int_array("unit_group", self.unit_group, (n,), lo, hi)
            tg = _int_array("territory_group", self.territory_group, (p,), lo, hi)
            missing = np.setdiff1d(np.unique(ug), np.unique(tg))
            if len(missing):
                i = int(np.flatnonzero(ug == missing[0])[0])
                raise SolverInputError(
                    f"unit_group[{i}] = {missing[0]}: no territory has this group; add a "
                    "territory with territory_group = this value or regroup the unit."
                )
            set_(self, "unit_group", ug)
            set_(self, "territory_group", tg)
        self._check_fixed_units()

        if self.current is not None:
            set_(self, "current", _int_array("current", self.current, (n,), -1, p))
        for name in ("move_cost", "move_size"):
            val = getattr(self, name)
            if val is not None:
                arr = _float_array(name, val, (n,))
                _nonnegative(name, arr)
                set_(self, name, arr)
        if self.move_budget is not None:
            b = float(self.move_budget)
            if not np.isfinite(b) or b < 0:
                raise SolverInputError(f"move_budget = {self.move_budget}; expected finite >= 0.")
            set_(self, "move_budget", b)
        if self.current is None and (
            self.move_cost is not None or self.move_budget is not None
        ):
            raise SolverInputError(
                "current: None while move_cost/move_budget is set; give the current "
                "territory of each unit (-1 for new units)."
            )
        if self.measure_names is not None:
            names = tuple(str(s) for s in self.measure_names)
            if len(names) != m:
                raise SolverInputError(f"measure_names: {len(names)} names for {m} measures.")
            set_(self, "measure_names", names)

    def _check_fixed_units(self) -> None:
        """Locks and centre units must agree with each other and with the groups."""
        p = self.n_territories
        fixed = self.fixed_territory()
        if self.locked is not None and self.center_units is not None:
            for k, i in enumerate(self.center_units):
                if i >= 0 and 0 <= self.locked[i] != k:
                    raise SolverInputError(
                        f"locked[{i}] = {self.locked[i]} but center_units[{k}] = {i}; "
                        "a centre unit belongs to its own territory."
                    )
        if self.unit_group is not None:
            bad = (fixed >= 0) & (
                self.unit_group != self.territory_group[np.clip(fixed, 0, p - 1)]
            )
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                field_name = "locked" if self.locked is not None and self.locked[i] >= 0 \
                    else "center_units"
                raise SolverInputError(
                    f"{field_name}: unit {i} (group {self.unit_group[i]}) is fixed to territory "
                    f"{fixed[i]} of group {self.territory_group[fixed[i]]}; locks must respect "
                    "the groups."
                )

    @property
    def n_units(self) -> int:
        """Number of units n."""
        return int(self.xy.shape[0])

    @property
    def n_measures(self) -> int:
        """Number of measures m."""
        return int(self.measures.shape[1])

    def fixed_territory(self) -> np.ndarray:
        """(n,) territory each unit is pinned to by ``locked`` or ``center_units``, else -1."""
        fixed = np.full(self.n_units, -1, dtype=np.int64)
        if self.locked is not None:
            fixed[:] = self.locked
        if self.center_units is not None:
            k = np.flatnonzero(self.center_units >= 0)
            fixed[self.center_units[k]] = k
        return fixed

    def unit_weights(self) -> np.ndarray:
        """(n,) sum-distance weights (ones by default)."""
        return self.weights if self.weights is not None else np.ones(self.n_units)

    def groups(self) -> tuple[np.ndarray, np.ndarray]:
        """Dense group ids ``(unit_group (n,), territory_group (p,))``, all zero without groups."""
        if self.unit_group is None:
            return np.zeros(self.n_units, np.int64), np.zeros(self.n_territories, np.int64)
        labels, inv = np.unique(
            np.concatenate([self.unit_group, self.territory_group]), return_inverse=True
        )
        del labels
        return inv[: self.n_units].astype(np.int64), inv[self.n_units :].astype(np.int64)
