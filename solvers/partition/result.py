"""The outcome of a partitioning run: the plan, its scores, and how the run went."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.partition.params import PartitionParams

__all__ = ["PartitionResult", "Violation"]


def _finite(arr: np.ndarray) -> list:
    """Nested lists with non-finite entries (a zero target missed) as None, for strict JSON."""
    return np.where(np.isfinite(arr), arr, None).tolist()


@dataclass(frozen=True)
class Violation:
    """One unmet constraint of a plan.

    ``kind`` is ``"balance"`` (``measure`` set, ``amount`` = largest relative excess beyond the
    tolerance), ``"contiguity"`` (``amount`` = number of extra pieces), ``"budget"`` (``amount``
    = moved size beyond the budget), ``"lock"`` or ``"group"`` (``amount`` = units concerned).
    """

    kind: str
    territories: tuple[int, ...]
    amount: float
    measure: int | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "kind": self.kind,
            "measure": self.measure,
            "territories": list(self.territories),
            "amount": float(self.amount),
        }


@dataclass(frozen=True, eq=False)
class PartitionResult:
    """A partition plan with its scores.

    Attributes
    ----------
    assignment : (n,) territory of each unit.
    feasible : every tolerance met, contiguous when asked, locks, groups and budget respected.
    totals : (p, m) measure totals per territory.
    deviation : (p, m) signed relative deviation from the targets.
    contiguous : (p,) whether each territory is connected in the unit graph.
    objective : value of the problem's objective (including move costs).
    objective_name : ``"sum_distance"`` or ``"diameter"``.
    sum_distance : (p,) weighted distance of the units to their territory centre.
    diameter : (p,) largest distance between two units of the territory.
    centers : (p, 2) centres used by ``sum_distance`` (fixed or medoids).
    lower_bound : bound on the sum-distance objective, or None (see ``lower_bound_kind``).
    lower_bound_kind : what the bound relaxes (``"lp_fixed_centres"`` or
        ``"lagrangian_p_median"``), or None.
    runtime_s, iterations, n_starts : effort spent (iterations = local-search moves tried).
    stop_reason : ``"time_limit"``, ``"iteration_limit"`` or ``"converged"``.
    seed, params : run controls used.
    moved : indices of units whose territory differs from ``current``.
    move_reasons : reason code of each moved unit: ``"lock"``, ``"group"``, ``"contiguity"``,
        ``"balance:<measure>"`` (the measure's name, or its index when the problem names
        none) or ``"compactness"`` (the first one that moving it back alone would break or
        worsen).
    violations : unmet constraints (empty when feasible).
    measure_names : names of the measures for reports.
    """

    assignment: np.ndarray
    feasible: bool
    totals: np.ndarray
    deviation: np.ndarray
    contiguous: np.ndarray
    objective: float
    objective_name: str
    sum_distance: np.ndarray
    diameter: np.ndarray
    centers: np.ndarray
    lower_bound: float | None
    lower_bound_kind: str | None
    runtime_s: float
    iterations: int
    n_starts: int
    stop_reason: str
    seed: int
    params: PartitionParams
    moved: np.ndarray
    move_reasons: tuple[str, ...]
    violations: tuple[Violation, ...]
    measure_names: tuple[str, ...]

    @property
    def max_abs_deviation(self) -> np.ndarray:
        """(m,) largest absolute relative deviation of each measure over the territories."""
        return np.abs(self.deviation).max(axis=0)

    @property
    def gap(self) -> float | None:
        """Relative gap ``(objective - lower_bound) / objective``, or None without a bound."""
        if self.lower_bound is None or not np.isfinite(self.lower_bound) or self.objective <= 0:
            return None
        return max(0.0, (self.objective - self.lower_bound) / self.objective)

    def summary(self) -> str:
        """A few human-readable lines: feasibility, balance per measure, compactness, bound."""
        p, m = self.totals.shape
        lines = [
            f"{len(self.assignment)} units -> {p} territories: "
            f"{'feasible' if self.feasible else 'INFEASIBLE'}, {self.objective_name} = "
            f"{self.objective:.6g} ({self.stop_reason} after {self.runtime_s:.1f} s, "
            f"{self.iterations} iterations, {self.n_starts} starts)",
        ]
        for a in range(m):
            lines.append(
                f"  {self.measure_names[a]}: max deviation {100 * self.max_abs_deviation[a]:.2f} %"
            )
        lines.append(
            f"  largest diameter {self.diameter.max():.6g}, total sum-distance "
            f"{self.sum_distance.sum():.6g}, contiguous {int(self.contiguous.sum())}/{p}"
        )
        if self.lower_bound is not None:
            gap = self.gap
            lines.append(
                f"  lower bound {self.lower_bound:.6g} ({self.lower_bound_kind})"
                + (f", gap {100 * gap:.2f} %" if gap is not None else "")
            )
        if len(self.moved):
            counts: dict[str, int] = {}
            for r in self.move_reasons:
                counts[r] = counts.get(r, 0) + 1
            lines.append(
                f"  moved {len(self.moved)} units: "
                + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            )
        for v in self.violations:
            what = v.kind if v.measure is None else f"{v.kind} of {self.measure_names[v.measure]}"
            lines.append(f"  violated: {what} in territories {list(v.territories)[:10]}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of the plan and its scores."""
        return {
            "assignment": self.assignment.tolist(),
            "feasible": bool(self.feasible),
            "totals": self.totals.tolist(),
            "deviation": _finite(self.deviation),
            "max_abs_deviation": _finite(self.max_abs_deviation),
            "contiguous": self.contiguous.tolist(),
            "objective": float(self.objective),
            "objective_name": self.objective_name,
            "sum_distance": self.sum_distance.tolist(),
            "diameter": self.diameter.tolist(),
            "centers": self.centers.tolist(),
            "lower_bound": (
                float(self.lower_bound)
                if self.lower_bound is not None and np.isfinite(self.lower_bound) else None
            ),
            "lower_bound_kind": self.lower_bound_kind,
            "gap": self.gap,
            "runtime_s": float(self.runtime_s),
            "iterations": int(self.iterations),
            "n_starts": int(self.n_starts),
            "stop_reason": self.stop_reason,
            "seed": int(self.seed),
            "params": self.params.to_dict(),
            "moved": self.moved.tolist(),
            "move_reasons": list(self.move_reasons),
            "violations": [v.to_dict() for v in self.violations],
            "measure_names": list(self.measure_names),
        }
