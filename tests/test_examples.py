"""examples/: every script runs with --small, writes what it promises, and assigns each account once.

The scripts are loaded from their files (``examples/`` is not a package) and their ``main`` is
called with ``--small`` and a temporary output folder, as a user would run them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the __main__ guard keeps main() from running here
    return module


def _run(name: str, out: Path, *extra: str) -> Any:
    return _load(name).main(["--small", "--out", str(out), *extra])


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _assert_each_account_once(assignment: pd.DataFrame, account_ids: Any) -> None:
    ids = assignment["account_id"].astype(str)
    assert ids.is_unique
    assert set(ids) == {str(a) for a in account_ids}
    assert (assignment["rep_id"].astype(str) != "").all()


def test_readme_lists_every_example() -> None:
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert len(scripts) == 4
    for script in scripts:
        assert f"examples/{script}" in readme


def test_national_plan_from_csv(tmp_path: Path, capsys: Any) -> None:
    plan = _run("national_plan_from_csv", tmp_path)
    for name in ("input/crm_accounts.csv", "input/crm_reps.csv", "assignment.csv",
                 "schedule.csv", "plan.xlsx", "summary.json", "territories.gpkg",
                 "routes.geojson", "map.png", "map.html"):
        assert (tmp_path / name).is_file(), name
    crm = _read_csv(tmp_path / "input" / "crm_accounts.csv")
    assignment = _read_csv(tmp_path / "assignment.csv")
    _assert_each_account_once(assignment, crm["account_id"])
    reps = set(_read_csv(tmp_path / "input" / "crm_reps.csv")["rep_id"])
    assert set(assignment["rep_id"]) <= reps
    assert len(plan.scenario.accounts) == len(crm)
    assert "National plan" in capsys.readouterr().out


def test_realign_after_two_reps_leave(tmp_path: Path) -> None:
    leaving = ["R0002", "R0005"]
    plan, report = _run("realign_after_two_reps_leave", tmp_path,
                        "--leaving", *leaving, "--max-moved", "0.15")
    for name in ("realignment_moves.csv", "realignment_by_rep.csv", "assignment.csv"):
        assert (tmp_path / name).is_file(), name
    assignment = _read_csv(tmp_path / "assignment.csv")
    _assert_each_account_once(assignment, plan.scenario.accounts.ids)
    assert not set(assignment["rep_id"]) & set(leaving)
    # Every account of a leaving rep moves, for that reason; the others respect the cap.
    moves = _read_csv(tmp_path / "realignment_moves.csv")
    gone = moves["from_rep"].isin(leaving)
    assert (moves.loc[gone, "reason"] == "rep left").all()
    vacant = int((plan.scenario.accounts.frame["current_rep"] == "").sum())
    assert gone.sum() == vacant > 0
    kept = len(assignment) - vacant
    assert (~gone).sum() <= 0.15 * kept + 1e-9
    by_rep = report.by_rep.set_index("rep_id")
    assert (by_rep.loc[leaving, "status"] == "left").all()
    assert (by_rep.loc[leaving, "accounts_after"] == 0).all()


def test_sizing_next_year(tmp_path: Path) -> None:
    sizing, comparison = _run("sizing_next_year", tmp_path)
    for name in ("sizing.csv", "sizing_calibrated.csv", "compare.csv"):
        assert (tmp_path / name).is_file(), name
    national = sizing.loc[sizing["level"] == "national"].iloc[0]
    assert national["accounts"] == 138  # 120 today + 15 % new
    assert national["reps_needed"] >= 1
    table = _read_csv(tmp_path / "compare.csv")
    assert len(table) == len(comparison.plans) >= 2
    for p in comparison.plans.values():
        _assert_each_account_once(p.territories.assignment_frame(), p.scenario.accounts.ids)
        assert p.scenario.accounts.ids.size == 138


def test_one_province_in_detail(tmp_path: Path, capsys: Any) -> None:
    plan, routes = _run("one_province_in_detail", tmp_path)
    for name in ("schedule.csv", "assignment.csv", "territories.gpkg", "routes.gpkg",
                 "map.png", "map.html"):
        assert (tmp_path / name).is_file(), name
    assignment = _read_csv(tmp_path / "assignment.csv")
    _assert_each_account_once(assignment, plan.account_ids)
    # Each visit is made by the account's own rep, and no visit goes missing.
    schedule = _read_csv(tmp_path / "schedule.csv")
    rep_of = dict(zip(assignment["account_id"], assignment["rep_id"], strict=True))
    assert (schedule["account_id"].map(rep_of) == schedule["rep_id"]).all()
    r = routes.reps
    np.testing.assert_array_equal(r["visits_served"] + r["visits_dropped"],
                                  r["visits_required"])
    assert r["visits_served"].sum() == len(schedule)
    assert "first two days" in capsys.readouterr().out
