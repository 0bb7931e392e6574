"""`territory plan`, `report`, `compare` and the `--json` contract of `plan` and `partition`."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pytest
from contract_helpers import validate
from typer.testing import CliRunner

from territory import synth
from territory.cli import app
from territory.hours import format_clock
from territory.io import read_accounts, read_reps, write_accounts, write_reps
from territory.travel import pairwise_km

FAST = ["--partition-time", "1", "--route-time", "0.3", "--max-rounds", "1", "--seed", "0"]
FAST_OPTIONS = {"partition_time_s": 1, "route_time_s": 0.3, "max_rounds": 1, "seed": 0}


def run(*args: Any, stdin: str | None = None) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], input=stdin)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Any]:
    """60 accounts around Shanghai, 3 reps, a current alignment and a JSON request."""
    folder = tmp_path_factory.mktemp("inputs")
    sc = synth.china_scenario(n_accounts=60, n_reps=3, seed=1, provinces=["上海"])
    write_accounts(sc.accounts, folder / "accounts.csv")
    write_reps(sc.reps, folder / "reps.csv")
    nearest = sc.reps.ids[pairwise_km(sc.accounts.lonlat, sc.reps.home_lonlat).argmin(1)]
    pd.DataFrame({"account_id": sc.accounts.ids, "rep_id": nearest}).to_csv(
        folder / "current.csv", index=False)
    accounts = sc.accounts.frame[["id", "lon", "lat", "potential", "hours", "name"]]
    reps = [{"id": r["id"], "home_lon": r["home_lon"], "home_lat": r["home_lat"],
             "work_start": format_clock(r["work_start"])} for r in sc.reps.frame.to_dict("records")]
    request = {"schema_version": "1.0", "name": "shanghai",
               "accounts": accounts.to_dict("records"), "reps": reps}
    return {"folder": folder, "scenario": sc, "request": request,
            "current": dict(zip(sc.accounts.ids, nearest, strict=True))}


@pytest.fixture(scope="module")
def planned(inputs, tmp_path_factory) -> tuple[Any, Any]:
    out = tmp_path_factory.mktemp("plan")
    folder = inputs["folder"]
    result = run("plan", folder / "accounts.csv", folder / "reps.csv", "--out", out, *FAST)
    return result, out


def test_plan_writes_every_output(inputs, planned) -> None:
    result, out = planned
    sc = inputs["scenario"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    ok = summary["territories"]["feasible"] and summary["within_tolerance"]
    assert result.exit_code == (0 if ok else 3), result.output
    assert "National plan" in result.stdout and "sim_workload_max_dev_pct" in result.stdout
    for name in ("accounts.csv", "reps.csv", "assignment.csv", "schedule.csv",
                 "territories.gpkg", "routes.geojson", "plan.xlsx", "map.png", "map.html",
                 "summary.json"):
        assert (out / name).stat().st_size > 0, name
    assert sorted(p.name for p in (out / "calendars").iterdir()) == \
        [f"{r}.ics" for r in sc.reps.ids]
    assert set(summary["simulated_workload_hours"]) == set(sc.reps.ids)

    read = {"encoding": "utf-8-sig", "dtype": str}
    accounts = pd.read_csv(out / "accounts.csv", **read)
    reps = pd.read_csv(out / "reps.csv", **read)
    assert {"account_id", "lon", "lat"} <= set(accounts.columns)
    assert {"rep_id", "lon", "lat", "work_start"} <= set(reps.columns)
    # The inputs written with the plan read back as the same accounts and reps.
    again_acc, again_reps = read_accounts(out / "accounts.csv"), read_reps(out / "reps.csv")
    assert list(again_acc.ids) == list(sc.accounts.ids)
    assert list(again_reps.ids) == list(sc.reps.ids)
    assert (again_reps.frame["work_start"].to_numpy() == sc.reps.frame["work_start"]).all()
    np.testing.assert_allclose(again_reps.home_lonlat, sc.reps.home_lonlat)
    assignment = pd.read_csv(out / "assignment.csv", **read)
    assert list(assignment.columns[:3]) == ["account_id", "territory", "rep_id"]
    assert Counter(assignment["account_id"]) == Counter(sc.accounts.ids)  # each exactly once
    assert set(assignment["rep_id"]) <= set(sc.reps.ids)
    schedule = pd.read_csv(out / "schedule.csv", **read)
    for col in ("rep_id", "day", "sequence", "account_id", "arrival", "departure"):
        assert col in schedule.columns
    rep_of = dict(zip(assignment["account_id"], assignment["rep_id"], strict=True))
    assert (schedule["account_id"].map(rep_of) == schedule["rep_id"]).all()
    assert len(schedule) == summary["summary_table"]["visits_served"]  # one row per visit


def test_plan_json_round_trip(inputs, tmp_path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps({**inputs["request"], "options": FAST_OPTIONS},
                               ensure_ascii=False), encoding="utf-8")
    result = run("plan", "--json", path)
    message = json.loads(result.stdout)  # nothing but the JSON on stdout
    validate(message, "plan_result")
    assert message["kind"] == "plan_result" and message["name"] == "shanghai"
    assert result.exit_code == message["code"] == \
        (0 if message["feasible"] and message["within_tolerance"] else 3)
    listed = Counter([a["account_id"] for a in message["assignment"]]
                     + [u["account_id"] for u in message["unassigned"]])
    assert listed == Counter(a["id"] for a in inputs["request"]["accounts"])


def test_plan_json_loop_budget_is_honoured(inputs, tmp_path) -> None:
    # A spent budget: round 0 only, whatever max_rounds says.
    path = tmp_path / "request.json"
    options = {**FAST_OPTIONS, "max_rounds": 5, "time_limit_s": 0.01}
    path.write_text(json.dumps({**inputs["request"], "options": options}, ensure_ascii=False),
                    encoding="utf-8")
    message = json.loads(run("plan", "--json", path).stdout)
    validate(message, "plan_result")
    assert [r["round"] for r in message["rounds"]] == [0]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**inputs["request"], "options": {"time_limit_s": -1}}),
                   encoding="utf-8")
    result = run("plan", "--json", bad)
    assert result.exit_code == 2 and "time_limit_s" in result.stdout


def test_plan_json_bad_request_names_the_path(inputs) -> None:
    body = json.loads(json.dumps(inputs["request"]))
    body["accounts"][3]["lon"] = "east"
    result = run("plan", "--json", "-", stdin=json.dumps(body, ensure_ascii=False))
    assert result.exit_code == 2
    message = json.loads(result.stdout)
    validate(message, "error")
    assert message["error"]["code"] == 2
    assert [p["path"] for p in message["error"]["details"]["problems"]] == ["accounts[3].lon"]


def test_unreadable_request_is_exit_2_as_json(tmp_path) -> None:
    result = run("partition", "--json", tmp_path / "missing.json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["type"] == "invalid_input"
    result = run("plan", "--json", "-", stdin='{"schema_version": "1.0",')
    assert result.exit_code == 2
    assert "not valid JSON" in json.loads(result.stdout)["error"]["message"]


def test_infeasible_partition_request_is_exit_3_with_the_result(inputs, tmp_path) -> None:
    body = {**inputs["request"], "options": {"tolerance": 0.0001, "time_limit_s": 1, "seed": 0}}
    out = tmp_path / "assignment.csv"
    result = run("partition", "--json", "-", "--out", out,
                 stdin=json.dumps(body, ensure_ascii=False))
    assert result.exit_code == 3
    message = json.loads(result.stdout)
    validate(message, "partition_result")
    assert message["code"] == 3 and not message["feasible"] and message["violations"]
    assert len(message["assignment"]) == 60  # the best plan, in full
    assert len(pd.read_csv(out, encoding="utf-8-sig")) == 60


@pytest.mark.parametrize("args", [
    ["plan"],                                                     # no inputs
    ["plan", "{folder}/accounts.csv", "{folder}/reps.csv", "--tolerance", "abc"],
    ["partition", "{folder}/accounts.csv", "--reps", "{folder}/reps.csv", "--nest", "county"],
    ["partition", "{folder}/missing.csv", "--reps", "{folder}/reps.csv"],
    ["compare", "{folder}/accounts.csv", "{folder}/reps.csv"],     # no variants
    ["compare", "{folder}/accounts.csv", "{folder}/reps.csv", "--realign-vs-keep"],  # no current
    ["report", "{folder}"],                                       # not a plan folder
])
def test_bad_input_is_exit_2(inputs, args) -> None:
    result = run(*(a.format(folder=inputs["folder"]) for a in args))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")


def test_report_with_current_prints_the_moves(inputs, planned, tmp_path) -> None:
    _, plan_dir = planned
    result = run("report", plan_dir, "--current", inputs["folder"] / "current.csv",
                 "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "sim_workload_max_dev_pct" in result.stdout
    assignment = pd.read_csv(plan_dir / "assignment.csv", encoding="utf-8-sig", dtype=str)
    expected = {a for a, r in zip(assignment["account_id"], assignment["rep_id"], strict=True)
                if inputs["current"][a] != r}
    assert f"Realignment: {len(expected)} of 60 aligned accounts change rep" in result.stdout
    moves = pd.read_csv(tmp_path / "realignment_moves.csv", encoding="utf-8-sig", dtype=str)
    assert set(moves["account_id"]) == expected
    assert moves["reason"].notna().all()
    by_rep = pd.read_csv(tmp_path / "realignment_by_rep.csv", encoding="utf-8-sig")
    assert by_rep["gained"].sum() == by_rep["lost"].sum() == len(expected)


def test_report_without_current_is_the_summary_only(planned) -> None:
    _, plan_dir = planned
    result = run("report", plan_dir)
    assert result.exit_code == 0, result.output
    assert "No current alignment" in result.stdout
    assert not (plan_dir / "realignment_moves.csv").exists()


def test_compare_two_headcounts(inputs, tmp_path) -> None:
    folder = inputs["folder"]
    result = run("compare", folder / "accounts.csv", folder / "reps.csv", "--reps-list", "2,3",
                 "--json", "--out", tmp_path, *FAST)
    assert result.exit_code == 0, result.output
    message = json.loads(result.stdout)
    assert [r["headcount"] for r in message["table"]] == [2, 3]
    assert message["failed"] == {}
    table = pd.read_csv(tmp_path / "compare.csv", encoding="utf-8-sig")
    assert list(table["variant"]) == ["2 reps", "3 reps"]
