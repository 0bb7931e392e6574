"""The failures the fuzz tests found, each as its minimal example."""

from __future__ import annotations

import io

import pytest

from territory.errors import InvalidInputError
from territory.io import read_accounts


def test_gbk_file_with_a_utf8_latin_line_is_refused_not_garbled() -> None:
    # Found by test_mixed_encodings_are_refused_or_read_right: a GBK file with one line saved
    # as UTF-8 read as GBK throughout, and "Café" came back as "Caf茅" without a word.
    data = ("id,lon,lat,name\nA0,121.4,31.2,广州药房\n".encode("gbk")
            + "A1,121.4,31.2,Café\n".encode())
    with pytest.raises(InvalidInputError, match=r"line 3 reads as UTF-8 .*Café.* and as GBK "
                                                r".*Caf茅.*mixes encodings"):
        read_accounts(io.BytesIO(data))
    # Told the encoding, the reader takes it at its word.
    accounts = read_accounts(io.BytesIO(data), encoding="gb18030")
    assert list(accounts.frame["name"]) == ["广州药房", "Caf茅"]


def test_gbk_text_that_is_not_latin_as_utf8_still_reads() -> None:
    # The check above must not refuse GBK whose bytes happen to be valid UTF-8 of other
    # scripts: "茅台" (c3 a9 cc a8) is UTF-8 "é" plus a combining mark.
    data = "id,lon,lat,name\nA0,121.4,31.2,广州药房\nA1,121.4,31.2,茅台\n".encode("gbk")
    assert list(read_accounts(io.BytesIO(data)).frame["name"]) == ["广州药房", "茅台"]


def frames(accounts: dict, reps: dict | None = None):
    import pandas as pd

    base = {"id": ["A", "B"], "lon": [121.4, 121.5], "lat": [31.2, 31.25]}
    return pd.DataFrame({**base, **accounts}), pd.DataFrame(
        {"id": ["R"], "home_lon": [121.45], "home_lat": [31.22], **(reps or {})})


def test_id_beyond_64_bits_reads_as_text() -> None:
    # Found by test_request_records: an integer id beyond int64 (JSON allows it) raised
    # OverflowError while the ids were turned into text.
    from territory import contract

    scenario, _ = contract.parse_partition_request({
        "schema_version": "1.0", "accounts": [{"id": 10**30, "lon": 121.4, "lat": 31.2}],
        "reps": [{"id": 1, "lon": 121.4, "lat": 31.2}]})
    assert list(scenario.accounts.ids) == [str(10**30)]


@pytest.mark.parametrize(("field", "value", "message"), [
    ("visits", 10**30, "expected <= 371"),
    ("visits", 372, "expected <= 371"),
    ("visit_min", 1e6, "expected <= 1440"),
    ("potential", 1e308, r"expected <= 1e\+15"),
])
def test_account_numbers_beyond_their_bounds_are_named(field, value, message) -> None:
    # Found by the table fuzz: visits=1e30 passed validation and wrapped to a negative int64
    # (partition then blamed "measures[0, 0]"); potential=1e308 summed to infinity and
    # failed in numpy's SVD; visit_min above a day could never be planned.
    from territory.model import Accounts

    acc, _ = frames({field: [1, value]})
    with pytest.raises(InvalidInputError, match=message) as info:
        Accounts.from_frame(acc)
    assert [(p.row, p.id, p.field) for p in info.value.problems] == [(1, "B", field)]


@pytest.mark.parametrize(("field", "value"), [("max_nights_week", 10**30),
                                              ("max_nights_week", 8), ("max_work_min", 1e9)])
def test_rep_numbers_beyond_their_bounds_are_named(field, value) -> None:
    from territory.model import Reps

    _, reps = frames({}, {field: [value]})
    with pytest.raises(InvalidInputError, match="expected <= ") as info:
        Reps.from_frame(reps)
    assert [(p.row, p.id, p.field) for p in info.value.problems] == [(0, "R", field)]


def test_measure_summing_to_infinity_is_named() -> None:
    # potential is bounded now, but any numeric column can be a measure.
    import territory as tp
    from territory.model import Accounts, Reps, Scenario

    acc, reps = frames({"sales": [1e308, 1e308]})
    scenario = Scenario(Accounts.from_frame(acc), Reps.from_frame(reps))
    with pytest.raises(InvalidInputError, match=r"'sales' sums to more .* account 'A'"):
        tp.partition(scenario, measures=("sales",), time_limit_s=0.5)
