"""Fuzzed JSON plan and partition requests: a typed error naming the JSON path (or the record
and field), or a scenario holding every account and rep; garbage JSON is refused as such."""

from __future__ import annotations

import json
import warnings

import pytest
from fuzz_helpers import (
    ENVELOPE_FAULTS,
    PARTITION_FAULTS,
    PLAN_FAULTS,
    account_tables,
    assert_request_blames,
    examples,
    outcome,
    records,
    rep_tables,
    set_path,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from territory import contract
from territory.errors import DataQualityWarning, InvalidInputError

pytestmark = pytest.mark.timeout(600)

PARSE = {"plan": contract.parse_plan_request, "partition": contract.parse_partition_request}


def check_parse(kind: str, body: object, tables=None, fault: str | None = None):
    """Parse ``body``; bad tables or an envelope fault must fail, naming what is wrong."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        result, exc = outcome(PARSE[kind], body)
    if exc is not None:
        assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
        reply, code = contract.error_to_json(exc)
        assert code == 2 and reply["error"]["type"] == "invalid_input"
        json.dumps(reply, allow_nan=False)
    if fault is not None:
        assert exc is not None, f"accepted a request with {fault!r}"
        assert fault in str(exc), f"{fault!r} not named in:\n{exc}"
        return None
    if tables is not None:
        acc, rep = tables
        bad = [(t, array) for t, array in ((acc, "accounts"), (rep, "reps")) if t.must_fail]
        if bad or acc.n == 0 or rep.n == 0:
            assert exc is not None, f"accepted bad records: {[(a, t.bad_cells) for t, a in bad]}"
            # Validation runs in stages (the schema's types and bounds, then the readers'
            # rules) and stops at the first stage with problems: each problem must be real,
            # and one at least named.
            assert_request_blames(exc, acc, rep)
            return None
        if exc is not None:
            assert acc.n == 0 or rep.n == 0, f"refused a clean request: {exc}"
            return None
        scenario, _ = result
        assert [str(i) for i in scenario.accounts.ids] == [str(i) for i in acc.columns["id"]]
        assert [str(i) for i in scenario.reps.ids] == [str(i) for i in rep.columns["id"]]
    return result


def body_of(acc, rep, encode: str) -> object:
    body = {"schema_version": "1.0", "accounts": records(acc), "reps": records(rep)}
    if encode == "dict":
        return body
    text = json.dumps(body, ensure_ascii=encode == "ascii")
    return text.encode("utf-8") if encode == "bytes" else text


@settings(max_examples=examples(3))
@given(st.sampled_from(["plan", "partition"]), account_tables(max_rows=6),
       rep_tables(max_rows=3), st.sampled_from(["dict", "text", "bytes", "ascii"]))
def test_request_records(kind, acc, rep, encode) -> None:
    check_parse(kind, body_of(acc, rep, encode), (acc, rep))


@settings(max_examples=examples(3))
@given(st.sampled_from(["plan", "partition"]), st.data())
def test_request_envelope(kind, data) -> None:
    acc = data.draw(account_tables(min_rows=2, max_rows=4, faults=False))
    rep = data.draw(rep_tables(min_rows=1, max_rows=2, faults=False))
    faults = ENVELOPE_FAULTS + (PLAN_FAULTS if kind == "plan" else PARTITION_FAULTS)
    key, value, named = data.draw(st.sampled_from(faults))
    body = {"schema_version": "1.0", "accounts": records(acc), "reps": records(rep)}
    set_path(body, key, value)
    text = json.dumps(body)
    check_parse(kind, data.draw(st.sampled_from([body, text])), fault=named)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)


@settings(max_examples=examples(3))
@given(st.sampled_from(["plan", "partition"]), st.one_of(
    st.binary(max_size=200),
    st.text(max_size=200),
    JSONISH,
    JSONISH.map(json.dumps),
    st.dictionaries(st.sampled_from(["schema_version", "accounts", "reps", "options",
                                     "calendar", "name"]), JSONISH, max_size=6),
))
def test_garbage_requests(kind, body) -> None:
    """Anything at all: a typed error (or, by chance, a scenario); never another exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        _result, exc = outcome(PARSE[kind], body)
    if exc is not None:
        assert isinstance(exc, InvalidInputError), f"{type(exc).__name__}: {exc}"
        reply, code = contract.error_to_json(exc)
        assert code == 2
        json.dumps(reply, allow_nan=False)


@settings(max_examples=examples(2))
@given(st.sampled_from(["plan", "partition"]), account_tables(min_rows=1, max_rows=5,
                                                              faults=False),
       rep_tables(min_rows=1, max_rows=2, faults=False), st.integers(1, 400))
def test_truncated_requests(kind, acc, rep, cut) -> None:
    text = json.dumps({"schema_version": "1.0", "accounts": records(acc),
                       "reps": records(rep)}, ensure_ascii=False)
    data = text.encode("utf-8")[:cut]
    if len(data) == len(text.encode("utf-8")):
        return
    _, exc = outcome(PARSE[kind], data)
    assert isinstance(exc, InvalidInputError), exc
    assert "JSON" in str(exc) or "UTF-8" in str(exc)
