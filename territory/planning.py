"""The whole national plan: partition -> routes -> simulated workload -> rebalance, repeated.

``plan(scenario)`` first balances territories on the *estimated* workload (visits x (visit time +
travel expected from local density)), then plans every rep's call cycle and measures each
territory's *simulated* workload from its routes (visit + drive + break hours, plus the time the
dropped visits would have needed). Where the simulated workload is out of tolerance, the
estimate is calibrated on the routes and the territories are rebalanced from the current plan
(few accounts move: each move costs a penalty), and only the reps whose accounts changed are
routed again. The loop stops when every rep is within ``workload_tolerance`` of the mean, when a
round no longer improves the worst deviation, or after ``max_rounds``; the best round is kept.

Calibration: for territory k with estimated workload E_k and simulated workload S_k, each of its
accounts' workload becomes ``w_i * S_k / E_k``: the estimate is right on average but wrong by
place (long home legs in sparse areas, detours around opening hours), and the factor carries the
routes' verdict back to the accounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from territory.alignment import TerritoryPlan, account_measures, partition
from territory.errors import InvalidInputError
from territory.model import Scenario
from territory.routes import RoutePlan, plan_routes

__all__ = ["LoopRound", "NationalPlan", "plan", "simulated_workload"]


@dataclass(frozen=True)
class LoopRound:
    """One round of the partition -> routes loop."""

    round: int
    max_dev_estimated: float
    max_dev_simulated: float
    accounts_moved: int
    reps_routed: int
    runtime_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"round": self.round, "max_dev_estimated": self.max_dev_estimated,
                "max_dev_simulated": self.max_dev_simulated,
                "accounts_moved": self.accounts_moved, "reps_routed": self.reps_routed,
                "runtime_s": self.runtime_s}


def simulated_workload(routes: RoutePlan, scenario: Scenario,
                       estimated_min: np.ndarray) -> pd.Series:
    """Rep id -> simulated cycle workload in hours: visit + drive + break of the routes, plus
    the estimated time (visit and travel) of the visits that were dropped."""
    acc = scenario.accounts
    per_visit = estimated_min / np.maximum(acc.visits, 1)
    index = {a: i for i, a in enumerate(acc.ids)}
    base = routes.reps.set_index("rep_id")["simulated_workload_h"].astype(float)
    if len(routes.dropped):
        idx = routes.dropped["account_id"].map(index).to_numpy()
        extra = pd.Series(per_visit[idx] / 60.0, index=routes.dropped["rep_id"].to_numpy())
        base = base.add(extra.groupby(level=0).sum(), fill_value=0.0)
    return base


@dataclass(frozen=True, eq=False)
class NationalPlan:
    """Territories, routes and how the loop got there.

    ``estimated`` / ``simulated`` hold each rep's workload in hours (estimate from the first
    partition's measure; simulation from the final routes).
    """

    scenario: Scenario
    territories: TerritoryPlan
    routes: RoutePlan
    rounds: tuple[LoopRound, ...]
    estimated_h: pd.Series
    simulated_h: pd.Series
    workload_tolerance: float
    runtime_s: float
    seed: int
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def within_tolerance(self) -> bool:
        """Every rep's simulated workload within ``workload_tolerance`` of the mean."""
        s = self.simulated_h
        return bool((abs(s - s.mean()) <= self.workload_tolerance * s.mean() + 1e-9).all())

    def summary_table(self) -> pd.DataFrame:
        """One row of headline figures (the row ``compare`` puts side by side)."""
        t = self.territories
        r = self.routes.reps
        s = self.simulated_h
        row: dict[str, Any] = {
            "reps": len(self.scenario.reps),
            "accounts": len(self.scenario.accounts),
            "territories_feasible": t.feasible,
        }
        for m, dev in t.max_deviation().items():
            row[f"{m}_max_dev_pct"] = 100 * dev
        row["sim_workload_mean_h"] = float(s.mean())
        row["sim_workload_max_dev_pct"] = float(100 * (abs(s - s.mean())).max() / s.mean())
        row["travel_h"] = float(r["drive_h"].sum())
        row["km"] = float(r["km"].sum())
        row["utilisation_mean_pct"] = float(100 * r["utilisation"].mean())
        row["visits_served"] = int(r["visits_served"].sum())
        row["visits_dropped"] = int(r["visits_dropped"].sum())
        row["nights"] = int(r["nights"].sum())
        row["accounts_moved"] = len(t.moved)
        row["rounds"] = len(self.rounds)
        row["runtime_s"] = self.runtime_s
        return pd.DataFrame([row])

    def summary(self) -> str:
        """Readable report: the loop, balance, routes."""
        lines = ["National plan", "-------------", self.territories.summary(),
                 self.routes.summary(), "Loop (simulated workload, max deviation from mean):"]
        for r in self.rounds:
            lines.append(f"  round {r.round}: estimated {100 * r.max_dev_estimated:5.1f} %, "
                         f"simulated {100 * r.max_dev_simulated:5.1f} %, "
                         f"{r.accounts_moved} accounts moved, {r.reps_routed} reps routed, "
                         f"{r.runtime_s:.0f} s")
        verdict = "within" if self.within_tolerance else "NOT within"
        lines.append(f"Every rep's simulated workload {verdict} ±"
                     f"{100 * self.workload_tolerance:.0f} % of the mean "
                     f"({self.runtime_s:.0f} s in all).")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (not the whole schedule: see ``write``)."""
        return {
            "summary": self.summary_table().iloc[0].to_dict(),
            "rounds": [r.to_dict() for r in self.rounds],
            "within_tolerance": self.within_tolerance,
            "workload_tolerance": self.workload_tolerance,
            "simulated_workload_hours": {k: float(v) for k, v in self.simulated_h.items()},
            "estimated_workload_hours": {k: float(v) for k, v in self.estimated_h.items()},
            "territories": self.territories.to_dict(),
            "routes": {k: v for k, v in self.routes.to_dict().items() if k != "schedule"},
            "parameters": dict(self.parameters),
            "seed": self.seed,
        }

    def write(self, folder: str | Path, *, maps: bool = True) -> dict[str, Path]:
        """Write every output into ``folder`` (see ``territory.outputs.write_all``)."""
        from territory.outputs import write_all

        return write_all(self, folder, maps=maps)


def _max_dev(values: pd.Series | np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or v.mean() <= 0:
        return 0.0
    return float(np.abs(v - v.mean()).max() / v.mean())


def plan(
    scenario: Scenario,
    *,
    tolerance: float | Mapping[str, float] = 0.05,
    workload_tolerance: float = 0.10,
    measures: Sequence[str] = ("workload", "potential", "count"),
    nest: Literal["province", "region"] | None = None,
    contiguous: bool = True,
    realign: bool = False,
    max_moved: float | None = None,
    partition_time_s: float = 60.0,
    route_time_s: float = 5.0,
    max_rounds: int = 4,
    move_penalty_km: float = 5.0,
    workers: int | None = 1,
    executor: Any = None,
    seed: int = 0,
    max_iterations: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> NationalPlan:
    """The whole plan: territories balanced on simulated workload, and every rep's routes.

    Parameters
    ----------
    tolerance:
        Partition tolerance per measure (on the estimated or calibrated workload).
    workload_tolerance:
        Target on the simulated workload: every rep within this fraction of the mean.
    partition_time_s, route_time_s:
        Time for each partition, and per rep for each routing.
    max_rounds:
        Rebalancing rounds after the first (0 = no loop: estimated balance only).
    move_penalty_km:
        Cost of moving one account in a rebalancing round, in km-equivalents of compactness.
    workers, executor:
        Processes for the per-rep routing (or an executor, e.g. Dask).

    Raises
    ------
    InvalidInputError
        Bad parameters; see ``partition`` and ``plan_routes``.
    """
    t0 = time.perf_counter()
    if "workload" not in measures:
        raise InvalidInputError("plan() balances on workload: include 'workload' in measures.")
    if not 0 < workload_tolerance < 1:
        raise InvalidInputError(f"workload_tolerance={workload_tolerance}; expected 0 < t < 1.")
    estimated = account_measures(scenario, ["workload"])[:, 0]

    def note(stage: str, done: int, total: int) -> None:
        if progress is not None:
            progress(stage, done, total)

    def route(tp: TerritoryPlan, only: Sequence[str] | None, round_no: int) -> RoutePlan:
        return plan_routes(tp, reps=only, time_limit_s=route_time_s, seed=seed + 1000 * round_no,
                           max_iterations=max_iterations, workers=workers or 1,
                           executor=executor,
                           progress=lambda d, t: note(f"routes round {round_no}", d, t))

    note("partition", 0, 1)
    tp = partition(scenario, tolerance=tolerance, measures=measures, nest=nest,
                   contiguous=contiguous, realign=realign, max_moved=max_moved,
                   time_limit_s=partition_time_s, seed=seed, max_iterations=max_iterations)
    note("partition", 1, 1)
    est_by_rep = pd.Series(estimated / 60.0).groupby(tp.rep_of_account).sum()
    rp = route(tp, None, 0)
    sim = simulated_workload(rp, scenario, estimated)
    rounds = [LoopRound(0, _max_dev(est_by_rep), _max_dev(sim), len(tp.moved),
                        len(rp.reps), time.perf_counter() - t0)]
    best = (tp, rp, sim)
    workload = estimated.copy()
    for k in range(1, max_rounds + 1):
        if _max_dev(best[2]) <= workload_tolerance:
            break
        t_round = time.perf_counter()
        cur_tp, cur_rp, cur_sim = best
        rep_of = cur_tp.rep_of_account
        est_now = pd.Series(workload / 60.0).groupby(rep_of).sum()
        factor = (cur_sim / est_now).reindex(pd.Index(rep_of)).to_numpy(dtype=float)
        factor = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
        workload = workload * factor
        new_tp = partition(scenario, tolerance=tolerance, measures=measures, nest=nest,
                           contiguous=contiguous, current=rep_of,
                           measure_values={"workload": workload},
                           move_penalty=move_penalty_km, time_limit_s=partition_time_s,
                           seed=seed + k, max_iterations=max_iterations)
        changed = sorted({str(r) for r in np.unique(np.concatenate([
            rep_of[new_tp.rep_of_account != rep_of],
            new_tp.rep_of_account[new_tp.rep_of_account != rep_of]]))} - {""})
        if changed:
            partial = route(new_tp, changed, k)
            new_rp = _merge_routes(cur_rp, partial, changed, new_tp)
        else:
            new_rp = cur_rp
        new_sim = simulated_workload(new_rp, scenario, estimated)
        moved = int((new_tp.rep_of_account != rep_of).sum())
        est_new = pd.Series(workload / 60.0).groupby(new_tp.rep_of_account).sum()
        rounds.append(LoopRound(k, _max_dev(est_new), _max_dev(new_sim), moved, len(changed),
                                time.perf_counter() - t_round))
        if _max_dev(new_sim) < _max_dev(best[2]) - 1e-4:
            best = (new_tp, new_rp, new_sim)
        else:
            break
    tp, rp, sim = best
    return NationalPlan(
        scenario=scenario, territories=tp, routes=rp, rounds=tuple(rounds),
        estimated_h=est_by_rep, simulated_h=sim, workload_tolerance=workload_tolerance,
        runtime_s=time.perf_counter() - t0, seed=seed,
        parameters={"tolerance": tolerance, "workload_tolerance": workload_tolerance,
                    "measures": list(measures), "nest": nest, "contiguous": contiguous,
                    "partition_time_s": partition_time_s, "route_time_s": route_time_s,
                    "max_rounds": max_rounds, "move_penalty_km": move_penalty_km,
                    "workers": workers, "max_iterations": max_iterations})


def _merge_routes(old: RoutePlan, new: RoutePlan, changed: Sequence[str],
                  tp: TerritoryPlan) -> RoutePlan:
    """``old`` with the reps in ``changed`` replaced by their plans in ``new``."""
    ch = set(changed)

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[~frame["rep_id"].isin(ch)] if len(frame) else frame

    plans = {r: p for r, p in old.plans.items() if r not in ch}
    plans.update(new.plans)
    ids = {r: a for r, a in old.account_ids.items() if r not in ch}
    ids.update(new.account_ids)
    failed = {r: e for r, e in old.failed.items() if r not in ch}
    failed.update(new.failed)
    return RoutePlan(
        plans=plans, account_ids=ids,
        schedule=pd.concat([keep(old.schedule), new.schedule], ignore_index=True)
        .sort_values(["rep_id", "day", "sequence"], kind="stable").reset_index(drop=True),
        days=pd.concat([keep(old.days), new.days], ignore_index=True)
        .sort_values(["rep_id", "day"], kind="stable").reset_index(drop=True),
        reps=pd.concat([keep(old.reps), new.reps], ignore_index=True)
        .sort_values("rep_id", kind="stable").reset_index(drop=True),
        dropped=pd.concat([keep(old.dropped), new.dropped], ignore_index=True),
        unassigned=new.unassigned if len(new.unassigned) else old.unassigned,
        runtime_s=old.runtime_s + new.runtime_s, seed=old.seed, parameters=old.parameters,
        failed=failed, scenario=old.scenario)
