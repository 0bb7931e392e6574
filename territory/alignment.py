"""Territory partitioning, the face of ``solvers.partition``: scenario in, ``TerritoryPlan`` out.

``partition(scenario, territories=None, tolerance=0.05, contiguous=True, time_limit_s=60, seed=0)``

1. **Measures** per account: ``workload`` (estimated cycle minutes, ``territory.workload``),
   ``potential``, ``count`` (1 each), ``visits`` or any numeric account column.
2. **Territories**: one per rep by default (territory k is rep k, seeded at the rep's home: the
   territory contains the unit nearest the home, and ``sum_distance`` is measured from the
   home); or ``territories=p`` with free centres. Reps of different ``capacity`` get targets in
   proportion.
3. **Nesting** (``nest="province"`` or ``"region"``): each part gets a whole number of
   territories in proportion to its workload (largest remainder, at least one per part); reps
   are matched to parts by a min-cost assignment on home distance. Targets are then the part's
   own mean, and the plan also reports deviation from the national mean.
4. **Units**: exact duplicates merged; above ``max_units`` accounts, a quadtree of basic units
   (``territory.geo.make_units``), each cell split into its connected pieces of the account
   graph and joined to the others as its accounts are (``connected_units``), so a plan
   contiguous over units is contiguous over accounts. The units are solved first; then
   (``refine=True``) the units' plan starts a search over the accounts themselves.
5. **Realignment** (``realign=True``): the accounts' ``current_rep`` is the current plan;
   ``max_moved`` caps the share of accounts (or of ``move_basis`` = "potential") that may change
   rep and ``move_penalty`` (km-equivalents per account) discourages moves. Locked accounts stay.

Everything reported (balance, contiguity, compactness, disruption) is recomputed at account level
by ``territory.metrics``, whatever the engine worked on.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from solvers.errors import SolverInputError
from solvers.partition import (
    PartitionParams,
    PartitionProblem,
    PartitionResult,
    solve_partition,
    warm_up,
)
from territory import metrics
from territory.errors import DataQualityWarning, InvalidInputError
from territory.geo import account_graph, connected_units, make_units, project_km
from territory.model import Scenario
from territory.workload import estimate_workload

__all__ = ["Districts", "TerritoryPlan", "account_measures", "group_districts", "partition",
           "partition_units"]

DEFAULT_MEASURES = ("workload", "potential", "count")
#: Share of the search time the account-level refinement gets when units were aggregated.
REFINE_SHARE = 0.5


def account_measures(scenario: Scenario, names: Sequence[str]) -> np.ndarray:
    """(n, m) measure values per account for the named measures.

    ``workload`` is the estimated cycle workload in minutes; ``count`` is 1 per account; any
    other name is a numeric account column (``potential``, ``visits``...).

    Raises
    ------
    InvalidInputError
        For an unknown or non-numeric measure.
    """
    acc = scenario.accounts
    cols = []
    workload = None
    for name in names:
        if name == "workload":
            if workload is None:
                workload = estimate_workload(acc, scenario.calendar, scenario.travel).total_min
            cols.append(workload)
        elif name == "count":
            cols.append(np.ones(len(acc)))
        elif name in acc.frame.columns:
            values = pd.to_numeric(acc.frame[name], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(values) | (values < 0)
            if bad.any():
                raise InvalidInputError(
                    f"Measure {name!r} has {int(bad.sum())} missing, negative or non-numeric "
                    f"values (first: account {acc.ids[np.argmax(bad)]!r}).",
                    hint="Balance measures must be numbers >= 0.")
            cols.append(values)
        else:
            raise InvalidInputError(
                f"Unknown measure {name!r}; use 'workload', 'count' or a numeric account column "
                f"({[c for c in acc.frame.columns if pd.api.types.is_numeric_dtype(acc.frame[c])]}).")
    return np.column_stack(cols) if cols else np.zeros((len(acc), 0))


@dataclass(frozen=True, eq=False)
class TerritoryPlan:
    """Accounts assigned to territories, with the measures that judge the plan.

    Attributes
    ----------
    account_ids : (n,) account ids, in the scenario's order.
    territory : (n,) territory index of each account (every account is assigned; accounts that
        could not be are listed in ``unassigned`` with a reason and have -1).
    territory_ids, rep_ids : per territory (``rep_ids`` empty strings when not tied to reps).
    territories : per-territory table: measures, targets, deviation %, contiguity, compactness.
    measure_names, tolerance : what was balanced, and how tightly.
    feasible : every tolerance met and every territory contiguous (when asked), at account level.
    violations : what is not met, in words (which measure, which territories).
    moved : realignment moves (account_id, from_rep, to_rep, reason).
    unassigned : account_id, reason.
    """

    account_ids: np.ndarray
    territory: np.ndarray
    territory_ids: tuple[str, ...]
    rep_ids: tuple[str, ...]
    territories: pd.DataFrame
    measure_names: tuple[str, ...]
    tolerance: np.ndarray
    feasible: bool
    violations: tuple[str, ...]
    moved: pd.DataFrame
    unassigned: pd.DataFrame
    objective: float
    objective_name: str
    lower_bound: float | None
    lower_bound_kind: str | None
    runtime_s: float
    seed: int
    parameters: Mapping[str, Any]
    lonlat: np.ndarray
    contiguous_required: bool
    notes: tuple[str, ...] = ()
    engine: PartitionResult | None = field(default=None, repr=False)
    scenario: Scenario | None = field(default=None, repr=False)

    @property
    def n_territories(self) -> int:
        return len(self.territory_ids)

    @property
    def rep_of_account(self) -> np.ndarray:
        """(n,) rep id of each account's territory ('' when unassigned or not tied to a rep)."""
        reps = np.array([*self.rep_ids, ""], dtype=object)
        return reps[np.where(self.territory >= 0, self.territory, len(self.rep_ids))]

    def assignment_frame(self) -> pd.DataFrame:
        """``account_id, territory, rep_id`` (territory as its id, e.g. ``T001``)."""
        tid = np.array([*self.territory_ids, ""], dtype=object)
        return pd.DataFrame({
            "account_id": self.account_ids,
            "territory": tid[np.where(self.territory >= 0, self.territory, len(tid) - 1)],
            "rep_id": self.rep_of_account,
        })

    def max_deviation(self) -> dict[str, float]:
        """Largest absolute deviation from target, per measure (fraction)."""
        return {m: float(self.territories[f"{m}_dev"].abs().max())
                for m in self.measure_names}

    def summary(self) -> str:
        """Readable lines: per measure max deviation vs tolerance, compactness, contiguity."""
        t = self.territories
        lines = [
            f"{len(self.account_ids):,} accounts -> {self.n_territories} territories: "
            f"{'feasible' if self.feasible else 'INFEASIBLE'} "
            f"({self.runtime_s:.1f} s, seed {self.seed})",
        ]
        for m, tol in zip(self.measure_names, self.tolerance, strict=True):
            dev = t[f"{m}_dev"].abs()
            lines.append(f"  {m:<10} max deviation {100 * dev.max():6.2f} %  (tolerance "
                         f"{100 * tol:.1f} %; {int((dev > tol + 1e-9).sum())} territories out)")
        lines.append(f"  compactness: {t['sum_distance_km'].sum():,.0f} km summed account-to-"
                     f"centre, mean {t['mean_distance_km'].mean():.1f} km, largest diameter "
                     f"{t['diameter_km'].max():,.0f} km")
        lines.append(f"  contiguous: {int(t['contiguous'].sum())}/{len(t)} territories"
                     + ("" if self.contiguous_required else " (not required)"))
        if self.lower_bound is not None:
            lines.append(f"  objective {self.objective:,.1f} ({self.objective_name}); lower bound "
                         f"{self.lower_bound:,.1f} ({self.lower_bound_kind})")
        if len(self.moved):
            reasons = self.moved["reason"].value_counts().to_dict()
            lines.append(f"  moved {len(self.moved):,} accounts: "
                         + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        if len(self.unassigned):
            lines.append(f"  unassigned: {len(self.unassigned)} (see .unassigned)")
        lines.extend(f"  violated: {v}" for v in self.violations[:10])
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (assignment as account_id -> territory id)."""
        frame = self.assignment_frame()
        return {
            "feasible": bool(self.feasible),
            "measures": list(self.measure_names),
            "tolerance": [float(x) for x in self.tolerance],
            "max_deviation": self.max_deviation(),
            "violations": list(self.violations),
            "objective": float(self.objective),
            "objective_name": self.objective_name,
            "lower_bound": self.lower_bound,
            "lower_bound_kind": self.lower_bound_kind,
            "runtime_s": float(self.runtime_s),
            "seed": int(self.seed),
            "parameters": dict(self.parameters),
            "notes": list(self.notes),
            "territories": self.territories.to_dict(orient="records"),
            "assignment": dict(zip(frame["account_id"], frame["territory"], strict=True)),
            "rep_of_territory": dict(zip(self.territory_ids, self.rep_ids, strict=True)),
            "moved": self.moved.to_dict(orient="records"),
            "unassigned": self.unassigned.to_dict(orient="records"),
        }

    def to_geodataframe(self, kind: Literal["territories", "accounts"] = "territories"
                        ) -> Any:
        """GeoDataFrame (EPSG:4326) of territory polygons with the per-territory table, or of
        accounts as points.

        Polygons are the union of the accounts' Voronoi cells cut to 50 km around them and to
        China's land (``territory.reports.territory_polygons``), so neighbours share borders
        and never overlap; a territory without accounts has no geometry."""
        import geopandas as gpd

        from territory.reports import territory_polygons

        if kind == "accounts":
            frame = self.assignment_frame()
            return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(
                self.lonlat[:, 0], self.lonlat[:, 1]), crs="EPSG:4326")
        shapes = territory_polygons(self.lonlat, self.territory)
        by_code = dict(zip(shapes["territory"].astype(int), shapes.geometry, strict=True))
        geoms = [by_code.get(k) for k in range(self.n_territories)]
        return gpd.GeoDataFrame(self.territories.copy(), geometry=geoms, crs="EPSG:4326")


# ----------------------------------------------------------------------------------------------


def _tolerances(tolerance: float | Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    if isinstance(tolerance, Mapping):
        unknown = set(tolerance) - set(names)
        if unknown:
            raise InvalidInputError(f"Tolerance given for unknown measure(s) {sorted(unknown)}; "
                                    f"measures are {list(names)}.")
        default = 0.05
        out = np.array([float(tolerance.get(n, default)) for n in names])
    else:
        out = np.full(len(names), float(tolerance))
    if (~np.isfinite(out)).any() or (out < 0).any():
        raise InvalidInputError(f"Tolerances must be finite and >= 0, got {out.tolist()}.")
    return out


def _apportion(weights: np.ndarray, total: int) -> np.ndarray:
    """Largest remainder, at least one seat per part with positive weight (if seats allow)."""
    weights = np.asarray(weights, dtype=float)
    k = len(weights)
    if total < k:
        raise InvalidInputError(
            f"{total} territories cannot be nested in {k} parts (each needs one); use fewer "
            "parts (nest='region') or more territories.")
    seats = np.ones(k, dtype=np.int64)
    left = total - k
    # No weight anywhere (e.g. every account with zero workload): parts count alike.
    if not weights.sum() > 0:
        weights = np.ones(k)
    share = weights / weights.sum() * total - 1.0
    share = np.maximum(share, 0)
    if share.sum() > 0:
        quota = share / share.sum() * left
        add = np.floor(quota).astype(np.int64)
        seats += add
        rem = quota - add
        for i in np.argsort(-rem, kind="stable")[: left - int(add.sum())]:
            seats[i] += 1
    else:
        seats[0] += left
    return seats


def partition(
    source: Scenario,
    territories: int | None = None,
    *,
    tolerance: float | Mapping[str, float] = 0.05,
    measures: Sequence[str] = DEFAULT_MEASURES,
    contiguous: bool = True,
    objective: Literal["sum_distance", "diameter"] = "sum_distance",
    centres: Literal["homes", "free"] | None = None,
    nest: Literal["province", "region"] | None = None,
    realign: bool = False,
    current: Sequence[str] | Mapping[str, str] | None = None,
    measure_values: Mapping[str, np.ndarray] | None = None,
    max_moved: float | None = None,
    move_basis: Literal["accounts", "potential"] = "accounts",
    move_penalty: float = 0.0,
    max_units: int = 25_000,
    refine: bool = True,
    time_limit_s: float = 60.0,
    seed: int = 0,
    max_iterations: int | None = None,
    params: PartitionParams | None = None,
) -> TerritoryPlan:
    """Partition a scenario's accounts into balanced, compact, contiguous territories.

    Parameters
    ----------
    source:
        The scenario (accounts, reps, calendar, travel model). For a generic table of units use
        ``partition_units``.
    territories:
        Number of territories; None = one per rep, seeded at the reps' homes.
    tolerance:
        Relative tolerance, one for all measures or ``{measure: tol}``.
    measures:
        Measures to balance (see ``account_measures``).
    objective:
        ``"sum_distance"`` (accounts to their territory centre: the rep's home when seeded, else
        the weighted medoid) or ``"diameter"``.
    centres:
        ``"homes"`` (default when territories are the reps) or ``"free"``.
    nest:
        Keep territories inside provinces or regions.
    realign, max_moved, move_basis, move_penalty:
        Start from the accounts' ``current_rep``; move at most ``max_moved`` (fraction of
        accounts or of potential); each moved account costs ``move_penalty`` km-equivalents.
    current:
        The current rep of each account (a sequence aligned with the accounts, or account id ->
        rep id), instead of the ``current_rep`` column; implies ``realign=True``.
    measure_values:
        Measure name -> (n,) values replacing the computed ones (e.g. a workload calibrated on
        simulated routes).
    max_units:
        Above this many distinct locations, accounts are aggregated into basic units first.
    refine:
        After a solve over aggregated units, search again over the accounts (exact
        duplicates merged) from the units' plan, with ``REFINE_SHARE`` of the search time.
    time_limit_s, seed, max_iterations, params:
        Run controls and engine knobs; the time limit covers the whole call except the
        engine's one-off compilation (the first call after an install), as in
        ``solve_partition``: otherwise that first call would give a different plan.

    Raises
    ------
    InvalidInputError
        Bad parameters (unknown measure, more territories than accounts, locks naming unknown
        reps...).
    """
    warm_up()
    t0 = time.perf_counter()
    if not isinstance(source, Scenario):
        raise InvalidInputError(
            f"partition() takes a Scenario, got {type(source).__name__}; for a table of units "
            "use territory.partition_units().")
    scenario = source
    acc = scenario.accounts
    reps = scenario.reps
    n = len(acc)
    names = tuple(measures)
    if not names:
        raise InvalidInputError("Give at least one measure to balance.")
    tol = _tolerances(tolerance, names)
    if time_limit_s <= 0:
        raise InvalidInputError(f"time_limit_s={time_limit_s}; expected > 0.")
    if max_units < 1:
        raise InvalidInputError(f"max_units={max_units}; expected >= 1 (accounts above it are "
                                "aggregated into about that many basic units).")
    tied_to_reps = territories is None or territories == len(reps)
    p = len(reps) if territories is None else int(territories)
    if p < 1:
        raise InvalidInputError(f"territories={territories}; expected >= 1.")
    if p > n:
        raise InvalidInputError(f"{p} territories for {n} accounts: every territory needs at "
                                "least one account; use fewer territories.")
    if centres is None:
        centres = "homes" if tied_to_reps else "free"
    if centres == "homes" and not tied_to_reps:
        raise InvalidInputError(f"centres='homes' needs one territory per rep ({len(reps)}), "
                                f"got territories={territories}.")
    meas = account_measures(scenario, [m for m in names if m not in (measure_values or {})]
                            ) if set(names) - set(measure_values or {}) else np.zeros((n, 0))
    if measure_values:
        cols, k = [], 0
        for name in names:
            if name in measure_values:
                v = np.asarray(measure_values[name], dtype=float)
                if v.shape != (n,) or (~np.isfinite(v)).any() or (v < 0).any():
                    raise InvalidInputError(f"measure_values[{name!r}] must hold {n} finite "
                                            "values >= 0, one per account.")
                cols.append(v)
            else:
                cols.append(meas[:, k])
                k += 1
        meas = np.column_stack(cols)
    with np.errstate(over="ignore"):
        total = meas.sum(axis=0)
    if not np.isfinite(total).all():
        a = int(np.argmin(np.isfinite(total)))
        i = int(np.argmax(meas[:, a]))
        raise InvalidInputError(
            f"Measure {names[a]!r} sums to more than a float holds (largest: account "
            f"{acc.ids[i]!r}, {names[a]}={meas[i, a]:g}).",
            hint="Give the measure in larger units (e.g. thousands).")
    xy = project_km(acc.lonlat)
    notes: list[str] = []

    rep_ids = np.array([str(r) for r in reps.ids], dtype=object) if tied_to_reps else \
        np.array([""] * p, dtype=object)
    rep_index = {r: k for k, r in enumerate(rep_ids)} if tied_to_reps else {}

    # -- groups (nesting) -------------------------------------------------------------------
    group = np.zeros(n, dtype=np.int64)
    territory_group = np.zeros(p, dtype=np.int64)
    group_labels: np.ndarray = np.array(["all"], dtype=object)
    if nest is not None:
        group_labels, group = np.unique(nest_labels(scenario, nest).astype(str),
                                        return_inverse=True)
        workload = meas[:, names.index("workload")] if "workload" in names else meas[:, 0]
        seats = _apportion(np.bincount(group, weights=workload, minlength=len(group_labels)), p)
        territory_group = np.repeat(np.arange(len(group_labels)), seats)

    # -- rep order / territory <-> rep matching ------------------------------------------
    homes_xy = project_km(reps.home_lonlat) if tied_to_reps else None
    if tied_to_reps and nest is not None:
        from scipy.optimize import linear_sum_assignment

        assert homes_xy is not None
        gx = np.column_stack([np.bincount(group, weights=xy[:, a]) / np.bincount(group)
                              for a in (0, 1)])
        cost = np.hypot(*(homes_xy[:, None, :] - gx[territory_group][None, :, :]).transpose(
            2, 0, 1))
        row, col = linear_sum_assignment(cost)
        order = np.empty(p, dtype=np.int64)
        order[col] = row  # territory slot -> rep
        rep_ids = rep_ids[order]
        homes_xy = homes_xy[order]
        rep_index = {r: k for k, r in enumerate(rep_ids)}
        moved_homes = [str(rep_ids[k]) for k in range(p)
                       if cost[order[k], k] > 150.0]
        if moved_homes:
            notes.append(f"{len(moved_homes)} rep(s) serve a part far (> 150 km) from home: "
                         f"{moved_homes[:5]}")

    # -- locks and realignment --------------------------------------------------------------
    locked_acc = np.full(n, -1, dtype=np.int64)
    current_acc = np.full(n, -1, dtype=np.int64)
    cur_rep = acc.frame["current_rep"].astype(str).to_numpy()
    if current is not None:
        realign = True
        if isinstance(current, Mapping):
            cur_rep = np.array([str(current.get(a, "")) for a in acc.ids], dtype=object)
        else:
            cur_rep = np.asarray(current, dtype=object).astype(str)
            if cur_rep.shape != (n,):
                raise InvalidInputError(f"current has {len(cur_rep)} entries for {n} accounts.")
    if (acc.frame["locked"].to_numpy(bool)).any() or realign:
        if not tied_to_reps:
            raise InvalidInputError("Locked accounts and realignment need territories tied to "
                                    "reps (territories=None).")
        known = np.array([rep_index.get(r, -1) for r in cur_rep], dtype=np.int64)
        lk = acc.frame["locked"].to_numpy(bool)
        bad = lk & (known < 0)
        if bad.any():
            raise InvalidInputError(
                f"{int(bad.sum())} locked account(s) name a current_rep that is not among the "
                f"reps (e.g. {acc.ids[np.argmax(bad)]!r} -> {cur_rep[np.argmax(bad)]!r}).",
                hint="Unlock them or add the rep.")
        locked_acc[lk] = known[lk]
        if realign:
            current_acc = known
            if (known < 0).all():
                raise InvalidInputError("realign=True but no account has a current_rep among "
                                        "the reps.")
        if nest is not None:
            clash = (locked_acc >= 0) & (territory_group[np.clip(locked_acc, 0, p - 1)] != group)
            if clash.any():
                i = int(np.argmax(clash))
                raise InvalidInputError(
                    f"Account {acc.ids[i]!r} is locked to rep {cur_rep[i]!r}, whose territory "
                    f"is nested in another {nest}; unlock it or do not nest.")

    # -- units ----------------------------------------------------------------------------------
    cap = None
    if n > max_units:
        target = meas.sum(axis=0) / p
        cap = np.maximum(target * np.maximum(tol, 0.02), 1e-9)
    # Units never mix parts, locks, or (when realigning) current reps.
    unit_label = group * (p + 2) + (current_acc + 1) if realign else group
    units = make_units(xy, meas, group=unit_label, lock=locked_acc, max_units=max_units,
                       cap=cap)
    acc_edges = None
    if n > max_units:
        # Units joined as their accounts are (``connected_units``), so that territories
        # contiguous over units are contiguous over accounts; the account graph is needed for
        # the report anyway.
        acc_edges, n_joined = account_graph(xy, group if nest is not None else None)
        units, edges = connected_units(units, acc_edges, xy, meas)
    u = units.account_unit
    nu = units.n_units
    if nu < p:
        raise InvalidInputError(f"{p} territories for {nu} distinct account locations: "
                                "every territory needs at least one; use fewer territories.")
    if nu < n:
        notes.append(f"solved on {nu:,} basic units ({n:,} accounts)")
        if nu < 10 * p:
            # Units of a fifth of a territory or more are hard to combine within a few per cent.
            notes.append(f"only {nu / p:.1f} units per territory: tight balance may be out of "
                         f"reach (about 20 per territory, max_units={20 * p:,}, make 5 % "
                         "possible, at a higher search cost)")
    if acc_edges is None:
        edges, n_joined = account_graph(units.xy,
                                        _unit_groups(units, group) if nest is not None else None)
    if n_joined and contiguous:
        warnings.warn(f"{n_joined} island(s) of accounts were joined to their nearest "
                      "neighbours for contiguity (islands, or gaps wider than the local spacing).",
                      DataQualityWarning, stacklevel=2)
        notes.append(f"{n_joined} island link(s) added to the account graph")
    centers = homes_xy if centres == "homes" else None
    size_acc = np.ones(n) if move_basis == "accounts" else acc.potential
    if realign and max_moved is not None and not 0 <= max_moved <= 1:
        raise InvalidInputError(f"max_moved={max_moved}; expected a fraction 0..1.")

    def build(units: Any, edges: np.ndarray, center_units: np.ndarray | None
              ) -> PartitionProblem:
        """The engine's problem over ``units`` (each holding accounts of one group/lock)."""
        u = units.account_unit
        nu = units.n_units
        ugroup = _unit_groups(units, group)
        targets = _targets(units.measures, p, territory_group, ugroup,
                           reps.capacity if tied_to_reps else None,
                           None if not tied_to_reps or nest is None else rep_ids, reps)
        if centers is not None and center_units is None:
            center_units = _home_units(units.xy, ugroup, territory_group, centers,
                                       units.lock, p)
        ucurrent = None
        move_cost = move_budget = move_size = None
        if realign:
            ucurrent = np.full(nu, -1, dtype=np.int64)
            ucurrent[u] = current_acc
            move_size = np.bincount(u, weights=size_acc, minlength=nu)
            if max_moved is not None:
                move_budget = float(max_moved) * float(size_acc[current_acc >= 0].sum())
            if move_penalty:
                move_cost = move_penalty * np.bincount(u, minlength=nu).astype(float)
        try:
            return PartitionProblem(
                xy=units.xy, measures=units.measures, n_territories=p, tolerance=tol,
                edges=edges, contiguous=contiguous, objective=objective, targets=targets,
                weights=units.count, centers=centers, center_units=center_units,
                locked=units.lock if (units.lock >= 0).any() else None,
                unit_group=ugroup if nest is not None else None,
                territory_group=territory_group if nest is not None else None,
                current=ucurrent, move_cost=move_cost, move_budget=move_budget,
                move_size=move_size, measure_names=names)
        except SolverInputError as exc:
            raise InvalidInputError(f"Cannot build the partitioning problem: {exc}") from exc

    problem = build(units, edges, None)
    targets = problem.targets
    # Contiguity is reported on the account graph: the unit graph when units are accounts,
    # otherwise built now, inside the time limit rather than after it.
    if acc_edges is not None:
        report_edges = acc_edges
    elif units.n_units == n:
        inverse = np.empty(n, dtype=np.int64)
        inverse[u] = np.arange(n)
        report_edges = inverse[edges] if len(edges) else edges
    else:
        report_edges, _ = account_graph(xy, group if nest is not None else None)
    # What follows the search (tables, medoids, moves) is linear in the accounts: keep a
    # share of the limit for it.
    reserve = min(0.1 * time_limit_s, 2e-5 * n * max(1.0, np.log2(max(p, 2))))
    left = max(time_limit_s - (time.perf_counter() - t0) - reserve, 0.1)
    points = None
    if refine and acc_edges is not None:
        # Account-level refinement: the units' plan is the first start of a search over the
        # accounts themselves (exact duplicates merged), which moves single accounts across
        # the borders the units drew. Both graphs come from the same account graph, so the
        # units' contiguous plan is a contiguous start.
        points, point_edges = connected_units(
            make_units(xy, meas, group=unit_label, lock=locked_acc, max_units=n), acc_edges,
            xy, meas)
        if points.n_units <= nu:
            points = None
    share, first_iterations = 1.0, max_iterations
    if points is not None:
        share = 1.0 - REFINE_SHARE
        if max_iterations is not None:
            first_iterations = max_iterations // 2
    result = solve_partition(problem, time_limit_s=max(share * left, 0.05), seed=seed,
                             max_iterations=first_iterations, params=params)
    territory = result.assignment[u]
    solved_unit = u  # the units the engine's final result is over
    if points is not None:
        pu = points.account_unit
        solved_unit = pu
        start = np.zeros(points.n_units, dtype=np.int64)
        start[pu] = territory
        centre_points = None
        if problem.center_units is not None:
            centre_points = _centre_points(problem.center_units, u, pu, xy, homes_xy)
        fine = build(points, point_edges, centre_points)
        left = max(time_limit_s - (time.perf_counter() - t0) - reserve, 0.05)
        coarse_result = result
        result = solve_partition(fine, time_limit_s=left, seed=seed, initial=start,
                                 max_iterations=None if max_iterations is None
                                 else max_iterations - first_iterations, params=params)
        territory = result.assignment[pu]
        # the plan reports the engine's whole effort: both searches
        result = replace(result, runtime_s=coarse_result.runtime_s + result.runtime_s,
                         iterations=coarse_result.iterations + result.iterations,
                         n_starts=coarse_result.n_starts + result.n_starts)
        notes.append(f"refined over {points.n_units:,} account locations from the units' plan "
                     f"(units: {_worst(coarse_result):.1f} % worst deviation; accounts: "
                     f"{_worst(result):.1f} %)")

    account_targets = targets
    plan = _build_plan(
        scenario=scenario, territory=territory, p=p, rep_ids=rep_ids, names=names, tol=tol,
        meas=meas, targets=account_targets, xy=xy, centers_xy=centers, contiguous=contiguous,
        group=group if nest is not None else None, current=current_acc if realign else None,
        result=result, account_unit=solved_unit, notes=notes, t0=t0, seed=seed, objective=objective,
        edges=report_edges,
        parameters={"territories": p, "tolerance": dict(zip(names, tol.tolist(), strict=True)),
                    "measures": list(names), "contiguous": contiguous, "objective": objective,
                    "centres": centres, "nest": nest, "realign": realign,
                    "max_moved": max_moved, "move_basis": move_basis,
                    "move_penalty": move_penalty, "max_units": max_units,
                    "time_limit_s": time_limit_s, "max_iterations": max_iterations},
        group_labels=group_labels, territory_group=territory_group)
    return plan


def nest_labels(scenario: Scenario, nest: str | None) -> np.ndarray:
    """The part each account belongs to when territories nest in provinces or regions."""
    acc = scenario.accounts
    if nest is None:
        return np.zeros(len(acc), dtype=object)
    if nest == "province":
        return acc.province.astype(str).astype(object)
    if nest == "region":
        from territory import china

        reg = china.region_of_province()
        return np.array([reg.get(c, "") for c in acc.province], dtype=object)
    raise InvalidInputError(f"nest={nest!r}; expected 'province', 'region' or None.")


def table_violations(table: pd.DataFrame, names: Sequence[str], tol: np.ndarray,
                     contiguous: bool) -> list[str]:
    """What a territory table does not meet, in words (measure, worst territory, contiguity)."""
    violations = []
    for m, tl in zip(names, tol, strict=True):
        out = table.loc[table[f"{m}_dev"].abs() > tl + 1e-9]
        if len(out):
            worst = out.loc[out[f"{m}_dev"].abs().idxmax()]
            violations.append(
                f"{m}: {len(out)} territories beyond ±{100 * tl:.1f} % (worst {worst['territory']}"
                f" {100 * worst[f'{m}_dev']:+.1f} %): {list(out['territory'])[:8]}")
    if contiguous and not table["contiguous"].all():
        bad = table.loc[~table["contiguous"], "territory"].tolist()
        violations.append(f"contiguity: {len(bad)} territories in several pieces: {bad[:8]}")
    return violations


def _targets(meas: np.ndarray, p: int, territory_group: np.ndarray, unit_group: np.ndarray,
             capacity: np.ndarray | None, rep_ids: np.ndarray | None, reps: Any) -> np.ndarray:
    """(p, m) targets: each part's total shared by its territories in proportion to capacity."""
    if capacity is None:
        cap = np.ones(p)
    elif rep_ids is not None:
        by_id = dict(zip(reps.ids, capacity, strict=True))
        cap = np.array([by_id[r] for r in rep_ids], dtype=float)
    else:
        cap = np.asarray(capacity, dtype=float)
    m = meas.shape[1]
    targets = np.zeros((p, m))
    for g in np.unique(territory_group):
        tk = territory_group == g
        total = meas[unit_group == g].sum(axis=0)
        targets[tk] = total[None, :] * (cap[tk] / cap[tk].sum())[:, None]
    return targets


def _unit_groups(units: Any, group: np.ndarray) -> np.ndarray:
    """Each unit's part (province or region index), from its accounts' (units never mix parts)."""
    ugroup = np.zeros(units.n_units, dtype=np.int64)
    ugroup[units.account_unit] = group
    return ugroup


def _worst(result: PartitionResult) -> float:
    """Largest absolute deviation from target of an engine result, in per cent."""
    return 100.0 * float(np.abs(result.deviation).max()) if result.deviation.size else 0.0


def _centre_points(center_units: np.ndarray, unit_of_acc: np.ndarray, point_of_acc: np.ndarray,
                   xy: np.ndarray, homes: np.ndarray | None) -> np.ndarray:
    """For each territory's centre unit, the account location in it nearest the home (or its
    first), so the refinement pins a point inside the land the units' plan gave it."""
    order = np.argsort(unit_of_acc, kind="stable")
    starts = np.searchsorted(unit_of_acc[order], center_units, side="left")
    ends = np.searchsorted(unit_of_acc[order], center_units, side="right")
    out = np.full(len(center_units), -1, dtype=np.int64)
    for k, c in enumerate(center_units):
        if c < 0:
            continue
        idx = order[starts[k]:ends[k]]
        if homes is not None and len(idx) > 1:
            idx = idx[np.argmin(np.hypot(*(xy[idx] - homes[k]).T))][None]
        out[k] = point_of_acc[idx[0]]
    return out


def _home_units(xy: np.ndarray, ugroup: np.ndarray, territory_group: np.ndarray,
                homes: np.ndarray, ulock: np.ndarray, p: int) -> np.ndarray:
    """Unit nearest each home within the territory's group, one distinct unit per territory."""
    if len(xy) * p > 5_000_000:
        return _home_units_tree(xy, ugroup, territory_group, homes, ulock, p)
    out = np.full(p, -1, dtype=np.int64)
    taken = np.zeros(len(xy), dtype=bool)
    # Units locked to another territory cannot be a centre; nearest-first greedy by distance.
    d_all = []
    for k in range(p):
        cand = np.flatnonzero((ugroup == territory_group[k]) & ((ulock < 0) | (ulock == k)))
        d = np.hypot(*(xy[cand] - homes[k]).T)
        d_all.append((cand, d))
    order = np.argsort([d.min() if len(d) else np.inf for _, d in d_all], kind="stable")
    for k in order:
        cand, d = d_all[k]
        for j in cand[np.argsort(d, kind="stable")]:
            if not taken[j]:
                out[k] = j
                taken[j] = True
                break
    return out


def _home_units_tree(xy: np.ndarray, ugroup: np.ndarray, territory_group: np.ndarray,
                     homes: np.ndarray, ulock: np.ndarray, p: int) -> np.ndarray:
    """``_home_units`` for many units and territories: the same greedy on k-d trees.

    Scanning every unit for every home costs units x territories (25,000 x 5,000 at 10^6
    accounts); a tree per group answers each home with its nearest few free units instead.
    Ties in distance may resolve differently from the scan.
    """
    from scipy.spatial import cKDTree

    out = np.full(p, -1, dtype=np.int64)
    taken = np.zeros(len(xy), dtype=bool)
    trees: dict[int, tuple[Any, np.ndarray]] = {}
    for g in np.unique(territory_group):
        free = np.flatnonzero((ugroup == g) & (ulock < 0))
        trees[int(g)] = (cKDTree(xy[free]) if len(free) else None, free)
    locked_to: dict[int, np.ndarray] = {}
    for k in np.unique(ulock[ulock >= 0]):
        locked_to[int(k)] = np.flatnonzero((ulock == k) & (ugroup == territory_group[k]))

    def nearest(k: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        tree, free = trees[int(territory_group[k])]
        cand = [locked_to.get(k, np.zeros(0, np.int64))]
        if tree is not None:
            count = min(count, len(free))
            _, idx = tree.query(homes[k], k=count)
            cand.append(free[np.atleast_1d(idx)])
        c = np.concatenate(cand)
        d = np.hypot(*(xy[c] - homes[k]).T)
        o = np.lexsort((c, d))
        return c[o], d[o]

    first = [nearest(k, 1) for k in range(p)]
    order = np.argsort([d[0] if len(d) else np.inf for _, d in first], kind="stable")
    for k in order:
        count = 8
        while True:
            cand, _ = nearest(int(k), count)
            free_cand = cand[~taken[cand]]
            if len(free_cand):
                out[k] = free_cand[0]
                taken[free_cand[0]] = True
                break
            if count >= len(trees[int(territory_group[k])][1]):
                break
            count *= 4
    return out


def _build_plan(*, scenario: Scenario, territory: np.ndarray, p: int, rep_ids: np.ndarray,
                names: tuple[str, ...], tol: np.ndarray, meas: np.ndarray, targets: np.ndarray,
                xy: np.ndarray, centers_xy: np.ndarray | None, contiguous: bool,
                group: np.ndarray | None, current: np.ndarray | None, result: PartitionResult,
                account_unit: np.ndarray, edges: np.ndarray | None,
                notes: list[str], t0: float, seed: int, objective: str,
                parameters: dict[str, Any], group_labels: np.ndarray,
                territory_group: np.ndarray) -> TerritoryPlan:
    acc = scenario.accounts
    table, _ = metrics.territory_table(
        xy=xy, territory=territory, p=p, measures=meas, names=names, targets=targets,
        centers_xy=centers_xy, group=group, edges=edges)
    tids = tuple(f"T{k + 1:03d}" for k in range(p))
    table.insert(0, "territory", list(tids))
    table.insert(1, "rep_id", list(rep_ids))
    if group is not None:
        table.insert(2, "part", group_labels[territory_group])
    violations = table_violations(table, names, tol, contiguous)
    moved = pd.DataFrame(columns=["account_id", "from_rep", "to_rep", "reason"])
    if current is not None:
        unit_reason = np.full(len(result.assignment), "compactness", dtype=object)
        unit_reason[result.moved] = np.asarray(result.move_reasons, dtype=object)
        moved = metrics.moves_table(acc.ids, current, territory, rep_ids,
                                    unit_reason[account_unit])
    unassigned = pd.DataFrame({"account_id": acc.ids[territory < 0],
                               "reason": "no territory could take it"})
    return TerritoryPlan(
        account_ids=acc.ids, territory=territory.astype(np.int64), territory_ids=tids,
        rep_ids=tuple(str(r) for r in rep_ids), territories=table, measure_names=names,
        tolerance=tol, feasible=not violations and len(unassigned) == 0,
        violations=tuple(violations), moved=moved, unassigned=unassigned,
        objective=float(result.objective), objective_name=objective,
        lower_bound=result.lower_bound, lower_bound_kind=result.lower_bound_kind,
        runtime_s=time.perf_counter() - t0, seed=seed, parameters=parameters,
        lonlat=acc.lonlat, contiguous_required=contiguous, notes=tuple(notes),
        engine=result, scenario=scenario)


def partition_units(
    units: pd.DataFrame,
    territories: int,
    *,
    measures: Sequence[str],
    x: str = "x",
    y: str = "y",
    id_col: str = "id",
    edges: pd.DataFrame | None = None,
    tolerance: float | Mapping[str, float] = 0.05,
    contiguous: bool = True,
    objective: Literal["sum_distance", "diameter"] = "sum_distance",
    weight: str | None = None,
    time_limit_s: float = 60.0,
    seed: int = 0,
    max_iterations: int | None = None,
    params: PartitionParams | None = None,
) -> tuple[pd.DataFrame, PartitionResult]:
    """Partition a generic table of basic units with planar coordinates and any measures.

    ``edges`` has columns ``u, v`` of unit ids (built as a trimmed Delaunay graph when None).
    Returns ``(assignment frame with id, territory (0-based), result)``.

    Raises
    ------
    InvalidInputError
        Missing columns, duplicate or unknown ids, bad numbers (naming rows and values).
    """
    from territory.errors import Problem

    need = [id_col, x, y, *measures] + ([weight] if weight else [])
    missing = [c for c in need if c not in units.columns]
    if missing:
        raise InvalidInputError(f"The units table lacks column(s) {missing}; its columns are "
                                f"{list(units.columns)}.")
    if len(units) == 0:
        raise InvalidInputError("The units table is empty.")
    ids = units[id_col].astype(str).to_numpy()
    problems: list[Problem] = []
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    for i in np.flatnonzero(dup):
        problems.append(Problem(int(units.index[i]), ids[i], id_col, ids[i], "duplicate id"))
    cols = {}
    for c in [x, y, *measures] + ([weight] if weight else []):
        v = pd.to_numeric(units[c], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(v) | ((v < 0) if c not in (x, y) else np.zeros(len(v), bool))
        for i in np.flatnonzero(bad):
            problems.append(Problem(int(units.index[i]), ids[i], c, units[c].iloc[i],
                                    "expected a finite number" + ("" if c in (x, y)
                                                                  else " >= 0")))
        cols[c] = v
    if problems:
        raise InvalidInputError(f"{len(problems)} problem(s) in the units table:", problems,
                                kind="Unit")
    xy = np.column_stack([cols[x], cols[y]])
    meas = np.column_stack([cols[m] for m in measures])
    index = {k: i for i, k in enumerate(ids)}
    if edges is not None:
        if not {"u", "v"} <= set(edges.columns):
            raise InvalidInputError(f"The edges table needs columns u, v; it has "
                                    f"{list(edges.columns)}.")
        eu = edges["u"].astype(str).to_numpy()
        ev = edges["v"].astype(str).to_numpy()
        unknown = [(int(r), a) for r, a in zip(edges.index, eu, strict=True) if a not in index]
        unknown += [(int(r), b) for r, b in zip(edges.index, ev, strict=True) if b not in index]
        if unknown:
            raise InvalidInputError(
                f"{len(unknown)} edge end(s) name unknown unit ids:",
                [Problem(r, None, "u/v", a, "not an id of the units table") for r, a in unknown],
                kind="Edge")
        e = np.column_stack([[index[a] for a in eu], [index[b] for b in ev]]).astype(np.int64)
    else:
        e, _ = account_graph(xy)
    tol = _tolerances(tolerance, measures)
    try:
        problem = PartitionProblem(xy=xy, measures=meas, n_territories=int(territories),
                                   tolerance=tol, edges=e, contiguous=contiguous,
                                   objective=objective,
                                   weights=cols[weight] if weight else None,
                                   measure_names=tuple(measures))
    except SolverInputError as exc:
        raise InvalidInputError(f"Cannot build the partitioning problem: {exc}") from exc
    result = solve_partition(problem, time_limit_s=time_limit_s, seed=seed,
                             max_iterations=max_iterations, params=params)
    return pd.DataFrame({"id": ids, "territory": result.assignment}), result


@dataclass(frozen=True, eq=False)
class Districts:
    """Territories grouped into districts (a manager's span), see ``group_districts``.

    assignment : territory, rep_id, district.
    table : per district: territories, workload, workload_dev (from the mean), contiguous.
    """

    assignment: pd.DataFrame
    table: pd.DataFrame
    span: tuple[int, int]
    feasible: bool
    violations: tuple[str, ...]
    runtime_s: float

    def summary(self) -> str:
        t = self.table
        lines = [f"{len(self.assignment)} territories -> {len(t)} districts of "
                 f"{t['territories'].min()}-{t['territories'].max()} territories (span "
                 f"{self.span[0]}-{self.span[1]}), workload max deviation "
                 f"{100 * t['workload_dev'].abs().max():.1f} %, "
                 f"{int(t['contiguous'].sum())}/{len(t)} contiguous: "
                 f"{'feasible' if self.feasible else 'INFEASIBLE'}"]
        lines += [f"  violated: {v}" for v in self.violations]
        return "\n".join(lines)


def group_districts(
    plan: TerritoryPlan,
    *,
    span: tuple[int, int] = (6, 10),
    districts: int | None = None,
    tolerance: float = 0.10,
    time_limit_s: float = 10.0,
    seed: int = 0,
) -> Districts:
    """Group a plan's territories into contiguous districts balanced on workload (大区 > 代表).

    Each district holds between ``span[0]`` and ``span[1]`` territories (a manager's span) and
    its workload is within ``tolerance`` of the mean district; districts are connected on the
    territories' adjacency (territories are adjacent when their accounts are, on the account
    graph). ``districts`` defaults to the count whose mean span is nearest the middle of
    ``span``. Solved by the partitioning engine with territories as units.

    Raises
    ------
    InvalidInputError
        A span no district count can meet, or bad parameters.
    """
    t0 = time.perf_counter()
    lo, hi = int(span[0]), int(span[1])
    p = plan.n_territories
    if not 1 <= lo <= hi:
        raise InvalidInputError(f"span={span}; expected 1 <= min <= max.")
    if not tolerance >= 0:
        raise InvalidInputError(f"tolerance={tolerance}; expected >= 0.")
    feasible_d = [d for d in range(1, p + 1) if lo * d <= p <= hi * d]
    if districts is None:
        if not feasible_d:
            raise InvalidInputError(f"{p} territories cannot form districts of {lo}-{hi}.")
        districts = min(feasible_d, key=lambda d: (abs(p / d - (lo + hi) / 2), d))
    if not 1 <= districts <= p:
        raise InvalidInputError(f"districts={districts}; expected 1..{p}.")
    table = plan.territories
    workload = (table["workload"].to_numpy(dtype=float) if "workload" in table
                else table["accounts"].to_numpy(dtype=float))
    centre = table[["centre_lon", "centre_lat"]].to_numpy(dtype=float)
    xy = project_km(centre)
    acc_xy = project_km(plan.lonlat)
    a_edges, _ = account_graph(acc_xy)
    tu, tv = plan.territory[a_edges[:, 0]], plan.territory[a_edges[:, 1]]
    cross = (tu != tv) & (tu >= 0) & (tv >= 0)
    edges = np.unique(np.sort(np.column_stack([tu[cross], tv[cross]]), axis=1), axis=0)
    from solvers.partition.graph import connect_components

    edges, _ = connect_components(xy, edges.astype(np.int64))
    mean_span = p / districts
    # The span as a tolerance on the territory count: within [lo, hi] around the mean.
    count_tol = max(0.0, min((mean_span - lo) / mean_span, (hi - mean_span) / mean_span))
    problem = PartitionProblem(
        xy=xy, measures=np.column_stack([np.ones(p), workload]), n_territories=districts,
        tolerance=np.array([count_tol, tolerance]), edges=edges, contiguous=True,
        measure_names=("territories", "workload"))
    result = solve_partition(problem, time_limit_s=time_limit_s, seed=seed)
    names = tuple(f"D{k + 1:02d}" for k in range(districts))
    code = result.assignment
    assignment = pd.DataFrame({"territory": list(plan.territory_ids),
                               "rep_id": list(plan.rep_ids),
                               "district": [names[k] for k in code]})
    counts = np.bincount(code, minlength=districts)
    wsum = np.bincount(code, weights=workload, minlength=districts)
    out = pd.DataFrame({"district": list(names), "territories": counts, "workload": wsum,
                        "workload_dev": wsum / wsum.mean() - 1.0,
                        "contiguous": result.contiguous})
    violations = []
    bad = out[(out["territories"] < lo) | (out["territories"] > hi)]
    if len(bad):
        violations.append(f"span: {len(bad)} districts outside {lo}-{hi} territories: "
                          f"{list(bad['district'])[:8]}")
    badw = out[out["workload_dev"].abs() > tolerance + 1e-9]
    if len(badw):
        violations.append(f"workload: {len(badw)} districts beyond ±{100 * tolerance:.0f} %: "
                          f"{list(badw['district'])[:8]}")
    if not out["contiguous"].all():
        violations.append(f"contiguity: {list(out.loc[~out['contiguous'], 'district'])[:8]}")
    return Districts(assignment=assignment, table=out, span=(lo, hi),
                     feasible=not violations, violations=tuple(violations),
                     runtime_s=time.perf_counter() - t0)
