"""The demo command plans a synthetic national force end to end and writes every output."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from territory.cli import app


def test_demo_plans_and_writes_every_output(tmp_path) -> None:
    result = CliRunner().invoke(app, [
        "demo", "--accounts", "300", "--out", str(tmp_path), "--partition-time", "1",
        "--route-time", "0.1", "--max-rounds", "0", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "reps needed" in result.output and "National plan" in result.output
    for region in ("华北", "东北", "华东", "华中", "华南", "西南", "西北"):
        assert region in result.output
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("accounts.csv", "reps.csv", "assignment.csv", "schedule.csv",
                 "territories.gpkg", "routes.geojson", "plan.xlsx", "map.html"):
        assert (tmp_path / name).stat().st_size > 0, name
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["summary_table"]["accounts"] == 300
    reps = pd.read_csv(tmp_path / "reps.csv", encoding="utf-8-sig", dtype=str)
    assert set(summary["simulated_workload_hours"]) == set(reps["rep_id"])
    assert {p.stem for p in (tmp_path / "calendars").glob("*.ics")} <= set(reps["rep_id"])
