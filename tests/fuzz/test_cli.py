"""Fuzzed requests through the command line (``plan --json``, ``partition --json``): one line
of JSON on stdout whose code is the exit code; 2 with an ``error`` message for bad input, never
1 (an internal error)."""

from __future__ import annotations

import json

import pytest
from fuzz_helpers import ENVELOPE_FAULTS, account_tables, examples, records, rep_tables, set_path
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from territory.cli import app

pytestmark = pytest.mark.timeout(900)

FAST = {"plan": {"partition_time_s": 0.5, "route_time_s": 0.2, "max_rounds": 0,
                 "max_iterations": 50},
        "partition": {"time_limit_s": 0.5}}


def run_json(kind: str, stdin: str | bytes) -> dict:
    result = CliRunner().invoke(app, [kind, "--json", "-"], input=stdin)
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, (result.exit_code, result.stdout, result.exception)
    message = json.loads(lines[0])
    code = message["code"] if "code" in message else message["error"]["code"]
    assert result.exit_code == code, (result.exit_code, message)
    assert code in (0, 2, 3), message
    if code == 2:
        assert message["error"]["type"] in ("invalid_input", "invalid_json"), message
    return message


@settings(max_examples=examples(0.25))
@given(st.sampled_from(["plan", "partition"]),
       account_tables(min_rows=1, max_rows=5), rep_tables(min_rows=1, max_rows=2),
       st.sampled_from([None, *ENVELOPE_FAULTS]))
def test_cli_json(kind, acc, rep, fault) -> None:
    body = {"schema_version": "1.0", "accounts": records(acc), "reps": records(rep),
            "options": dict(FAST[kind])}
    if kind == "plan":
        body["options"].pop("max_iterations")  # not in the schema: the CLI runs plan()'s own
    if fault is not None:
        set_path(body, fault[0], fault[1])
    message = run_json(kind, json.dumps(body, ensure_ascii=False))
    if fault is not None or acc.must_fail or rep.must_fail:
        assert message["error"]["code"] == 2, message
    elif "error" not in message:
        listed = [a["account_id"] for a in message["assignment"]] + \
                 [u["account_id"] for u in message["unassigned"]]
        assert sorted(listed) == sorted(str(i) for i in acc.columns["id"])


@settings(max_examples=examples(0.5))
@given(st.sampled_from(["plan", "partition"]),
       st.one_of(st.binary(max_size=100), st.text(max_size=100),
                 st.sampled_from(["", "{}", "[]", "null", '{"schema_version": "1.0"}',
                                  '{"schema_version": "1.0", "accounts": NaN}'])))
def test_cli_garbage(kind, stdin) -> None:
    message = run_json(kind, stdin)
    assert message["error"]["code"] == 2, message
