"""`territory route`: accounts + reps + assignment in, schedule and route lines out."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from territory import synth
from territory.cli import app
from territory.io import write_accounts, write_reps
from territory.travel import pairwise_km


def _inputs(tmp_path):
    sc = synth.china_scenario(90, n_reps=2, seed=11, provinces=["31"])
    write_accounts(sc.accounts, tmp_path / "accounts.csv")
    write_reps(sc.reps, tmp_path / "reps.csv")
    d = pairwise_km(sc.accounts.lonlat, sc.reps.home_lonlat)
    pd.DataFrame({"account_id": sc.accounts.ids, "rep_id": sc.reps.ids[d.argmin(1)]}).to_csv(
        tmp_path / "assignment.csv", index=False)
    return sc


def test_route_writes_schedule_and_lines(tmp_path) -> None:
    sc = _inputs(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "route", str(tmp_path / "accounts.csv"), str(tmp_path / "reps.csv"),
        "--assignment", str(tmp_path / "assignment.csv"), "--time-limit", "2",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    schedule = pd.read_csv(out / "schedule.csv", encoding="utf-8-sig", dtype={"account_id": str})
    for col in ("rep_id", "day", "sequence", "account_id", "arrival", "departure"):
        assert col in schedule.columns
    dropped = pd.read_csv(out / "dropped.csv", encoding="utf-8-sig")
    required = int((sc.accounts.visits).sum())
    assert len(schedule) + len(dropped) == required  # every visit served or listed as dropped
    assert set(schedule["account_id"]) <= set(sc.accounts.ids)
    lines = json.loads((out / "routes.geojson").read_text(encoding="utf-8"))
    assert lines["features"] and all(f["geometry"]["type"] == "LineString"
                                     for f in lines["features"])


def test_route_bad_assignment_is_exit_2(tmp_path) -> None:
    _inputs(tmp_path)
    pd.DataFrame({"account_id": ["nope"], "rep_id": ["R0001"]}).to_csv(
        tmp_path / "bad.csv", index=False)
    result = CliRunner().invoke(app, [
        "route", str(tmp_path / "accounts.csv"), str(tmp_path / "reps.csv"),
        "--assignment", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "nope" in result.output
