"""The demo command writes its map and summary."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from territory.cli import app


def test_demo_writes_map_and_summary(tmp_path) -> None:
    result = CliRunner().invoke(app, ["demo", "--accounts", "2000", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "reps needed" in result.output
    png = tmp_path / "map.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["scenario"]["accounts"] == 2000
    regions = {r["region"] for r in summary["regions"]}
    assert regions == {"华北", "东北", "华东", "华中", "华南", "西南", "西北"}
