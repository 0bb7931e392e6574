"""Chunked reading of large tables (territory.io, ``chunk_rows=``): the same result as one read.

Every test compares a chunked read with the whole-table read (``chunk_rows=0``) of the same
file: the same frame, hours profiles and codes, or the same error, word for word. Tables are
small; the chunks are made small to match (1, 7 rows), and the byte blocks and the encoding
sample too where the test is about decoding.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import territory.io as tio
from territory import synth
from territory.errors import InvalidInputError
from territory.io import read_accounts, read_reps, write_accounts, write_csv
from territory.model import Accounts

GUANGZHOU = (113.2644, 23.1291)


@pytest.fixture(scope="module")
def accounts() -> Accounts:
    return synth.china_scenario(60, seed=0).accounts


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytes read 64 at a time and the encoding chosen on 256 bytes: a small file then
    decodes the way a large one does."""
    monkeypatch.setattr(tio, "_BLOCK_BYTES", 64)
    monkeypatch.setattr(tio, "_HEAD_BYTES", 256)


def assert_same(whole: Accounts, chunked: Accounts) -> None:
    pd.testing.assert_frame_equal(chunked.frame, whole.frame)
    assert chunked.hours_profiles == whole.hours_profiles
    assert chunked.hours_code.tolist() == whole.hours_code.tolist()
    assert chunked.hours_code.dtype == whole.hours_code.dtype


def error_of(fn: Callable[..., object], *args: object, **kwargs: object) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as exc:
        fn(*args, **kwargs)
    return exc.value


def assert_same_error(source: object, chunk_rows: int, **kwargs: object) -> InvalidInputError:
    """The chunked read fails as the whole read does: same message, same problems."""
    whole = error_of(read_accounts, source, chunk_rows=0, **kwargs)
    chunked = error_of(read_accounts, source, chunk_rows=chunk_rows, **kwargs)
    assert str(chunked) == str(whole)
    assert [(p.row, p.id, p.field, repr(p.value), p.message) for p in chunked.problems] == \
        [(p.row, p.id, p.field, repr(p.value), p.message) for p in whole.problems]
    return chunked


def csv_of(path: Path, frame: pd.DataFrame, encoding: str = "utf-8-sig") -> Path:
    """``frame`` written as CSV the way other tools write it (no BOM writer of ours)."""
    frame.to_csv(path, index=False, encoding=encoding)
    return path


# ----------------------------------------------------------------------------------------------
# the same accounts


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "gbk", "utf-16"])
@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_csv_chunks_give_the_whole_read(tmp_path: Path, accounts: Accounts, encoding: str,
                                        chunk_rows: int, small_blocks: None) -> None:
    path = tmp_path / "a.csv"
    accounts.frame.to_csv(path, index=False, encoding=encoding)
    whole = read_accounts(path, chunk_rows=0)
    assert_same(whole, read_accounts(path, chunk_rows=chunk_rows))
    assert whole.frame["name"].iloc[0] == accounts.frame["name"].iloc[0]  # decoded right


@pytest.mark.parametrize("chunk_rows", [1, 7, 1000])
def test_parquet_batches_give_the_whole_read(tmp_path: Path, accounts: Accounts,
                                             chunk_rows: int) -> None:
    path = write_accounts(accounts, tmp_path / "a.parquet")
    assert_same(read_accounts(path, chunk_rows=0), read_accounts(path, chunk_rows=chunk_rows))


def test_parquet_index_and_geoparquet(tmp_path: Path, accounts: Accounts) -> None:
    import geopandas as gpd

    # A named index is data (here the id), in every batch.
    accounts.frame.set_index("id").to_parquet(tmp_path / "a.parquet")
    assert_same(read_accounts(tmp_path / "a.parquet", chunk_rows=0),
                read_accounts(tmp_path / "a.parquet", chunk_rows=7))
    # GeoParquet needs geopandas' reader: read whole, whatever chunk_rows says.
    frame = accounts.frame.drop(columns=["lon", "lat"])
    gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(accounts.lon, accounts.lat),
                     crs="EPSG:4326").to_parquet(tmp_path / "g.parquet")
    assert tio._chunks(tmp_path / "g.parquet", 7, None) is None
    assert_same(read_accounts(tmp_path / "g.parquet", chunk_rows=0),
                read_accounts(tmp_path / "g.parquet", chunk_rows=7))


def test_derived_defaults_are_whole_table_rules(tmp_path: Path, accounts: Accounts) -> None:
    # Segments by potential rank are quantiles over all rows, and visits and minutes follow
    # them; per-weekday hours columns fold into profiles numbered over all rows.
    frame = accounts.frame.drop(columns=["segment", "visits", "visit_min"])
    frame["hours_sat"] = [None, "09:00-12:00", "closed", None, "10:00-11:00"] * 12
    path = csv_of(tmp_path / "a.csv", frame)
    whole = read_accounts(path, chunk_rows=0)
    assert set(whole.frame["segment"]) == {"A", "B", "C"}
    for chunk_rows in (1, 7):
        assert_same(whole, read_accounts(path, chunk_rows=chunk_rows))


def test_column_mapping_and_aliases(tmp_path: Path, accounts: Accounts) -> None:
    frame = accounts.frame.rename(columns={"id": "客户编码", "lon": "经度", "lat": "纬度",
                                           "name": "店名"})
    path = csv_of(tmp_path / "a.csv", frame, "gbk")
    whole = read_accounts(path, columns={"店名": "name"}, chunk_rows=0)
    assert whole.ids[0] == accounts.ids[0] and "name" in whole.frame
    assert_same(whole, read_accounts(path, columns={"店名": "name"}, chunk_rows=7))


def test_reps_and_file_objects(tmp_path: Path) -> None:
    scenario = synth.china_scenario(200, seed=1)
    path = tio.write_reps(scenario.reps, tmp_path / "r.csv")
    pd.testing.assert_frame_equal(read_reps(path, chunk_rows=2).frame,
                                  read_reps(path, chunk_rows=0).frame)
    data = write_accounts(scenario.accounts, tmp_path / "a.csv").read_bytes()
    whole = read_accounts(io.BytesIO(data))
    assert_same(whole, read_accounts(io.BytesIO(data), chunk_rows=30))
    assert_same(whole, read_accounts(io.StringIO(data.decode("utf-8-sig")), chunk_rows=30))


# ----------------------------------------------------------------------------------------------
# the same errors, with the rows of the whole table


def test_bad_rows_in_the_third_chunk_name_their_rows(tmp_path: Path,
                                                     accounts: Accounts) -> None:
    frame = accounts.frame.copy()
    frame["potential"] = frame["potential"].astype(object)
    frame.loc[23, "potential"] = "-2"
    frame.loc[25, "lat"] = None
    path = csv_of(tmp_path / "a.csv", frame)
    exc = assert_same_error(path, chunk_rows=10)  # rows 21-30 of the table: the third chunk
    ids = accounts.ids
    # Spreadsheet rows: the header is row 1, so table position p is row p + 2.
    assert f"Account '{ids[23]}' (row 25): potential='-2'; expected >= 0" in str(exc)
    assert f"Account '{ids[25]}' (row 27): lat=nan; missing; give a number" in str(exc)
    assert str(exc).startswith(f"{path}: 2 problem(s) in the accounts table (60 rows)")


def test_duplicate_ids_in_different_chunks_name_both_rows(tmp_path: Path,
                                                          accounts: Accounts) -> None:
    frame = accounts.frame.copy()
    frame.loc[40, "id"] = frame.loc[3, "id"]
    path = csv_of(tmp_path / "a.csv", frame)
    exc = assert_same_error(path, chunk_rows=7)  # rows 3 and 40 are in chunks 1 and 6
    dup = frame.loc[3, "id"]
    assert f"Account '{dup}' (row 5): id='{dup}'; duplicate id (also in row 42)" in str(exc)
    assert f"Account '{dup}' (row 42): id='{dup}'; duplicate id (also in row 5)" in str(exc)


def test_problems_keep_the_order_of_one_pass(tmp_path: Path, accounts: Accounts) -> None:
    # Problems of several kinds spread over chunks: listed kind by kind, then row by row, as
    # one pass over the table lists them (so the 20 a message shows are the same).
    frame = accounts.frame.copy().astype(object)
    for pos in (2, 9, 30, 55):
        frame.loc[pos, "lon"] = "x"
        frame.loc[pos + 1, "visits"] = "2.5"
        frame.loc[pos + 2, "hours"] = f"bad {pos % 2}"
    frame.loc[50, "id"] = frame.loc[1, "id"]
    exc = assert_same_error(csv_of(tmp_path / "a.csv", frame), chunk_rows=7)
    assert [p.field for p in exc.problems[:6]] == ["id", "id", "lon", "lon", "lon", "lon"]


def test_a_cell_is_read_without_regard_to_other_rows() -> None:
    # "1e400" is an infinite number whether or not another cell of the column is not a
    # number; a chunk sees only some of the rows, so nothing may depend on the others.
    frame = pd.DataFrame({"id": ["a", "b"], "lon": ["1e400", "x"], "lat": [23.0, 23.0]})
    exc = error_of(read_accounts, frame)
    assert [(p.row, p.message) for p in exc.problems[:2]] == [
        (1, "not a number"), (0, "infinite; give a finite number")]


def test_parquet_errors_and_integer_nulls(tmp_path: Path) -> None:
    # An integer column with a null in one batch only is float in the whole read: the values
    # an error quotes must not depend on the batch.
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"a{i}" for i in range(9)], "lon": [GUANGZHOU[0]] * 9,
                      "lat": [GUANGZHOU[1]] * 9,
                      "visits": pa.array([1, -2, 1, 1, None, 1, 1, 1, 1], pa.int64())})
    pq.write_table(table, tmp_path / "a.parquet")
    exc = assert_same_error(tmp_path / "a.parquet", chunk_rows=3)
    assert "visits=-2.0; expected >= 0" in str(exc)
    frame = table.to_pandas()
    frame.assign(id="dup").to_parquet(tmp_path / "b.parquet", index=False)
    exc = assert_same_error(tmp_path / "b.parquet", chunk_rows=2)
    assert "(row 8): id='dup'; duplicate id (also in row 0, 1, 2, 3, 4 and 3 more)" in str(exc)
    frame.iloc[:0].to_parquet(tmp_path / "c.parquet", index=False)
    assert "has no rows" in str(assert_same_error(tmp_path / "c.parquet", chunk_rows=2))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "the file is empty"),
        ("\n\n  \n", "the file is empty"),
        ("id,lon,lat\n", "has a header but no data rows"),
        ("id,lon,lat\n,,\n,,\n", "has a header but no data rows"),
        (",,\n,,\n", "the table is empty"),
        ("id,lon,id\nA,1,2\n", r"header repeats column names: 'id' in columns 1, 3"),
        # A repeated name, and a bad row further down: the bad row, as in one read.
        ("id,lon,id\nA,1,2\nB,1,2\nC,1,2,3\n", r"Expected 3 fields in line 4, saw 4"),
        ("id,lon,lat\nA,1,2\nB,1,2,3\n", r"Expected 3 fields in line 3, saw 4"),
        ("id,name\n1,\"open\n2,x\n", r"EOF inside string starting at row 1"),
        ("id,lon\nA,1\n", r"no column for \['lat'\]"),
    ],
)
@pytest.mark.parametrize("chunk_rows", [1, 2])
def test_malformed_files_fail_alike(tmp_path: Path, text: str, match: str,
                                   chunk_rows: int) -> None:
    path = tmp_path / "a.csv"
    path.write_text(text, encoding="utf-8")
    exc = assert_same_error(path, chunk_rows=chunk_rows)
    assert exc.problems == ()
    with pytest.raises(InvalidInputError, match=match):
        read_accounts(path, chunk_rows=chunk_rows)


def test_rows_at_a_chunk_start_are_checked_for_width(tmp_path: Path) -> None:
    # pandas' chunked parser skips the field-count check on a chunk's first line (pandas
    # issue 11569): a longer row there would lose its extra field silently, and a shorter
    # one would make the next full row an error. Both reads give what one pandas pass gives.
    rows = [f"A{i},{GUANGZHOU[0]},{GUANGZHOU[1]}" for i in range(8)]
    long_row = rows.copy()
    long_row[3] += ",extra"
    path = tmp_path / "long.csv"
    path.write_text("id,lon,lat\n" + "\n".join(long_row) + "\n")
    for chunk_rows in (1, 2, 4):
        exc = assert_same_error(path, chunk_rows=chunk_rows)
        assert "Expected 3 fields in line 5, saw 4" in str(exc)
    short_row = rows.copy()
    short_row[3] = "A3,113.2"
    path = tmp_path / "short.csv"
    path.write_text("id,lon,lat\n" + "\n".join(short_row) + "\n")
    exc = assert_same_error(path, chunk_rows=4)
    assert [(p.row, p.field) for p in exc.problems] == [(5, "lat")]


def test_quoted_line_breaks_across_a_chunk_cut(tmp_path: Path) -> None:
    text = ("\nid,name,lon,lat\n"
            f"A,\"two\nlines\",{GUANGZHOU[0]},{GUANGZHOU[1]}\n"
            f"B,\"say \"\"hi\"\"\n,\n\",{GUANGZHOU[0]},{GUANGZHOU[1]}\n"
            f"C,5\" screen,{GUANGZHOU[0]},{GUANGZHOU[1]}\n"
            f"\"D\",plain,{GUANGZHOU[0]},x\n")
    path = tmp_path / "a.csv"
    path.write_text(text)
    for chunk_rows in (1, 2, 3):
        exc = assert_same_error(path, chunk_rows=chunk_rows)
        assert [(p.row, p.id, p.field) for p in exc.problems] == [(6, "D", "lat")]
    path.write_text(text.replace(",x\n", f",{GUANGZHOU[1]}\n"))
    whole = read_accounts(path, chunk_rows=0)
    assert whole.frame["name"].tolist() == ["two\nlines", "say \"hi\"\n,\n", "5\" screen",
                                            "plain"]
    assert_same(whole, read_accounts(path, chunk_rows=1))


# ----------------------------------------------------------------------------------------------
# decoding in blocks


def test_gbk_file_streamed(tmp_path: Path, accounts: Accounts, small_blocks: None) -> None:
    path = csv_of(tmp_path / "a.csv", accounts.frame, "gbk")
    chunked = read_accounts(path, chunk_rows=5)
    assert chunked.frame["name"].tolist() == accounts.frame["name"].tolist()
    assert_same(read_accounts(path, chunk_rows=0), chunked)


def _late_line(data: bytes, line: int) -> int:
    """Byte offset of the start of ``line`` (from 1)."""
    offset = 0
    for _ in range(line - 1):
        offset = data.index(b"\n", offset) + 1
    return offset


def test_bad_byte_in_a_late_chunk(tmp_path: Path, accounts: Accounts,
                                  small_blocks: None) -> None:
    data = accounts.frame.to_csv(index=False).encode()
    start = _late_line(data, 50)
    bad = data[:start] + b"\xff" + data[start:]
    path = tmp_path / "a.csv"
    path.write_bytes(bad)
    # Far below the 256 bytes the encoding is chosen on: found when its block is decoded.
    exc = error_of(read_accounts, path, chunk_rows=7)
    assert str(exc).startswith(
        f"{path}: the bytes at offset {start} (line 50: ff {bad[start + 1:start + 4].hex(' ')})"
        " cannot be read as UTF-8, though line 2 is UTF-8: the file mixes encodings.")
    # The whole read finds it at the same place and says the same.
    assert str(error_of(read_accounts, path, chunk_rows=0)) == str(exc)
    exc = error_of(read_accounts, path, chunk_rows=7, encoding="utf-8")
    assert f"offset {start} (line 50: ff" in str(exc) and "cannot be read as utf-8" in str(exc)


def test_utf8_line_late_in_a_gbk_file_is_refused(tmp_path: Path, accounts: Accounts,
                                                 small_blocks: None) -> None:
    frame = accounts.frame
    gbk = frame.iloc[:45].to_csv(index=False).encode("gbk")
    utf8 = frame.iloc[45:].to_csv(index=False, header=False).encode()
    path = tmp_path / "a.csv"
    path.write_bytes(gbk + utf8)
    exc = error_of(read_accounts, path, chunk_rows=7)
    # Chosen on the first 256 bytes: GBK. Line 47 (the first UTF-8 row) is refused, not
    # decoded into mojibake; the message names the first GBK byte as the whole read would.
    assert "cannot be read as UTF-8 (it reads as GBK) while line 47 is UTF-8: the file mixes " \
           "encodings" in str(exc)
    # The whole read refuses it too; it tries GB18030 on all bytes first, which fails below.
    assert "cannot be read as UTF-8 or GBK" in str(error_of(read_accounts, path, chunk_rows=0))


# ----------------------------------------------------------------------------------------------
# when chunking happens, and writing


def test_chunking_switches_on_by_size(tmp_path: Path, accounts: Accounts,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_accounts(accounts, tmp_path / "a.csv")
    assert tio._chunks(path, None, None) is None  # small: read whole
    assert tio._chunks(path, 0, None) is None
    assert tio._chunks(pd.DataFrame(), 5, None) is None
    monkeypatch.setattr(tio, "_AUTO_CHUNK_BYTES", 1000)
    monkeypatch.setattr(tio, "_CHUNK_ROWS", 7)
    chunks = tio._chunks(path, None, None)
    assert chunks is not None and [len(c) for c in chunks][:2] == [6, 7]  # header + 6 rows
    assert tio._chunks(path, 0, None) is None
    assert_same(read_accounts(path, chunk_rows=0), read_accounts(path))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_chunk_rows_must_be_a_count(bad: object) -> None:
    with pytest.raises(InvalidInputError, match=r"chunk_rows=.* is not a whole number >= 0"):
        read_accounts(io.StringIO("id,lon,lat\n"), chunk_rows=bad)  # type: ignore[arg-type]


def test_csv_is_written_in_slices(tmp_path: Path, accounts: Accounts,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    whole = write_csv(accounts, tmp_path / "whole.csv").read_bytes()
    monkeypatch.setattr(tio, "_WRITE_CHUNK_ROWS", 7)
    sliced = write_csv(accounts, tmp_path / "sliced.csv").read_bytes()
    assert sliced == whole and sliced.startswith(b"\xef\xbb\xbf")
    assert_same(read_accounts(tmp_path / "whole.csv"),
                read_accounts(tmp_path / "sliced.csv", chunk_rows=7))


def test_the_result_owns_its_arrays(accounts: Accounts) -> None:
    # The table is built from the validated arrays without copying them into blocks: none
    # may be a view of the input, or changing the input would change the accounts.
    frame = accounts.frame.copy()
    acc = read_accounts(frame)
    before = acc.frame.copy()
    frame.loc[:, ["lon", "lat", "potential"]] = 0.0
    frame.loc[:, ["name", "kind", "city"]] = "changed"
    pd.testing.assert_frame_equal(acc.frame, before)
    assert isinstance(acc.frame.index, pd.RangeIndex)
    # Texts repeated down a column are shared objects (a pointer a row, not a str).
    assert len({id(v) for v in acc.frame["city"]}) == acc.frame["city"].nunique()
