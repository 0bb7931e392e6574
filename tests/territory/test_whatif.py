"""territory.whatif: realignment report, sizing by region, variants side by side."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from territory import synth
from territory.alignment import TerritoryPlan, partition
from territory.errors import InvalidInputError
from territory.model import Scenario
from territory.whatif import (
    Comparison,
    RealignmentReport,
    calibrated_workload,
    compare,
    headcount_variants,
    realignment_report,
    size_force_by_region,
)

ITER = 2_000  # deterministic budget: small and reproducible
FAST = {"partition_time_s": 2, "route_time_s": 0.5, "max_rounds": 1, "max_iterations": ITER}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return synth.china_scenario(n_accounts=80, n_reps=4, seed=2, provinces=["浙江"])


@pytest.fixture(scope="module")
def territories(scenario) -> TerritoryPlan:
    return partition(scenario, time_limit_s=2, seed=0, max_iterations=ITER)


@pytest.fixture(scope="module")
def aligned(scenario, territories) -> Scenario:
    """The scenario with ``territories`` as its current alignment (not synthetic any more)."""
    acc = scenario.accounts.with_columns(current_rep=territories.rep_of_account)
    return dataclasses.replace(scenario, accounts=acc)


@pytest.fixture(scope="module")
def rep_left(aligned) -> tuple[Scenario, TerritoryPlan]:
    """R0004 leaves: the three others realign from the current alignment."""
    three = dataclasses.replace(aligned, reps=aligned.reps.subset([0, 1, 2]))
    return three, partition(three, realign=True, time_limit_s=2, seed=0, max_iterations=ITER)


def _check_consistent(report: RealignmentReport) -> None:
    moves, b, d = report.moves, report.by_rep, report.disruption
    assert b["lost"].sum() == len(moves) == d["accounts_moved"]
    assigned = (moves["to_rep"] != "").sum()
    assert b["gained"].sum() == assigned
    np.testing.assert_array_equal(
        b["accounts_after"], b["accounts_before"] + b["gained"] - b["lost"] + b["added"])
    np.testing.assert_allclose(b["potential_lost"].sum(), moves["potential"].sum())
    np.testing.assert_allclose(b["net"], b["gained"] - b["lost"])
    assert moves["account_id"].is_unique
    assert (moves["from_rep"] != moves["to_rep"]).all()
    assert moves["reason"].astype(str).str.len().gt(0).all()
    for key in ("share_accounts", "share_potential"):
        assert 0.0 <= d[key] <= 1.0
    assert d["share_accounts"] == pytest.approx(d["accounts_moved"] / d["accounts_with_rep"])


def test_known_moves_and_derived_reasons(scenario, territories) -> None:
    ids = list(territories.account_ids)
    rep = dict(zip(ids, territories.rep_of_account, strict=True))
    current = dict(rep)
    r4 = [a for a in ids if rep[a] == "R0004"]
    for a in r4:
        current[a] = "R0001"  # R0004 had nothing: a new rep
    for a in ids[:3]:
        current[a] = "RX"  # a rep who is gone
    report = realignment_report(current, territories)
    _check_consistent(report)
    moves = report.moves.set_index("account_id")
    expected = set(ids[:3]) | set(r4)
    assert set(moves.index) == expected
    assert (moves.loc[ids[:3], "reason"] == "rep left").all()
    assert (moves.loc[[a for a in r4 if a not in ids[:3]], "reason"] == "new rep").all()
    b = report.by_rep.set_index("rep_id")
    assert b.loc["RX", "status"] == "left" and b.loc["RX", "accounts_after"] == 0
    assert b.loc["R0004", "status"] == "new" and b.loc["R0004", "accounts_before"] == 0
    d = report.disruption
    assert d["accounts_moved"] == len(expected)
    assert d["share_accounts"] == pytest.approx(len(expected) / len(ids))
    pot = dict(zip(ids, scenario.accounts.potential, strict=True))
    assert d["potential_moved"] == pytest.approx(sum(pot[a] for a in expected))
    assert d["reps_left"] == 1 and d["reps_new"] == 1
    assert "name" in report.moves.columns


def test_no_move_when_current_is_the_plan(territories) -> None:
    report = realignment_report(pd.Series(territories.rep_of_account,
                                          index=territories.account_ids), territories)
    assert len(report.moves) == 0
    assert report.disruption["share_accounts"] == 0.0
    assert (report.by_rep["status"] == "kept").all()


def test_removed_rep_loses_all_its_accounts(rep_left) -> None:
    scen, tp = rep_left
    report = realignment_report(None, tp)  # the accounts' current_rep column
    _check_consistent(report)
    cur = scen.accounts.frame["current_rep"]
    n_r4 = int((cur == "R0004").sum())
    assert n_r4 > 0
    b = report.by_rep.set_index("rep_id")
    assert b.loc["R0004", "status"] == "left"
    assert b.loc["R0004", "lost"] == n_r4 == b.loc["R0004", "accounts_before"]
    assert b.loc["R0004", "accounts_after"] == 0
    gone = report.moves[report.moves["from_rep"] == "R0004"]
    assert len(gone) == n_r4 and (gone["reason"] == "rep left").all()
    # Moves the partition explains keep its reason, measures named.
    explained = report.moves[report.moves["from_rep"] != "R0004"]
    codes = set(tp.moved["reason"])
    allowed = {c for c in codes if not c.startswith("balance:")}
    allowed |= {f"balance:{m}" for m in tp.measure_names}
    assert set(explained["reason"]) <= allowed | {"rebalance", "new rep"}


def test_report_dict_and_files(rep_left, tmp_path) -> None:
    report = realignment_report(None, rep_left[1])
    d = json.loads(json.dumps(report.to_dict()))
    assert len(d["moves"]) == len(report.moves)
    assert {r["rep_id"] for r in d["by_rep"]} == set(report.by_rep["rep_id"])
    text = report.summary()
    assert "rep left" in text and "R0004" in text
    paths = report.write(tmp_path / "out")
    assert paths["moves"].read_bytes().startswith(b"\xef\xbb\xbf")  # Excel reads UTF-8
    back = pd.read_csv(paths["moves"], encoding="utf-8-sig")
    assert len(back) == len(report.moves)
    assert len(pd.read_csv(paths["by_rep"], encoding="utf-8-sig")) == len(report.by_rep)


def test_report_refuses_what_it_cannot_judge(scenario, territories) -> None:
    with pytest.raises(InvalidInputError, match="no account has a current rep"):
        realignment_report(None, territories)  # synthetic accounts: no current_rep
    with pytest.raises(InvalidInputError, match="entries for 80 accounts"):
        realignment_report(["R0001"] * 3, territories)
    with pytest.raises(InvalidInputError, match="NationalPlan or a TerritoryPlan"):
        realignment_report({}, "plan")  # type: ignore[arg-type]


def test_size_force_by_region_sums_at_least_national() -> None:
    two = synth.china_scenario(n_accounts=120, n_reps=5, seed=3, provinces=["浙江", "四川"])
    table = size_force_by_region(two, utilisation=0.85, levels=("region", "province"))
    regions = table[table["level"] == "region"]
    national = table[table["level"] == "national"].iloc[0]
    assert set(regions["group"]) == {"华东", "西南"}
    assert regions["reps_needed"].sum() >= national["reps_needed"]
    assert regions["accounts"].sum() == national["accounts"] == 120
    assert national["reps_now"] == 5
    assert regions["reps_now"].sum() == 5
    np.testing.assert_array_equal(table["gap"], table["reps_needed"] - table["reps_now"])
    # Known answer: one hour per account, 4 weeks of 8:30-17:30 less 45 min lunch at 100 %.
    avail = 20 * (9 * 60 - 45)
    flat = size_force_by_region(two, utilisation=1.0, workload=np.full(120, 60.0))
    row = flat[flat["level"] == "national"].iloc[0]
    assert row["workload_h"] == pytest.approx(120.0)
    assert row["reps_exact"] == pytest.approx(120 * 60 / avail)
    assert row["reps_needed"] == int(np.ceil(120 * 60 / avail))
    with pytest.raises(InvalidInputError, match="utilisation"):
        size_force_by_region(two, utilisation=1.5)
    with pytest.raises(InvalidInputError, match="expected \\(120,\\)"):
        size_force_by_region(two, workload=np.ones(3))


@pytest.fixture(scope="module")
def comparison(scenario) -> Comparison:
    return compare(scenario, headcount_variants([3, 5]), base="3 reps", **FAST)


def test_compare_headcounts(comparison, tmp_path) -> None:
    t = comparison.table
    assert list(t["variant"]) == ["3 reps", "5 reps"]
    assert list(t["headcount"]) == [3, 5]
    assert [len(p.scenario.reps) for p in comparison.plans.values()] == [3, 5]
    for col in ("workload_max_dev_pct", "sim_workload_max_dev_pct", "travel_h", "km",
                "utilisation_mean_pct", "visits_dropped", "runtime_s"):
        assert col in t.columns and t[col].notna().all()
    base_row = t.set_index("variant").loc["3 reps"]
    assert base_row["disruption_accounts"] == 0  # the base against itself
    assert 0 <= t["disruption_accounts_pct"].max() <= 100
    assert not comparison.failed
    json.dumps(comparison.to_dict())
    assert "5 reps" in comparison.summary()
    path = comparison.write(tmp_path)["compare"]
    assert len(pd.read_csv(path, encoding="utf-8-sig")) == 2


def test_calibrated_workload_sums_to_simulated(comparison) -> None:
    p = comparison.plans["5 reps"]
    w = calibrated_workload(p)
    per_rep = pd.Series(w / 60.0).groupby(p.territories.rep_of_account).sum()
    np.testing.assert_allclose(per_rep.reindex(p.simulated_h.index), p.simulated_h, rtol=1e-9)
    table = size_force_by_region(p.scenario, workload=w)
    national = table[table["level"] == "national"].iloc[0]
    assert national["workload_h"] == pytest.approx(p.simulated_h.sum())


def test_compare_keeps_real_reps_and_reports_who_left(aligned) -> None:
    c = compare(aligned, {"three": {"n_reps": 3, "realign": True}}, **FAST)
    assert c.base is not None and "current" in c.base
    row = c.table.iloc[0]
    assert row["headcount"] == 3 and row["realign"]
    assert list(c.plans["three"].scenario.reps.ids) == ["R0001", "R0002", "R0003"]  # kept
    report = c.realignments["three"]
    gone = report.moves[report.moves["from_rep"] == "R0004"]
    assert len(gone) == int((aligned.accounts.frame["current_rep"] == "R0004").sum())
    assert (gone["reason"] == "rep left").all()
    assert row["disruption_accounts"] == report.disruption["accounts_moved"]


def test_compare_checks_every_variant_before_running(aligned, scenario) -> None:
    with pytest.raises(InvalidInputError, match="has 4 reps"):
        compare(aligned, {"ok": {}, "more": {"n_reps": 6}}, **FAST)
    with pytest.raises(InvalidInputError, match="unknown option"):
        compare(scenario, {"x": {"n_reps": 3, "tolerence": 0.1}}, **FAST)
    with pytest.raises(InvalidInputError, match="not a variant"):
        compare(scenario, {"x": {}}, base="y", **FAST)
    with pytest.raises(InvalidInputError, match="at least one variant"):
        compare(scenario, {}, **FAST)
