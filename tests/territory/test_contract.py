"""The JSON contract (territory.contract): requests in, results and errors out, all by schema."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from typing import Any

import jsonschema
import pytest
from contract_helpers import validate as schema_valid

from territory import contract, synth
from territory.alignment import partition
from territory.errors import (
    InfeasibleError,
    InvalidInputError,
    NoSolutionError,
    SolverError,
)
from territory.hours import format_clock
from territory.io import ACCOUNT_ALIASES, REP_ALIASES
from territory.planning import plan

FAST_PLAN = {"partition_time_s": 2, "route_time_s": 0.5, "max_rounds": 1, "seed": 0}


def validate(message: dict[str, Any], name: str) -> None:
    schema_valid(message, name)
    json.dumps(message, allow_nan=False)


def raised(request: Any, kind: str = "plan") -> InvalidInputError:
    parse = contract.parse_plan_request if kind == "plan" else contract.parse_partition_request
    with pytest.raises(InvalidInputError) as info:
        parse(request)
    body, code = contract.error_to_json(info.value)
    assert code == 2 and body["error"]["code"] == 2
    validate(body, "error")
    return info.value


def paths(exc: InvalidInputError) -> list[str | None]:
    body, _ = contract.error_to_json(exc)
    return [p["path"] for p in body["error"]["details"]["problems"]]


@pytest.fixture(scope="module")
def request_body() -> dict[str, Any]:
    """60 accounts around Shanghai and 3 reps, as a caller would send them."""
    sc = synth.china_scenario(n_accounts=60, n_reps=3, seed=1, provinces=["31"])
    accounts = sc.accounts.frame[["id", "lon", "lat", "potential", "hours", "city", "name",
                                  "kind"]].to_dict("records")
    reps = [{"id": r["id"], "home_lon": r["home_lon"], "home_lat": r["home_lat"],
             "work_start": format_clock(r["work_start"]), "working_days": r["working_days"]}
            for r in sc.reps.frame.to_dict("records")]
    return {"schema_version": "1.0", "name": "shanghai", "accounts": accounts, "reps": reps}


@pytest.fixture()
def body(request_body) -> dict[str, Any]:
    return copy.deepcopy(request_body)


@pytest.fixture(scope="module")
def plan_json(request_body) -> dict[str, Any]:
    scenario, options = contract.parse_plan_request(
        json.dumps({**request_body, "options": FAST_PLAN}))
    return contract.plan_result_to_json(plan(scenario, **options))


# ----------------------------------------------------------------------------------------------
# schemas


@pytest.mark.parametrize("name", contract.SCHEMA_NAMES)
def test_schemas_ship_and_are_draft_2020_12(name) -> None:
    schema = contract.load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    schema["mutated"] = True  # a fresh copy each time
    assert "mutated" not in contract.load_schema(name)


def test_request_schemas_share_records_and_know_every_alias() -> None:
    plan_defs = contract.load_schema("plan_request")["$defs"]
    part_defs = contract.load_schema("partition_request")["$defs"]
    for key in set(plan_defs) | set(part_defs):
        if not key.endswith("_options"):
            assert plan_defs[key] == part_defs[key], key
    for record, aliases in (("account", ACCOUNT_ALIASES), ("rep", REP_ALIASES)):
        props = plan_defs[record]["properties"]
        for field, names in aliases.items():
            for name in names:
                assert props[name] == props[field], (record, name)


# ----------------------------------------------------------------------------------------------
# round trips


def test_plan_round_trip(request_body, plan_json) -> None:
    result = plan_json
    validate(result, "plan_result")
    assert result["kind"] == "plan_result" and result["schema_version"] == "1.1"
    assert contract.SCHEMA_VERSION == "1.1"
    assert result["name"] == "shanghai"
    ids = [a["id"] for a in request_body["accounts"]]
    listed = Counter([a["account_id"] for a in result["assignment"]]
                     + [u["account_id"] for u in result["unassigned"]])
    assert listed == Counter(ids)  # every account exactly once
    rep_ids = {r["id"] for r in request_body["reps"]}
    assert set(result["simulated_workload_hours"]) == rep_ids
    rep_of = {a["account_id"]: a["rep_id"] for a in result["assignment"]}
    for visit in result["schedule"]:
        assert rep_of[visit["account_id"]] == visit["rep_id"]
        assert visit["arrival_min"] <= visit["start_min"] < visit["departure_min"]
    assert result["summary"]["visits_served"] == len(result["schedule"])
    assert result["summary"]["visits_dropped"] == len(result["dropped"])
    assert [r["round"] for r in result["rounds"]] == list(range(len(result["rounds"])))
    expected = 0 if result["feasible"] and result["within_tolerance"] else 3
    assert result["code"] == expected and not result["failed_reps"]


def test_partition_round_trip(body) -> None:
    body["options"] = {"time_limit_s": 1, "seed": 0, "tolerance": {"count": 0.10}}
    scenario, options = contract.parse_partition_request(json.dumps(body).encode())
    assert options == body["options"]
    result = contract.partition_result_to_json(partition(scenario, **options))
    validate(result, "partition_result")
    ids = [a["id"] for a in body["accounts"]]
    listed = Counter([a["account_id"] for a in result["assignment"]]
                     + [u["account_id"] for u in result["unassigned"]])
    assert listed == Counter(ids)
    assert {t["rep_id"] for t in result["territories"]} == {r["id"] for r in body["reps"]}
    assert result["code"] == (0 if result["feasible"] else 3)
    assert [b["measure"] for b in result["balance"]] == ["workload", "potential", "count"]


def test_infeasible_partition_is_a_result_with_exit_code_3(body) -> None:
    body["options"] = {"tolerance": 0.0001, "contiguous": True, "time_limit_s": 1, "seed": 0}
    scenario, options = contract.parse_partition_request(body)
    result = contract.partition_result_to_json(partition(scenario, **options))
    validate(result, "partition_result")
    assert result["feasible"] is False and result["within_tolerance"] is False
    assert result["code"] == 3
    assert result["violations"]
    assert len(result["assignment"]) == len(body["accounts"])  # the best plan, in full


def test_options_left_out_stay_out_and_calendar_is_built(body) -> None:
    body["calendar"] = {"weeks": 2, "workdays": "mon-sat", "start_date": "2025-03-03",
                        "holidays": ["2025-03-04"]}
    scenario, options = contract.parse_plan_request(body)
    assert options == {}
    assert scenario.calendar.n_days == 11
    dates = scenario.calendar.dates
    assert dates is not None and dates[1].isoformat() == "2025-03-05"
    assert scenario.name == "shanghai"


def test_aliases_as_the_readers_accept_them(body) -> None:
    first = body["accounts"][0]
    body["accounts"][0] = {"customer_id": first["id"], "经度": first["lon"],
                           "纬度": first["lat"], "Sales Potential": 5, "级别": "A",
                           "locked": None}
    rep = body["reps"][0]
    body["reps"][0] = {"rep_id": rep["id"], "lon": rep["home_lon"], "lat": rep["home_lat"],
                       "上班时间": "08:00", "capacity": 0.5}
    scenario, _ = contract.parse_plan_request(body)
    acc = scenario.accounts.frame.iloc[0]
    assert (acc["id"], acc["lon"], acc["potential"], acc["segment"], acc["visits"]) == \
        (first["id"], first["lon"], 5.0, "A", 4)
    reps = scenario.reps.frame.iloc[0]
    assert (reps["home_lon"], reps["work_start"], reps["capacity"]) == \
        (rep["home_lon"], 480, 0.5)


def test_gcj02_coordinates_are_converted(body) -> None:
    wgs, _ = contract.parse_plan_request(body)
    gcj, _ = contract.parse_plan_request({**body, "coord_system": "gcj02"})
    shift = abs(wgs.accounts.lon - gcj.accounts.lon)
    assert ((shift > 1e-3) & (shift < 1e-2)).all()  # a few hundred metres around Shanghai
    assert (wgs.reps.home_lonlat != gcj.reps.home_lonlat).all()


# ----------------------------------------------------------------------------------------------
# bad requests: InvalidInputError naming the JSON path (or the row), exit code 2


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda b: b["accounts"][3].pop("lon"), "accounts[3].lon", "missing"),
    (lambda b: b["accounts"][3].update(lon="NaN"), "accounts[3].lon", "expected a number"),
    (lambda b: b["accounts"][3].update(lon=float("nan")), "accounts[3].lon", "not a finite"),
    (lambda b: b["accounts"][7].update(potential="12"), "accounts[7].potential",
     "got a string"),
    (lambda b: b["accounts"][1].update(visits=1.5), "accounts[1].visits", "an integer"),
    (lambda b: b["accounts"][1].update(locked="yes"), "accounts[1].locked", "true/false"),
    (lambda b: b["accounts"][2].update(potential=-1), "accounts[2].potential", ">= 0"),
    (lambda b: b["accounts"][4].update(lng=121.0), "accounts[4].lng", "second time"),
    (lambda b: b["accounts"].__setitem__(5, [1, 2]), "accounts[5]", "expected an object"),
    (lambda b: b.update(accounts=[]), "accounts", "empty"),
    (lambda b: b["reps"][1].update(capacity=0), "reps[1].capacity", "> 0"),
    (lambda b: b["reps"][0].pop("home_lat"), "reps[0].home_lat", "missing"),
    (lambda b: b.update(calendar={"holidays": ["2025-05-01"]}), "calendar.start_date",
     "holidays needs start_date"),
    (lambda b: b.update(calendar={"start_date": "2025/05/01"}), "calendar.start_date",
     "YYYY-MM-DD"),
    (lambda b: b.update(calendar={"workdays": "someday"}), "calendar.workdays", "weekday"),
    (lambda b: b.update(options={"tolerence": 0.1}), "options.tolerence", "unknown field"),
    (lambda b: b.update(options={"tolerance": -0.1}), "options.tolerance", ">= 0"),
    (lambda b: b.update(options={"seed": "x"}), "options.seed", "an integer"),
    (lambda b: b.update(options={"measures": ["potential"]}), "options.measures",
     '"workload"'),
    (lambda b: b.update(options={"measures": ["workload", "colour"]}), "options.measures[1]",
     "unknown measure"),
    (lambda b: b.update(options={"tolerance": {"visits": 0.1}}), "options.tolerance.visits",
     "not one of the measures"),
    (lambda b: b.update(extra=1), "extra", "unknown field"),
])
def test_bad_field_is_named_by_path(body, change, path, words) -> None:
    change(body)
    exc = raised(body)
    assert path in paths(exc)
    assert path in str(exc) and words in str(exc)


def test_every_problem_is_listed_at_once(body) -> None:
    body["accounts"][3]["lon"] = "x"
    body["accounts"][9].pop("id")
    body["reps"][2]["home_lon"] = None
    body["options"] = {"max_rounds": -1}
    exc = raised(body)
    assert paths(exc) == ["accounts[3].lon", "accounts[9].id", "options.max_rounds",
                          "reps[2].home_lon"]


@pytest.mark.parametrize(("change", "path", "words"), [
    (lambda b: b["accounts"][4].update(id=b["accounts"][5]["id"]), "accounts[4].id",
     "(row 4): id="),
    (lambda b: b["accounts"][2].update(lon=31.2, lat=121.4), "accounts[2]", "swapped"),
    (lambda b: b["accounts"][6].update(lon=2.35, lat=48.85), "accounts[6]", "outside China"),
    (lambda b: b["accounts"][8].update(hours="sometimes"), "accounts[8].hours", "hours"),
    (lambda b: b["reps"][1].update(work_start="18:00"), "reps[1]", "ends before it starts"),
])
def test_reader_problems_name_row_and_path(body, change, path, words) -> None:
    change(body)
    exc = raised(body)
    assert path in paths(exc)
    assert words in str(exc)
    assert str(exc).startswith(path.split("[")[0] + ":")  # accounts: ... or reps: ...


def test_record_aliases_name_the_key_the_caller_sent(body) -> None:
    a = body["accounts"][2]
    body["accounts"][2] = {"id": a["id"], "lng": 31.2, "latitude": 121.4}
    body["accounts"][3]["hours"] = "never ever"
    body["accounts"][3]["opening_hours"] = body["accounts"][3].pop("hours")
    assert set(paths(raised(body))) == {"accounts[2]", "accounts[3].opening_hours"}


@pytest.mark.parametrize(("version", "ok"), [
    ("1.0", True), ("1.7", True), ("2.0", False), ("1", False), (1.0, False), (None, False),
])
def test_schema_version(body, version, ok) -> None:
    body["schema_version"] = version
    if ok:
        contract.parse_partition_request(body)
        return
    exc = raised(body, "partition")
    assert paths(exc) == ["schema_version"]
    assert "1.x" in str(exc) and f'"{contract.SCHEMA_VERSION}"' in str(exc)


def test_missing_schema_version_names_supported_versions(body) -> None:
    del body["schema_version"]
    assert "1.x" in str(raised(body))


@pytest.mark.parametrize("text", [b"{not json", "[1, 2]", b"\xff\xfe{", '"text"'])
def test_not_a_json_object(text) -> None:
    raised(text)


def test_nan_literal_in_json_text(body) -> None:
    text = json.dumps(body).replace(str(body["accounts"][3]["lon"]), "NaN", 1)
    assert paths(raised(text)) == ["accounts[3].lon"]


def test_record_check_flags_the_records_jsonschema_flags(body) -> None:
    """The fast record loop and the full schema agree on which records are bad."""
    changes = {
        0: {"lon": "121"}, 1: {"visits": -1}, 2: {"visit_min": None, "segment": 3},
        3: {"locked": 1}, 4: {"extra": {"nested": 1}}, 5: {"potential": True},
        6: {"current_rep": 7, "city": None, "hours_mon": "closed"},  # all fine
        7: {"latitude": "x"}, 8: {"id": None}, 9: {"province": 44},  # 9 fine
    }
    for i, change in changes.items():
        body["accounts"][i].update(change)
    body["accounts"][7].pop("lat")
    body["accounts"][10].pop("id")
    body["reps"][0].update(work_end="17:00", lunch_min=-5, max_nights_week=1.5)
    body["reps"][1].update(work_start=-1)
    exc = raised(body)
    ours = {tuple(re.findall(r"^(\w+)\[(\d+)\]", str(p))[0]) for p in paths(exc)}
    full = jsonschema.Draft202012Validator(contract.load_schema("plan_request"))
    theirs = {(str(e.absolute_path[0]), str(e.absolute_path[1]))
              for e in full.iter_errors(body)}
    assert ours == theirs == {("accounts", str(i)) for i in (0, 1, 2, 3, 4, 5, 7, 8, 10)} | {
        ("reps", "0"), ("reps", "1")}


# ----------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(("exc", "code", "kind"), [
    (InvalidInputError("bad"), 2, "invalid_input"),
    (json.JSONDecodeError("Expecting value", "x", 0), 2, "invalid_json"),
    (InfeasibleError("no plan meets 1 %"), 3, "infeasible"),
    (NoSolutionError("nothing in time"), 3, "no_solution"),
    (SolverError("kernel failed"), 1, "solver_error"),
    (KeyError("x"), 1, "internal"),
    (ValueError("not a library input error"), 1, "internal"),
])
def test_error_codes(exc, code, kind) -> None:
    body, exit_code = contract.error_to_json(exc)
    validate(body, "error")
    assert exit_code == code == body["error"]["code"]
    assert body["error"]["type"] == kind
    assert body["schema_version"] == contract.SCHEMA_VERSION


def test_reader_problems_go_to_details(body) -> None:
    body["accounts"][4]["id"] = body["accounts"][5]["id"]
    error, _ = contract.error_to_json(raised(body))
    problems = error["error"]["details"]["problems"]
    assert [(p["path"], p["row"], p["id"], p["field"]) for p in problems] == [
        ("accounts[4].id", 4, body["accounts"][5]["id"], "id"),
        ("accounts[5].id", 5, body["accounts"][5]["id"], "id")]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe{}", "[1, 2", ""])
def test_undecodable_request_is_invalid_json(body) -> None:
    from territory.contract import error_to_json, parse_plan_request

    with pytest.raises(InvalidInputError) as info:
        parse_plan_request(body)
    message, code = error_to_json(info.value)
    assert code == 2 and message["error"]["type"] == "invalid_json"
