"""What-if analysis: the cost of a realignment, the force a workload needs, variants side by side.

``realignment_report(current, plan)``
    Which accounts change rep against the existing alignment, why, and what each rep gains and
    loses. With ``c_i`` the current rep of account ``i`` (``""`` when none) and ``r_i`` its rep in
    the plan, the moved accounts are ``M = {i : c_i != "" and c_i != r_i}`` and the disruption
    is ``|M| / |{i : c_i != ""}|`` (accounts) and ``sum_M p_i / sum_{c_i != ""} p_i``
    (potential ``p``), as ``territory.metrics.disruption`` measures it.

``size_force_by_region(scenario, utilisation=0.85, workload=None)``
    Reps needed per macro-region and nationally: ``ceil(W_g / (A u))`` for the cycle workload
    ``W_g`` of region ``g`` (minutes), one rep's available minutes ``A`` over the cycle and the
    target utilisation ``u`` (``territory.workload.size_force``). The workload is the estimate,
    or any per-account minutes, e.g. ``calibrated_workload(plan)``: the estimate ``w_i`` scaled
    by its territory's simulated/estimated ratio ``S_k / E_k`` (the calibration of
    ``territory.planning``), so that each territory's total is its simulated workload.

``compare(scenario, variants, base=None, **common)``
    ``plan()`` once per variant (headcount, realign or not, tolerances...), one row each of the
    headline figures of ``NationalPlan.summary_table`` plus the disruption against the current
    alignment.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from territory import china, metrics
from territory.alignment import TerritoryPlan, account_measures
from territory.errors import InvalidInputError, TerritoryError
from territory.io import write_csv
from territory.model import REP_COLUMNS, Scenario
from territory.planning import NationalPlan, plan
from territory.synth import place_reps
from territory.workload import estimate_workload, size_force

__all__ = [
    "Comparison",
    "RealignmentReport",
    "calibrated_workload",
    "compare",
    "headcount_variants",
    "realignment_report",
    "size_force_by_region",
]

#: An alignment: account id -> rep id (mapping or Series indexed by account id), or one rep id
#: per account in the plan's order.
Alignment: TypeAlias = Mapping[str, str] | pd.Series | Sequence[str] | np.ndarray

#: Derived reasons for a move that the plan's own ``moved`` frame does not explain.
REASON_REP_LEFT = "rep left"
REASON_NEW_REP = "new rep"
REASON_REBALANCE = "rebalance"
REASON_UNASSIGNED = "unassigned"


# ----------------------------------------------------------------------------------------------
# helpers


def _territories(plan_or_territories: Any) -> TerritoryPlan:
    if isinstance(plan_or_territories, NationalPlan):
        return plan_or_territories.territories
    if isinstance(plan_or_territories, TerritoryPlan):
        return plan_or_territories
    raise InvalidInputError(
        f"Expected a NationalPlan or a TerritoryPlan, got {type(plan_or_territories).__name__}.",
        hint="Pass the result of territory.plan() or territory.partition().")


def _rep_text(values: Iterable[Any]) -> np.ndarray:
    """Rep ids as stripped text; missing (None, NaN) as ''."""
    out = []
    for v in values:
        if isinstance(v, np.generic):
            v = v.item()
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            out.append("")
        elif isinstance(v, float) and v.is_integer():
            out.append(str(int(v)))  # 12.0 read from a spreadsheet is rep "12"
        else:
            out.append(str(v).strip())
    return np.array(out, dtype=object)


def _alignment(current: Alignment, ids: np.ndarray, what: str = "current"
               ) -> tuple[np.ndarray, int]:
    """(rep per account in ``ids`` order, '' when none; ids of ``current`` not among ``ids``).

    A Series is read by its index when the index holds account ids, else by position.
    """
    n = len(ids)
    if isinstance(current, pd.Series):
        keys = current.index.astype(str)
        if keys.isin(ids).any():
            current = dict(zip(keys, current.to_numpy(dtype=object), strict=True))
        else:
            current = current.to_numpy(dtype=object)
    if isinstance(current, Mapping):
        lookup = {str(k).strip(): v for k, v in current.items()}
        reps = _rep_text(lookup.get(a) for a in ids)
        extra = len(set(lookup) - set(ids))
        return reps, extra
    if isinstance(current, (str, bytes)) or not isinstance(current, (Sequence, np.ndarray)):
        raise InvalidInputError(
            f"{what}: expected account id -> rep id (a mapping or a Series) or one rep id per "
            f"account, got {type(current).__name__}.")
    reps = _rep_text(current)
    if reps.shape != (n,):
        raise InvalidInputError(
            f"{what} has {len(reps)} entries for {n} accounts.",
            hint="Give one rep id per account in the plan's order, or a mapping "
                 "account id -> rep id.")
    return reps, 0


def _scenario_for(tp: TerritoryPlan, scenario: Scenario | None) -> Scenario:
    scen = scenario if scenario is not None else tp.scenario
    if scen is None:
        raise InvalidInputError("The plan carries no scenario; pass scenario= (its accounts give "
                                "the potential and the workload of each move).")
    ids = scen.accounts.ids.astype(str)
    if len(ids) != len(tp.account_ids) or not np.array_equal(ids, tp.account_ids.astype(str)):
        raise InvalidInputError(
            f"The scenario's {len(ids):,} accounts are not the plan's {len(tp.account_ids):,} "
            "(ids or order differ).", hint="Pass the scenario the plan was made from.")
    return scen


def _reason_label(code: str, measures: Sequence[str]) -> str:
    """Engine reason codes in words: ``balance:1`` -> ``balance:potential``."""
    code = str(code)
    if code.startswith("balance:"):
        tail = code.split(":", 1)[1]
        if tail.isdigit() and int(tail) < len(measures):
            return f"balance:{measures[int(tail)]}"
    return code


def _native(value: Any) -> Any:
    """A JSON-native Python value (NaN and infinities as None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_native(v) for v in value]
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _native(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def _sum_by(labels: np.ndarray, weights: np.ndarray | None = None) -> pd.Series:
    if weights is None:
        weights = np.ones(len(labels))
    return pd.Series(weights, dtype=float).groupby(pd.Index(labels, dtype=object)).sum()


# ----------------------------------------------------------------------------------------------
# realignment


@dataclass(frozen=True, eq=False)
class RealignmentReport:
    """What a new plan changes against the current alignment.

    Attributes
    ----------
    moves:
        One row per account whose rep changes: ``account_id``, ``name`` (when the accounts
        have names), ``from_rep``, ``to_rep`` (``""`` when the plan left it unassigned),
        ``potential``, ``workload_h`` (estimated cycle hours) and ``reason``: the plan's own
        reason when its ``moved`` frame holds the same move (``balance:<measure>``,
        ``contiguity``, ``compactness``, ``lock``, ``group``), else ``"rep left"`` (the rep is
        not in the plan), ``"new rep"`` (the receiving rep had no accounts),
        ``"unassigned"`` or ``"rebalance"``.
    by_rep:
        One row per rep of either alignment: ``rep_id``, ``status`` (``kept``, ``left``,
        ``new``), ``accounts_before``, ``accounts_after``, ``gained``, ``lost``, ``added``
        (accounts without a current rep given to it), ``net`` (gained - lost), the same for
        potential (``potential_before`` ... ``net_potential``) and estimated workload hours
        before and after. ``accounts_after = accounts_before + gained - lost + added``.
    disruption:
        ``accounts_moved``, ``share_accounts``, ``potential_moved``, ``share_potential`` (shares
        of the accounts, and of the potential, that had a current rep), ``workload_moved_h``,
        ``accounts_with_rep``, ``accounts_added``, ``reps_left``, ``reps_new`` and
        ``accounts_not_in_plan`` (ids of the current alignment the plan does not hold).
    """

    moves: pd.DataFrame
    by_rep: pd.DataFrame
    disruption: Mapping[str, float | int]

    def summary(self) -> str:
        """Readable lines: disruption, reasons, the reps that change most."""
        d = self.disruption
        lines = [
            f"Realignment: {d['accounts_moved']:,} of {d['accounts_with_rep']:,} aligned accounts "
            f"change rep ({100 * d['share_accounts']:.1f} %), potential "
            f"{d['potential_moved']:,.0f} ({100 * d['share_potential']:.1f} %), estimated "
            f"workload {d['workload_moved_h']:,.0f} h",
        ]
        if len(self.moves):
            reasons = self.moves["reason"].value_counts()
            lines.append("  reasons: " + ", ".join(f"{k} {v}" for k, v in reasons.items()))
        b = self.by_rep
        for status, word in (("left", "reps left"), ("new", "new reps")):
            ids = b.loc[b["status"] == status, "rep_id"].tolist()
            if ids:
                more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
                lines.append(f"  {word}: {', '.join(ids[:10])}{more}")
        if d["accounts_added"]:
            lines.append(f"  {d['accounts_added']:,} accounts without a current rep assigned")
        if d["accounts_not_in_plan"]:
            lines.append(f"  {d['accounts_not_in_plan']:,} accounts of the current alignment are "
                         "not in the plan (ignored)")
        changed = b.loc[(b["gained"] > 0) | (b["lost"] > 0)]
        if len(changed):
            cols = ["rep_id", "status", "accounts_before", "accounts_after", "gained", "lost",
                    "net", "net_potential"]
            top = changed.reindex(changed["net"].abs().sort_values(
                ascending=False, kind="stable").index)[cols].head(20)
            lines.append("  reps with changes (largest first):")
            lines.extend("    " + s for s in top.to_string(
                index=False, float_format=lambda x: f"{x:,.0f}").splitlines())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict: disruption, moves and by_rep as lists of records."""
        return {"disruption": _native(dict(self.disruption)),
                "moves": _records(self.moves), "by_rep": _records(self.by_rep)}

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``realignment_moves.csv`` and ``realignment_by_rep.csv`` (UTF-8 with BOM).

        Raises
        ------
        InvalidInputError
            The folder or a file cannot be written.
        """
        out = _folder(folder)
        return {"moves": write_csv(self.moves, out / "realignment_moves.csv"),
                "by_rep": write_csv(self.by_rep, out / "realignment_by_rep.csv")}


def realignment_report(
    current: Alignment | None,
    plan_or_territories: NationalPlan | TerritoryPlan,
    scenario: Scenario | None = None,
) -> RealignmentReport:
    """Moves, per-rep gains and losses, and disruption of a plan against the current alignment.

    Parameters
    ----------
    current:
        The existing alignment: account id -> rep id (a mapping, or a Series indexed by account
        id), or one rep id per account in the plan's order. None reads the accounts'
        ``current_rep`` column. Blank rep ids mean "no current rep" (not a move).
    plan_or_territories:
        The new plan (``territory.plan`` or ``territory.partition``), with territories tied to
        reps.
    scenario:
        The scenario the plan was made from (default: the plan's own); it gives each account's
        name, potential and estimated workload.

    Raises
    ------
    InvalidInputError
        A plan not tied to reps, no scenario, a scenario of other accounts, an alignment of the
        wrong length, or no account with a current rep.
    """
    tp = _territories(plan_or_territories)
    if not any(tp.rep_ids):
        raise InvalidInputError("The plan's territories are not tied to reps "
                                "(partition(territories=p)); a realignment compares reps.",
                                hint="Partition with territories=None (one per rep).")
    scen = _scenario_for(tp, scenario)
    acc = scen.accounts
    ids = tp.account_ids.astype(str).astype(object)
    if current is None:
        cur, extra = _rep_text(acc.frame["current_rep"].to_numpy(dtype=object)), 0
    else:
        cur, extra = _alignment(current, ids)
    had = cur != ""
    if not had.any():
        raise InvalidInputError(
            "No current alignment: no account has a current rep.",
            hint="Fill the accounts' current_rep column or pass current= "
                 "(account id -> rep id).")
    new = np.asarray(tp.rep_of_account, dtype=object).astype(str).astype(object)
    pot = acc.potential
    work_h = estimate_workload(acc, scen.calendar, scen.travel).total_min / 60.0
    plan_reps = [r for r in tp.rep_ids if r]
    plan_set = set(plan_reps)
    cur_set = set(cur[had])

    moved = had & (cur != new)
    idx = np.flatnonzero(moved)
    frm, to = cur[idx], new[idx]
    known = {}
    if len(tp.moved):
        pm = tp.moved
        known = {(str(a), str(f), str(t)): _reason_label(r, tp.measure_names)
                 for a, f, t, r in zip(pm["account_id"], pm["from_rep"], pm["to_rep"],
                                       pm["reason"], strict=True)}
    reasons = []
    for a, f, t in zip(ids[idx], frm, to, strict=True):
        r = known.get((a, f, t))
        if r is None:
            if f not in plan_set:
                r = REASON_REP_LEFT
            elif t == "":
                r = REASON_UNASSIGNED
            elif t not in cur_set:
                r = REASON_NEW_REP
            else:
                r = REASON_REBALANCE
        reasons.append(r)
    moves = pd.DataFrame({"account_id": ids[idx]})
    if "name" in acc.frame.columns:
        moves["name"] = acc.frame["name"].to_numpy(dtype=object)[idx]
    moves["from_rep"] = frm
    moves["to_rep"] = to
    moves["potential"] = pot[idx]
    moves["workload_h"] = work_h[idx]
    moves["reason"] = np.array(reasons, dtype=object)
    moves = moves.sort_values(["from_rep", "to_rep"], kind="stable").reset_index(drop=True)

    left = sorted(cur_set - plan_set)
    reps = plan_reps + left
    status = ["new" if r not in cur_set else "kept" for r in plan_reps] + ["left"] * len(left)
    after = new != ""
    gain_mask = moved & after
    added_mask = ~had & after

    def per_rep(labels: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
                ) -> np.ndarray:
        return _sum_by(labels[mask], None if weights is None else weights[mask]).reindex(
            reps, fill_value=0.0).to_numpy(dtype=float)

    by_rep = pd.DataFrame({"rep_id": reps, "status": status})
    for col, labels, mask in (("accounts_before", cur, had), ("accounts_after", new, after),
                              ("gained", new, gain_mask), ("lost", cur, moved),
                              ("added", new, added_mask)):
        by_rep[col] = per_rep(labels, mask).astype(np.int64)
    by_rep["net"] = by_rep["gained"] - by_rep["lost"]
    for col, labels, mask in (("potential_before", cur, had), ("potential_after", new, after),
                              ("potential_gained", new, gain_mask),
                              ("potential_lost", cur, moved)):
        by_rep[col] = per_rep(labels, mask, pot)
    by_rep["net_potential"] = by_rep["potential_gained"] - by_rep["potential_lost"]
    by_rep["workload_before_h"] = per_rep(cur, had, work_h)
    by_rep["workload_after_h"] = per_rep(new, after, work_h)

    base = metrics.disruption(cur.tolist(), new.tolist(), pot)
    disruption: dict[str, float | int] = {
        "accounts_moved": int(base["accounts_moved"]),
        "share_accounts": float(base["share_moved"]),
        "potential_moved": float(base["potential_moved"]),
        "share_potential": float(base["potential_share_moved"]),
        "workload_moved_h": float(work_h[moved].sum()),
        "accounts_with_rep": int(base["accounts_with_rep"]),
        "accounts_added": int(added_mask.sum()),
        "reps_left": len(left),
        "reps_new": status.count("new"),
        "accounts_not_in_plan": int(extra),
    }
    return RealignmentReport(moves=moves, by_rep=by_rep, disruption=disruption)


# ----------------------------------------------------------------------------------------------
# sizing


def calibrated_workload(plan: NationalPlan) -> np.ndarray:
    """Per-account cycle workload (minutes) calibrated on the plan's simulated routes.

    Each account's estimate ``w_i`` becomes ``w_i * S_k / E_k`` for its territory ``k``, with
    ``S_k`` the simulated and ``E_k`` the estimated workload of the territory (the calibration
    of ``territory.planning``); territories summing to no estimate, and unassigned accounts,
    keep ``w_i``. Each territory's total is then its simulated workload.

    Raises
    ------
    InvalidInputError
        If ``plan`` is not a NationalPlan (a TerritoryPlan has no simulated workload).
    """
    if not isinstance(plan, NationalPlan):
        raise InvalidInputError(
            f"calibrated_workload() needs a NationalPlan (simulated routes), got "
            f"{type(plan).__name__}.", hint="Run territory.plan(scenario) first.")
    est = account_measures(plan.scenario, ["workload"])[:, 0]
    rep_of = np.asarray(plan.territories.rep_of_account, dtype=object)
    est_by = pd.Series(est / 60.0).groupby(pd.Index(rep_of, dtype=object)).sum()
    factor = (plan.simulated_h / est_by).reindex(pd.Index(rep_of, dtype=object)
                                                 ).to_numpy(dtype=float)
    factor = np.where(np.isfinite(factor) & (factor > 0), factor, 1.0)
    return est * factor


def size_force_by_region(
    scenario: Scenario,
    utilisation: float = 0.85,
    workload: np.ndarray | Sequence[float] | None = None,
    *,
    levels: Sequence[Literal["region", "province"]] = ("region",),
    available_min: float | None = None,
) -> pd.DataFrame:
    """Reps needed per macro-region (and province) and nationally, at a target utilisation.

    Parameters
    ----------
    scenario:
        Accounts (their province gives the region, ``china.region_of_province``), reps and the
        calendar.
    utilisation:
        Target share of a rep's available time (0 < u <= 1).
    workload:
        Cycle workload per account in minutes, in the accounts' order (e.g.
        ``calibrated_workload(plan)``); None estimates it (``estimate_workload``).
    levels:
        Which groupings to report before the national row: ``"region"``, ``"province"``.
    available_min:
        One rep's working minutes over the cycle; default the median of the scenario's reps.

    Returns
    -------
    DataFrame with ``level, group, accounts, workload_h, reps_exact, reps_needed`` (as
    ``size_force``: rounded up per group, so the groups may sum to more than the national row),
    ``reps_now`` (reps whose home province lies in the group; all reps nationally) and
    ``gap = reps_needed - reps_now``. Accounts of no known region are grouped as
    ``"(unknown)"``.

    Raises
    ------
    InvalidInputError
        Utilisation outside (0, 1], a workload of the wrong length or with negative or missing
        values, an unknown level or a non-positive ``available_min``.
    """
    acc = scenario.accounts
    n = len(acc)
    if not (isinstance(utilisation, (int, float)) and 0 < utilisation <= 1):
        raise InvalidInputError(f"utilisation={utilisation!r}; expected 0 < utilisation <= 1 "
                                "(e.g. 0.85).")
    if workload is None:
        w = estimate_workload(acc, scenario.calendar, scenario.travel).total_min
    else:
        w = np.asarray(workload, dtype=float)
        if w.shape != (n,):
            raise InvalidInputError(f"workload has shape {w.shape}; expected ({n},): one value "
                                    "in minutes per account, in the accounts' order.")
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise InvalidInputError(
                f"Account {acc.ids[i]!r} (position {i}): workload={w[i]!r}; expected a finite "
                f"number of minutes >= 0 ({int(bad.sum())} such values).")
    if available_min is None:
        available_min = float(np.median(scenario.reps.available_minutes(scenario.calendar)))
    if not available_min > 0:
        raise InvalidInputError(f"available_min={available_min}; expected > 0 minutes.")
    unknown = [lv for lv in levels if lv not in ("region", "province")]
    if unknown:
        raise InvalidInputError(f"levels={list(levels)}: unknown {unknown}; use 'region' and/or "
                                "'province'.")
    region = china.region_of_province()
    province = np.array([str(p) or "(unknown)" for p in acc.province], dtype=object)
    groups: dict[str, np.ndarray] = {}
    rep_frame = scenario.reps.frame
    rep_groups: dict[str, np.ndarray] = {}
    for lv in levels:
        if lv == "region":
            groups[lv] = np.array([region.get(p, "") or "(unknown)" for p in acc.province],
                                  dtype=object)
            rep_groups[lv] = rep_frame["region"].astype(str).to_numpy(dtype=object)
        else:
            groups[lv] = province
            rep_groups[lv] = rep_frame["province"].astype(str).to_numpy(dtype=object)
    table = size_force(w, float(available_min), utilisation=float(utilisation), groups=groups)
    now = np.zeros(len(table), dtype=np.int64)
    for pos, (lv, g) in enumerate(zip(table["level"], table["group"], strict=True)):
        now[pos] = len(rep_frame) if lv == "national" else int((rep_groups[lv] == g).sum())
    table["reps_now"] = now
    table["gap"] = table["reps_needed"].astype(np.int64) - table["reps_now"]
    return table


# ----------------------------------------------------------------------------------------------
# comparing variants

#: Options a variant (or ``common``) may set: ``plan()``'s own, plus the headcount controls.
_PLAN_OPTIONS = frozenset(p for p in inspect.signature(plan).parameters if p != "scenario")
_HEADCOUNT_OPTIONS = frozenset({"n_reps", "reps", "rep_placement"})


@dataclass(frozen=True, eq=False)
class Comparison:
    """Plans of several variants of one scenario, side by side.

    Attributes
    ----------
    table:
        One row per variant that produced a plan: ``variant``, ``headcount``, ``realign``,
        ``tolerance``, then ``NationalPlan.summary_table`` (``{measure}_max_dev_pct``,
        ``sim_workload_max_dev_pct``, ``travel_h``, ``km``, ``utilisation_mean_pct``,
        ``visits_dropped``, ``runtime_s``...; its ``accounts_moved``, the moves of the
        rebalancing loop, as ``loop_accounts_moved``), and the disruption against ``base``:
        ``disruption_accounts``, ``disruption_accounts_pct``, ``disruption_potential``,
        ``disruption_potential_pct`` (NaN when there is no base alignment).
    plans:
        Variant name -> NationalPlan.
    realignments:
        Variant name -> RealignmentReport against ``base`` (empty without a base).
    failed:
        Variant name -> why it produced no plan (a solver gave up: a result, not an error).
    base:
        What the disruption is measured against, in words (None: nothing).
    options:
        Variant name -> the options it ran with (common ones included).
    """

    table: pd.DataFrame
    plans: Mapping[str, NationalPlan]
    realignments: Mapping[str, RealignmentReport] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)
    base: str | None = None
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    runtime_s: float = 0.0

    def summary(self) -> str:
        """The table's key columns as text, and the variants that failed."""
        cols = [c for c in self.table.columns if c.endswith("_max_dev_pct")]
        cols = ["variant", "headcount", *cols, "travel_h", "km", "utilisation_mean_pct",
                "visits_dropped"]
        if self.base is not None:
            cols += ["disruption_accounts", "disruption_accounts_pct",
                     "disruption_potential_pct"]
        cols.append("runtime_s")
        lines = [f"Comparison of {len(self.plans)} variant(s)"
                 + (f"; disruption against {self.base}" if self.base else "")]
        if len(self.table):
            shown = self.table[[c for c in cols if c in self.table.columns]]
            lines.extend("  " + s for s in shown.to_string(
                index=False, float_format=lambda x: f"{x:,.1f}").splitlines())
        for name, why in self.failed.items():
            lines.append(f"  {name}: no plan ({why})")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-native dict: the table as records, the options, the failures."""
        return {"table": _records(self.table), "base": self.base,
                "failed": dict(self.failed),
                "options": {k: _native(_public_options(v)) for k, v in self.options.items()},
                "disruption": {k: _native(dict(r.disruption))
                               for k, r in self.realignments.items()},
                "runtime_s": float(self.runtime_s)}

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write ``compare.csv`` (UTF-8 with BOM) into ``folder``.

        Raises
        ------
        InvalidInputError
            The folder or the file cannot be written.
        """
        out = _folder(folder)
        return {"compare": write_csv(self.table, out / "compare.csv")}


def _folder(folder: str | Path) -> Path:
    """``folder``, created if needed; a folder that cannot be made is bad input."""
    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot create the folder ({exc}).") from None
    return out


def _public_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Options fit for a report: no executor or progress callback."""
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in options.items()
            if k not in ("executor", "progress")}


def headcount_variants(ns: Iterable[int], **options: Any) -> dict[str, dict[str, Any]]:
    """Variants for ``compare`` that differ in headcount: ``{"12 reps": {"n_reps": 12, ...}}``."""
    return {f"{int(n)} reps": {"n_reps": int(n), **options} for n in ns}


def _looks_synthetic(scenario: Scenario) -> bool:
    """Reps as ``synth.place_reps`` makes them (ids R0001.., no extra columns) and no current
    alignment: re-placing them loses nothing a user gave."""
    reps = scenario.reps
    ids = [str(r) for r in reps.ids]
    return (ids == [f"R{i + 1:04d}" for i in range(len(ids))]
            and set(reps.frame.columns) == set(REP_COLUMNS)
            and not (scenario.accounts.frame["current_rep"].astype(str) != "").any())


def _variant_scenario(scenario: Scenario, name: str, options: dict[str, Any]) -> Scenario:
    """The scenario a variant plans on: its own reps, or the headcount it asks for.

    Pops ``n_reps``, ``reps`` and ``rep_placement`` from ``options``.
    """
    n_reps = options.pop("n_reps", None)
    reps = options.pop("reps", None)
    placement = options.pop("rep_placement", "auto")
    if placement not in ("auto", "place", "keep"):
        raise InvalidInputError(f"Variant {name!r}: rep_placement={placement!r}; expected "
                                "'auto', 'place' or 'keep'.")
    if reps is not None:
        if n_reps is not None and int(n_reps) != len(reps):
            raise InvalidInputError(f"Variant {name!r}: n_reps={n_reps} but reps holds "
                                    f"{len(reps)} reps; give one of the two.")
        return dataclasses.replace(scenario, reps=reps)
    have = len(scenario.reps)
    if n_reps is None:
        if placement != "place":
            return scenario
        n_reps = have
    if isinstance(n_reps, bool) or not isinstance(n_reps, (int, np.integer)) or n_reps < 1:
        raise InvalidInputError(f"Variant {name!r}: n_reps={n_reps!r}; expected a whole "
                                "number >= 1.")
    n_reps = int(n_reps)
    if n_reps > len(scenario.accounts):
        raise InvalidInputError(f"Variant {name!r}: n_reps={n_reps} for "
                                f"{len(scenario.accounts)} accounts; every rep needs one.")
    if placement == "auto":
        if n_reps == have:
            return scenario
        placement = "place" if _looks_synthetic(scenario) else "keep"
    if placement == "keep":
        if n_reps > have:
            raise InvalidInputError(
                f"Variant {name!r}: n_reps={n_reps} but the scenario has {have} reps, and its "
                "reps are not synthetic, so new ones cannot be invented silently.",
                hint="Give the reps with reps=Reps.from_frame(...), or set "
                     "rep_placement='place' to place all reps anew near the workload "
                     "(synth.place_reps).")
        return dataclasses.replace(scenario, reps=scenario.reps.subset(np.arange(n_reps)))
    placed = place_reps(scenario.accounts, n_reps, calendar=scenario.calendar,
                        travel=scenario.travel, seed=int(options.get("seed", 0)))
    return dataclasses.replace(scenario, reps=placed)


def _base_alignment(scenario: Scenario, base: Any, names: Sequence[str]
                    ) -> tuple[Alignment | str | None, str | None]:
    """(alignment or variant name, description) to measure disruption against."""
    if base is None:
        cur = scenario.accounts.frame["current_rep"].astype(str)
        if (cur != "").any():
            return cur.to_numpy(dtype=object), "the current alignment (current_rep)"
        return None, None
    if isinstance(base, str):
        if base not in names:
            raise InvalidInputError(f"base={base!r} is not a variant; variants are "
                                    f"{list(names)}.")
        return base, f"variant {base!r}"
    if isinstance(base, (NationalPlan, TerritoryPlan)):
        tp = _territories(base)
        ids = scenario.accounts.ids.astype(str)
        if not np.array_equal(tp.account_ids.astype(str), ids):
            raise InvalidInputError("base is a plan of other accounts than the scenario's.")
        return np.asarray(tp.rep_of_account, dtype=object), "the given base plan"
    return _alignment(base, scenario.accounts.ids.astype(str).astype(object), "base")[0], \
        "the given base alignment"


def compare(
    scenario: Scenario,
    variants: Mapping[str, Mapping[str, Any]],
    *,
    base: str | Alignment | NationalPlan | TerritoryPlan | None = None,
    **common: Any,
) -> Comparison:
    """Run ``plan()`` once per variant and put the headline figures side by side.

    Parameters
    ----------
    scenario:
        The scenario every variant starts from.
    variants:
        Name -> options. Options are those of ``territory.plan`` (``realign``, ``tolerance``,
        ``nest``, ``seed``...) and:

        * ``n_reps``: the headcount. Synthetic reps (ids ``R0001``.., as ``synth`` makes them,
          and no current alignment) are placed anew for the workload by ``synth.place_reps``
          (seeded by the variant's ``seed``); otherwise the first ``n_reps`` reps are kept, and
          asking for more than there are is an error;
        * ``rep_placement``: ``"auto"`` (the rule above), ``"place"`` or ``"keep"``;
        * ``reps``: the variant's own ``Reps``.
    base:
        What disruption is measured against: None = the accounts' ``current_rep`` (no
        disruption columns when empty), a variant name, a plan, or an alignment (account id
        -> rep id).
    **common:
        Options for every variant; a variant's own options override them.

    Raises
    ------
    InvalidInputError
        No variants, unknown options, impossible headcounts, an unknown base, or bad plan
        parameters (named with the variant). Options, headcounts and the base of every
        variant are checked before any plan is run. Solver failures (``TerritoryError`` other than bad input) are recorded in
        ``Comparison.failed`` instead.
    """
    t0 = time.perf_counter()
    if not isinstance(variants, Mapping) or not variants:
        raise InvalidInputError("Give at least one variant: {name: {option: value}}.",
                                hint="E.g. compare(s, {'now': {}, 'realign': {'realign': True}})"
                                     " or compare(s, headcount_variants([10, 12])).")
    allowed = _PLAN_OPTIONS | _HEADCOUNT_OPTIONS
    bad_common = sorted(set(common) - allowed)
    if bad_common:
        raise InvalidInputError(f"Unknown option(s) {bad_common}; options are "
                                f"{sorted(allowed)}.")
    prepared: dict[str, tuple[Scenario, dict[str, Any]]] = {}
    for name, opts in variants.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"Variant names must be non-empty text, got {name!r}.")
        if not isinstance(opts, Mapping):
            raise InvalidInputError(f"Variant {name!r}: expected a mapping of options, got "
                                    f"{type(opts).__name__}.")
        unknown = sorted(set(opts) - allowed)
        if unknown:
            raise InvalidInputError(f"Variant {name!r}: unknown option(s) {unknown}; options "
                                    f"are {sorted(allowed)}.")
        options = {**common, **opts}
        scen = _variant_scenario(scenario, name, options)
        prepared[name] = (scen, options)
    base_ref, base_text = _base_alignment(scenario, base, list(variants))

    plans: dict[str, NationalPlan] = {}
    failed: dict[str, str] = {}
    for name, (scen, options) in prepared.items():
        try:
            plans[name] = plan(scen, **options)
        except InvalidInputError as exc:
            raise InvalidInputError(f"Variant {name!r}: {exc.summary}", exc.problems,
                                    hint=exc.hint) from exc
        except TerritoryError as exc:
            failed[name] = f"{type(exc).__name__}: {exc}"
    if isinstance(base_ref, str) and base_ref not in plans:
        raise InvalidInputError(f"The base variant {base_ref!r} produced no plan: "
                                f"{failed.get(base_ref, '')}")

    realignments: dict[str, RealignmentReport] = {}
    rows = []
    for name, p in plans.items():
        options = prepared[name][1]
        summary = p.summary_table().iloc[0].to_dict()
        tol = options.get("tolerance", 0.05)
        row: dict[str, Any] = {
            "variant": name,
            "headcount": int(summary.pop("reps")),
            "realign": bool(options.get("realign", False)),
            "tolerance": (", ".join(f"{k}={float(v):g}" for k, v in tol.items())
                          if isinstance(tol, Mapping) else float(tol)),
        }
        summary["loop_accounts_moved"] = summary.pop("accounts_moved")
        row.update(summary)
        row.update({"disruption_accounts": np.nan, "disruption_accounts_pct": np.nan,
                    "disruption_potential": np.nan, "disruption_potential_pct": np.nan})
        if base_ref is not None:
            ref = (np.asarray(plans[base_ref].territories.rep_of_account, dtype=object)
                   if isinstance(base_ref, str) else base_ref)
            rep = realignment_report(ref, p, p.scenario)
            realignments[name] = rep
            d = rep.disruption
            row.update({"disruption_accounts": d["accounts_moved"],
                        "disruption_accounts_pct": 100 * d["share_accounts"],
                        "disruption_potential": d["potential_moved"],
                        "disruption_potential_pct": 100 * d["share_potential"]})
        rows.append(row)
    table = pd.DataFrame(rows)
    options_out = {}
    for name, (scen, options) in prepared.items():
        shown = _public_options(options)
        shown["n_reps"] = len(scen.reps)
        options_out[name] = shown
    return Comparison(table=table, plans=plans, realignments=realignments, failed=failed,
                      base=base_text, options=options_out,
                      runtime_s=time.perf_counter() - t0)
