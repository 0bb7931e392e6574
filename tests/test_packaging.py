"""The wheel carries the bundled geography and works outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_data_and_works_from_elsewhere(tmp_path) -> None:
    pytest.importorskip("hatchling")
    wheel_dir = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(wheel_dir), str(ROOT)], check=True)
    wheel = next(wheel_dir.glob("*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("provinces.geojson", "cities.csv", "province_stats.csv", "adjacency.csv"):
        assert f"territory/_data/provinces/{f}" in names
    assert any(n.endswith("licenses/NOTICE") for n in names)
    assert "territory/schemas/plan_request.v1.json" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", str(target), str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", "import territory as tp, territory.china as c; "
         "print(len(tp.china.provinces())); print(c.data_dir()); print(tp.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "33"
    assert str(target) in out[1] and "_data" in out[1]
    assert str(target) in out[2]
