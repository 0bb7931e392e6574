"""Fuzzed CSV files (UTF-8, BOM, GBK/GB18030, UTF-16, mixed encodings, garbage bytes): a typed
error naming the row (as a spreadsheet numbers it) and the field, or the table read in full with
its text intact."""

from __future__ import annotations

import csv
import io
import math
import warnings

import pytest
from fuzz_helpers import account_tables, check_read, examples, frame_of, outcome, rep_tables
from hypothesis import given, settings
from hypothesis import strategies as st

from territory.errors import DataQualityWarning, InvalidInputError
from territory.io import read_accounts, read_reps, read_table

pytestmark = pytest.mark.timeout(600)

ENCODINGS = ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"]


def cell(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else str(v)


def csv_text(t) -> str:
    frame = frame_of(t)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([str(c) for c in frame.columns])
    for row in frame.itertuples(index=False):
        w.writerow([cell(v) for v in row])
    return out.getvalue()


def encode(text: str, encoding: str) -> bytes | None:
    try:
        return text.encode(encoding)
    except UnicodeEncodeError:
        return None


def is_encoding_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, InvalidInputError) and (
        ("cannot be read as" in text and ("UTF" in text or "GB" in text))
        or "reads both as UTF-8" in text)


def read_and_check(t, reader, data: bytes, path, *, ambiguous_ok: bool) -> None:
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        if ambiguous_ok:
            # Text that reads as UTF-8 and as GBK is refused unless the encoding is given.
            _result, exc = outcome(reader, path)
            if exc is not None and is_encoding_error(exc):
                return
        got = check_read(t, reader, path, lambda pos: pos + 2)
    if got is not None and "name" in t.columns:
        names = [str(v).strip() for v in got.frame["name"]]
        want = [cell(v).strip() for v in t.columns["name"]]
        assert names == [w if w else n for w, n in zip(want, names, strict=True)], \
            f"text changed on reading: {names} != {want}"


@settings(max_examples=examples(2))
@given(account_tables(), st.sampled_from(ENCODINGS))
def test_account_csv(tmp_path_factory, t, encoding) -> None:
    text = csv_text(t)
    data = encode(text, encoding)
    if data is None:
        return
    path = tmp_path_factory.mktemp("csv") / "accounts.csv"
    ambiguous = not text.isascii() and encoding not in ("utf-8-sig", "utf-16")
    read_and_check(t, read_accounts, data, path, ambiguous_ok=ambiguous)


@settings(max_examples=examples(1))
@given(rep_tables(), st.sampled_from(ENCODINGS), st.sampled_from([",", ";", "\t", "|"]))
def test_rep_csv(tmp_path_factory, t, encoding, sep) -> None:
    text = csv_text(t)
    if sep != ",":
        rows = list(csv.reader(io.StringIO(text)))
        out = io.StringIO()
        csv.writer(out, delimiter=sep, lineterminator="\n").writerows(rows)
        text = out.getvalue()
    data = encode(text, encoding)
    if data is None:
        return
    path = tmp_path_factory.mktemp("csv") / "reps.csv"
    ambiguous = not text.isascii() and encoding not in ("utf-8-sig", "utf-16")
    read_and_check(t, read_reps, data, path, ambiguous_ok=ambiguous)


NAMES = st.sampled_from(["广州药房", "北京诊所", "上海中心医院", "Café", "Ärzte", "pharmacy"])


@settings(max_examples=examples(2))
@given(st.lists(st.tuples(NAMES, st.sampled_from(["utf-8", "gbk"])), min_size=1, max_size=6),
       st.booleans())
def test_mixed_encodings_are_refused_or_read_right(tmp_path_factory, rows, bom) -> None:
    """Each line in its own encoding: refused as mixed, or every name read as written."""
    lines = [b"\xef\xbb\xbf" if bom else b""]
    lines[0] += b"id,lon,lat,name\n"
    for i, (name, enc) in enumerate(rows):
        data = encode(f"A{i},121.4,31.2,{name}\n", enc)
        lines.append(data if data is not None else f"A{i},121.4,31.2,x\n".encode())
    path = tmp_path_factory.mktemp("mixed") / "accounts.csv"
    path.write_bytes(b"".join(lines))
    result, exc = outcome(read_accounts, path)
    if exc is not None:
        assert isinstance(exc, InvalidInputError), exc
        return
    decoded = [ln.decode("utf-8-sig" if k == 0 else rows[k - 1][1], "replace")
               for k, ln in enumerate(lines)]
    want = [ln.rstrip("\n").split(",")[3] for ln in decoded[1:]]
    assert list(result.frame["name"]) == want


@settings(max_examples=examples(2))
@given(st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from([b"id", b"lon", b"lat", b",", b"\n", b"\r\n", b"\"", b"121.4",
                              b"31.2", b"A1", b"\xd2\xbd", b"\xe5\x8c\xbb", b"\t", b";",
                              b"\xff\xfe", b"\xef\xbb\xbf", b"NA", b" "]),
             max_size=40).map(b"".join)))
def test_garbage_bytes(tmp_path_factory, data) -> None:
    """Arbitrary bytes as a CSV file or stream: read, or a typed error; never anything else."""
    path = tmp_path_factory.mktemp("junk") / "accounts.csv"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        for source in (path, io.BytesIO(data)):
            outcome(read_table, source)
            _result, exc = outcome(read_accounts, source if source is path else io.BytesIO(data))
            if exc is not None:
                assert isinstance(exc, InvalidInputError), exc
            outcome(read_reps, path)
