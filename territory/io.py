"""Reading and validating accounts and reps; writing them back.

``read_accounts`` / ``read_reps`` read a table from a file or a frame, map its column names,
take coordinates from point geometries, convert GCJ-02/BD-09 to WGS-84 and hand the result to
``Accounts.from_frame`` / ``Reps.from_frame``, which validate it and fill the documented
defaults. Every problem is an ``InvalidInputError`` listing each offending row, field and value,
with the fix; nothing is dropped or coerced silently.

Sources
-------
=========================  ==================================================================
source                     notes
=========================  ==================================================================
``.csv`` ``.tsv`` ``.txt``  encoding detected (UTF-8 with or without BOM, then GB18030, the
                           superset of the GBK that Chinese-locale Excel writes; UTF-16 with a
                           BOM, as Excel's "Unicode text" writes); ``encoding=`` overrides.
                           Delimiter sniffed from comma, tab, semicolon and ``|``.
                           A file-like object (bytes or text) is read as CSV.
``.xlsx`` ``.xlsm``         first sheet unless ``sheet=`` (index or name); ``.xls`` needs the
                           ``xlrd`` package.
``.gpkg`` ``.geojson``      layer named like the table (``accounts`` / ``reps``) or the only
``.json`` ``.shp``          layer, unless ``layer=``; ``encoding=`` for shapefiles without .cpg.
``.parquet``               plain or GeoParquet.
DataFrame / GeoDataFrame   used as given (not copied deeply, never modified).
=========================  ==================================================================

CSV and Excel cells are read as text, so ids such as ``"00123"`` keep their zeros and an error
quotes the value exactly as typed. The cells ``""``, ``NA``, ``N/A``, ``NaN``, ``nan``,
``null``, ``NULL``, ``None`` and ``none`` mean missing (a missing optional field takes its
default). Completely empty rows and columns with neither a header nor any value are skipped.
Typed formats (GeoPackage, GeoJSON, Parquet, frames) keep their types. In text files, times of
day are clock times: ``"08:30"`` (``"510"`` would read as 05:10).

Row labels in messages are the numbers a spreadsheet shows for CSV and Excel (header = row 1,
first data row = row 2), the feature id (``fid``) for GeoPackage, GeoJSON and shapefiles, the
position from 0 for Parquet, and the index labels for frames.

Column names
------------
``columns={"客户编码": "id", ...}`` renames first. Every other column is matched against the
aliases in ``ACCOUNT_ALIASES`` / ``REP_ALIASES`` (case-insensitive; spaces and ``-`` count as
``_``). Two columns for one field (``lng`` and ``经度``, or ``columns=`` naming ``客户编码`` as
``id`` while the table also has ``id``) are an error naming both: map one of them to another name
with ``columns=`` (e.g. ``columns={"x": "x_utm"}``). Columns that match nothing are kept.

Geometry
--------
With a GeoDataFrame or a spatial file and no coordinate columns, coordinates come from the
geometry, transformed to EPSG:4326 when it has another CRS (no CRS: taken as lon/lat degrees).
Non-point geometries (a shop's outline, a multipoint) are replaced by their representative point,
a point guaranteed to lie inside them, with a ``DataQualityWarning`` that counts and names them:
an outline is a fair location for a visit, whereas refusing would make users compute centroids
by hand. Missing or empty geometries give missing coordinates, which validation reports. When
coordinate columns exist they win and the geometry is ignored.

Coordinates given in GCJ-02 (AMap/Gaode, Tencent) or BD-09 (Baidu) are converted with
``territory.coords.convert`` when ``coord_system="gcj02"`` or ``"bd09"``.

Large files
-----------
CSV/TSV/TXT and Parquet files over 64 MiB are read in chunks of 50,000 rows
(``chunk_rows=`` sets the size and forces chunking, ``chunk_rows=0`` reads the whole table at
once; other sources are always read whole). Each chunk is decoded, parsed and validated on its
own and only the validated columns are kept, so the peak memory is about the final table plus
one chunk instead of the file's bytes, its text and a table of strings at once. The result, the
row labels and the problems reported are those of the whole-table read; duplicate ids and the
segments by potential rank, which need every row, are settled after the last chunk. The
encoding is chosen, by the rules above, on the first 4 MiB from the first line that is not
ASCII; a later line that does not decode (or a UTF-8 line in a GBK file) is an error naming
its offset and line. When a file has several kinds of problem, a chunked read may report a
different one first (e.g. a missing column before a bad byte far below). GeoParquet is read
whole.

Writing
-------
``write_csv`` writes UTF-8 with a BOM so that Excel shows Chinese text correctly, 50,000 rows
at a time (the formatted text of the whole table is never held at once).
``write_accounts`` / ``write_reps`` write any readable format but shapefiles (which cut column
names to 10 characters) by extension; reading the file back gives the same table (reps' times
are written as ``"HH:MM"``).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from territory.errors import DataQualityWarning, InvalidInputError
from territory.hours import format_clock
from territory.model import Accounts, Reps, SegmentRules, _AccountsBuilder, _to_float

__all__ = [
    "ACCOUNT_ALIASES",
    "MISSING_TOKENS",
    "REP_ALIASES",
    "read_accounts",
    "read_reps",
    "read_table",
    "write_accounts",
    "write_csv",
    "write_reps",
]

Source: TypeAlias = "str | os.PathLike[str] | pd.DataFrame | IO[bytes] | IO[str]"
_Kind = Literal["accounts", "reps"]

#: Cell texts that mean "missing" in CSV and Excel input.
MISSING_TOKENS: tuple[str, ...] = (
    "", "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "none",
)

#: Accepted column names per account field (besides the field name itself). Deliberately
#: narrow: a generic name such as ``code`` or ``编码`` could be a postal or province code, and
#: a wrong guess would be worse than asking for ``columns=``.
ACCOUNT_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("account_id", "accountid", "customer_id", "customerid", "customer_code", "cust_id",
           "client_id", "客户编码", "客户id", "客户编号", "客户代码", "编号"),
    "name": ("account_name", "customer_name", "名称", "客户名称", "客户名"),
    "lon": ("lng", "long", "longitude", "x", "经度"),
    "lat": ("latitude", "y", "纬度"),
    "potential": ("sales_potential", "潜力", "销售潜力"),
    "segment": ("级别", "分级", "客户级别", "客户分级"),
    "visits": ("frequency", "visit_frequency", "visits_per_cycle", "拜访频率", "拜访次数"),
    "visit_min": ("duration_min", "visit_duration", "visit_minutes", "拜访时长"),
    "hours": ("opening_hours", "营业时间"),
    "province": ("province_code", "省份", "省", "省份编码", "省份代码"),
    "city": ("城市", "市"),
    "current_rep": ("rep", "rep_id", "代表", "负责人", "销售代表"),
    "locked": ("锁定",),
}

#: Accepted column names per rep field (besides the field name itself).
REP_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("rep_id", "rep", "employee_id", "工号", "员工编号", "代表编号", "编号"),
    "name": ("rep_name", "姓名", "名称", "代表姓名"),
    "home_lon": ("lon", "lng", "long", "longitude", "x", "经度", "home_lng", "home_longitude"),
    "home_lat": ("lat", "latitude", "y", "纬度", "home_latitude"),
    "work_start": ("start_time", "上班时间"),
    "work_end": ("end_time", "下班时间"),
    "working_days": ("workdays", "工作日"),
    "capacity": ("fte",),
    "province": ("province_code", "省份", "省", "省份编码", "省份代码"),
    "region": ("大区", "区域"),
}

# A .csv may use semicolons (European Excel) or tabs, so only .tsv is taken at its word.
_TEXT_EXT = {".csv": None, ".tsv": "\t", ".txt": None}
_EXCEL_EXT = (".xlsx", ".xlsm", ".xls")
_GEO_EXT = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".shp": "ESRI Shapefile"}
_PARQUET_EXT = (".parquet",)
_SUPPORTED = (*_TEXT_EXT, *_EXCEL_EXT, *_GEO_EXT, *_PARQUET_EXT)
_CLOCK_COLUMNS = ("work_start", "work_end", "lunch_start", "lunch_end")
_FRAME_NAME = "the given table"

# Chunked reading (see "Large files" in the module docstring). 50,000 rows of strings are
# some tens of MB: small next to a table of 10^6 accounts, large enough that the per-chunk
# overhead (a pandas call, a polygon lookup) is lost in the work.
_AUTO_CHUNK_BYTES = 64 * 2**20
_CHUNK_ROWS = 50_000
_HEAD_BYTES = 4 * 2**20  # the sample the encoding is chosen on
_BLOCK_BYTES = 2**20  # bytes read and decoded at a time
_SNIFF_CHARS = 65536  # text the delimiter is sniffed on (``_sniff_delimiter``)
_WRITE_CHUNK_ROWS = 50_000


# ----------------------------------------------------------------------------------------------
# public readers


def read_accounts(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    sheet: int | str = 0,
    encoding: str | None = None,
    layer: str | int | None = None,
    allow_outside_china: bool = False,
    rules: SegmentRules | None = None,
    coord_system: str = "wgs84",
    chunk_rows: int | None = None,
) -> Accounts:
    """Read, validate and complete a table of accounts (see the module docstring).

    Parameters
    ----------
    source:
        A path (CSV/TSV/TXT, Excel, GeoPackage, GeoJSON, shapefile, Parquet), a file-like
        object holding CSV, or a (Geo)DataFrame.
    columns:
        Source column name -> field name (``{"客户编码": "id", "经度": "lon"}``), applied before
        the built-in aliases.
    sheet:
        Excel sheet, by position from 0 or by name.
    encoding:
        Text encoding of a CSV (or shapefile); detected when None.
    layer:
        Layer of a GeoPackage; the one named ``accounts`` or the only one when None.
    allow_outside_china:
        Accept points outside the bundled China polygons (plus a 25 km buffer).
    rules:
        How missing segments, visit counts, visit minutes and hours are derived.
    coord_system:
        ``"wgs84"`` (default), ``"gcj02"`` (AMap/Gaode, Tencent) or ``"bd09"`` (Baidu): the
        system of the input coordinates; the result is always WGS-84.
    chunk_rows:
        Rows per chunk for CSV/TSV/TXT and Parquet (see "Large files" in the module
        docstring): None chunks files over 64 MiB by 50,000 rows, a number forces chunks of
        that many rows (also for a file object holding CSV), 0 reads the whole table at once.
        The result is the same either way. Ignored for other sources.

    Returns
    -------
    Accounts

    Raises
    ------
    InvalidInputError
        The source cannot be read (missing, empty, unsupported, undecodable, malformed), lacks
        a required column (``id``, ``lon``, ``lat``), maps two columns to one field, or has
        invalid rows (each listed with its row, id, field, value and the fix); or
        ``chunk_rows`` is not a whole number >= 0.
    """
    system = _coord_system(coord_system)
    chunks = _chunks(source, chunk_rows, encoding)
    if chunks is None:
        frame, name = _prepare(source, "accounts", columns=columns, sheet=sheet,
                               encoding=encoding, layer=layer, coord_system=coord_system)
        try:
            return Accounts.from_frame(frame, rules=rules,
                                       allow_outside_china=allow_outside_china)
        except InvalidInputError as exc:
            raise _with_source(exc, name, "Account") from None
    name = chunks.name
    builder = _AccountsBuilder(rules, allow_outside_china=allow_outside_china,
                               default_days=(0, 1, 2, 3, 4))
    for chunk in chunks:
        frame = _ready(chunk, name, "accounts", columns=columns, system=system)
        try:
            builder.add(frame)
        except InvalidInputError as exc:
            raise _with_source(exc, name, "Account") from None
    chunks.check_mapping(columns, "accounts")
    try:
        return builder.finish(drop=chunks.dropped)
    except InvalidInputError as exc:
        raise _with_source(exc, name, "Account") from None


def read_reps(
    source: Source,
    *,
    columns: Mapping[str, str] | None = None,
    sheet: int | str = 0,
    encoding: str | None = None,
    layer: str | int | None = None,
    allow_outside_china: bool = False,
    coord_system: str = "wgs84",
    chunk_rows: int | None = None,
) -> Reps:
    """Read, validate and complete a table of reps (see the module docstring).

    Parameters are as for ``read_accounts``; the home coordinates are ``home_lon``/``home_lat``
    (``lon``/``lat``, ``经度``/``纬度`` and the like are accepted), and a GeoPackage layer named
    ``reps`` is preferred. With ``chunk_rows`` the file is decoded and parsed in chunks but
    validated whole: a table of reps is small, so only the text is worth not holding at once.

    Returns
    -------
    Reps

    Raises
    ------
    InvalidInputError
        As for ``read_accounts``; also a rep without a home and unreadable times or days.
    """
    system = _coord_system(coord_system)
    chunks = _chunks(source, chunk_rows, encoding)
    if chunks is None:
        frame, name = _prepare(source, "reps", columns=columns, sheet=sheet,
                               encoding=encoding, layer=layer, coord_system=coord_system)
    else:
        name = chunks.name
        frame = chunks.whole()
        frame = _ready(frame, name, "reps", columns=columns, system=system)
    try:
        return Reps.from_frame(frame, allow_outside_china=allow_outside_china)
    except InvalidInputError as exc:
        raise _with_source(exc, name, "Rep") from None


def read_table(
    source: Source,
    *,
    sheet: int | str = 0,
    encoding: str | None = None,
    layer: str | int | None = None,
    prefer_layer: str | None = None,
) -> pd.DataFrame:
    """Read a table as it is: no column mapping, no validation.

    CSV and Excel cells come back as text (``None``/NaN where missing); typed formats keep
    their types; spatial sources come back as a GeoDataFrame. The index holds the row labels
    described in the module docstring.

    Parameters
    ----------
    source, sheet, encoding, layer:
        As for ``read_accounts``.
    prefer_layer:
        With ``layer=None`` and several layers, the layer of this name is read.

    Raises
    ------
    InvalidInputError
        The file is missing, empty, of an unsupported type, undecodable or malformed.
    """
    if isinstance(source, pd.DataFrame):
        return source.copy(deep=False)
    reader = getattr(source, "read", None)
    if callable(reader):
        return _read_text(reader(), _source_name(source), encoding=encoding, sep=None)
    path, name, suffix = _checked_path(source)
    if suffix in _TEXT_EXT:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(f"{name}: cannot be read ({exc}).") from None
        return _read_text(data, name, encoding=encoding, sep=_TEXT_EXT[suffix])
    if suffix in _EXCEL_EXT:
        return _read_excel(path, name, sheet)
    if suffix in _PARQUET_EXT:
        return _read_parquet(path, name)
    return _read_spatial(path, name, layer=layer, encoding=encoding, prefer_layer=prefer_layer)


def _checked_path(source: object) -> tuple[Path, str, str]:
    """Path, name for messages and lower-case suffix of a readable file."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(
            f"Cannot read a table from a {type(source).__name__}.",
            hint="Give a file path, a file object holding CSV, or a pandas DataFrame.")
    path = Path(source).expanduser()
    name = str(source)
    suffix = path.suffix.lower()
    if suffix not in _SUPPORTED:
        raise InvalidInputError(
            f"{name}: unsupported file type {suffix or '(no extension)'!r}.",
            hint=f"Use one of {', '.join(_SUPPORTED)}, or read the file yourself and pass a "
                 "DataFrame.")
    if not path.exists():
        raise InvalidInputError(
            f"{name}: no such file (working directory {Path.cwd()}).",
            hint="Check the path and the file name.")
    if path.is_dir():
        raise InvalidInputError(f"{name}: is a directory, not a file.")
    return path, name, suffix


# ----------------------------------------------------------------------------------------------
# public writers


def write_csv(frame: pd.DataFrame | Accounts | Reps, path: str | os.PathLike[str], *,
              sep: str = ",") -> Path:
    """Write a table as CSV in UTF-8 with a BOM (so Excel shows Chinese text), no index.

    Accounts and reps are written as ``write_accounts`` / ``write_reps`` do (reps' times as
    ``"HH:MM"``). Floats are written in full precision. Rows are formatted and written 50,000
    at a time, so the text of a large table is never held whole.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InvalidInputError
        The file cannot be written.
    """
    table = _export_frame(frame)
    out = Path(path)
    try:
        table.to_csv(out, index=False, encoding="utf-8-sig", sep=sep,
                     chunksize=_WRITE_CHUNK_ROWS)
    except OSError as exc:
        raise InvalidInputError(f"{out}: cannot be written ({exc}).") from None
    return out


def write_accounts(accounts: Accounts, path: str | os.PathLike[str]) -> Path:
    """Write accounts in the format given by the extension; ``read_accounts`` reads it back.

    ``.csv``/``.txt`` (UTF-8 with BOM, comma), ``.tsv``, ``.xlsx``, ``.gpkg`` (layer
    ``accounts``), ``.geojson``/``.json``, ``.parquet``. Spatial formats carry a point geometry
    (EPSG:4326) and the ``lon``/``lat`` columns too. Numbers read back exactly, except from
    Excel, which keeps 16 significant digits (1e-13 degrees for coordinates).

    Raises
    ------
    InvalidInputError
        Unsupported extension (shapefiles are refused: they cut column names to 10
        characters) or the file cannot be written.
    """
    return _write(accounts, path, "accounts", ("lon", "lat"))


def write_reps(reps: Reps, path: str | os.PathLike[str]) -> Path:
    """Write reps like ``write_accounts`` (times as ``"HH:MM"``, GeoPackage layer ``reps``).

    Raises
    ------
    InvalidInputError
        As for ``write_accounts``.
    """
    return _write(reps, path, "reps", ("home_lon", "home_lat"))


# ----------------------------------------------------------------------------------------------
# the pipeline shared by both readers


def _prepare(source: Source, kind: _Kind, *, columns: Mapping[str, str] | None,
             sheet: int | str, encoding: str | None, layer: str | int | None,
             coord_system: str) -> tuple[pd.DataFrame, str]:
    """Read, map columns, take geometry, convert coordinates: a frame ready for validation."""
    system = _coord_system(coord_system)
    name = _source_name(source)
    frame = read_table(source, sheet=sheet, encoding=encoding, layer=layer, prefer_layer=kind)
    return _ready(frame, name, kind, columns=columns, system=system), name


def _ready(frame: pd.DataFrame, name: str, kind: _Kind, *, columns: Mapping[str, str] | None,
           system: str) -> pd.DataFrame:
    """Map columns, take geometry, convert coordinates: a table (or chunk) as read, made ready
    for validation."""
    aliases = ACCOUNT_ALIASES if kind == "accounts" else REP_ALIASES
    lon_col, lat_col = ("lon", "lat") if kind == "accounts" else ("home_lon", "home_lat")
    original = [str(c) for c in frame.columns if not _is_geometry(frame, c)]
    frame = _map_columns(frame, columns, aliases, name, kind)
    frame = _coords_from_geometry(frame, lon_col, lat_col, name)
    required = ("id", lon_col, lat_col)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        accepted = "; ".join(f"{f}: {', '.join((f, *aliases[f]))}" for f in missing)
        raise InvalidInputError(
            f"{name}: the {kind} table has no column for {missing}; its columns are "
            f"{original}.",
            hint=f"Accepted names are {accepted}. Or pass columns={{'your column': "
                 f"'{missing[0]}'}}.")
    if system != "wgs84":
        frame = _to_wgs84(frame, lon_col, lat_col, system)
    return frame


def _source_name(source: Source) -> str:
    if isinstance(source, pd.DataFrame):
        return _FRAME_NAME
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return str(getattr(source, "name", "<stream>"))


def _with_source(exc: InvalidInputError, name: str, kind: str) -> InvalidInputError:
    """The same error with the source named first, so a message about reps and one about
    accounts cannot be confused."""
    if exc.summary.startswith(f"{name}:") or name == _FRAME_NAME:
        return exc
    return InvalidInputError(f"{name}: {exc.summary}", exc.problems, kind=kind, hint=exc.hint)


def _coord_system(name: str) -> str:
    from territory import coords

    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in coords.SYSTEMS:
        raise InvalidInputError(
            f"coord_system={name!r} is not a known coordinate system.",
            hint="Use 'wgs84' (GPS, OpenStreetMap), 'gcj02' (AMap/Gaode, Tencent) or 'bd09' "
                 "(Baidu).")
    return key


def _norm(name: object) -> str:
    return str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _is_geometry(frame: pd.DataFrame, col: object) -> bool:
    geom = getattr(frame, "_geometry_column_name", None)
    return geom is not None and col == geom


def _map_columns(frame: pd.DataFrame, columns: Mapping[str, str] | None,
                 aliases: Mapping[str, tuple[str, ...]], name: str, kind: str) -> pd.DataFrame:
    """Rename by ``columns`` and then by the aliases; refuse two sources for one name."""
    explicit = dict(columns or {})
    bad = [k for k in explicit if k not in frame.columns]
    if bad:
        raise _unknown_columns_error(bad, list(frame.columns), name, kind)
    not_str = {k: v for k, v in explicit.items() if not isinstance(v, str) or not v}
    if not_str:
        raise InvalidInputError(f"columns= must map column names to field names; got {not_str}.")
    by_alias = {_norm(a): f for f, names in aliases.items() for a in (f, *names)}
    target: dict[Any, str] = dict(explicit)
    for col in frame.columns:
        if col in target or _is_geometry(frame, col):
            continue
        field = by_alias.get(_norm(col))
        if field is not None:
            target[col] = field
    sources: dict[str, list[Any]] = {}
    for col in frame.columns:
        sources.setdefault(target.get(col, str(col)), []).append(col)
    clashes = {f: cols for f, cols in sources.items() if len(cols) > 1}
    if clashes:
        what = "; ".join(
            f"{f!r} from " + " and ".join(
                repr(str(c)) + (" (columns=)" if c in explicit else "") for c in cols)
            for f, cols in clashes.items())
        first = next(iter(clashes.values()))
        keep = next((c for c in first if c not in explicit), first[-1])
        raise InvalidInputError(
            f"{name}: two columns of the {kind} table give the same field: {what}.",
            hint=f"Say which one to use by mapping the other elsewhere, e.g. "
                 f"columns={{{str(keep)!r}: '{keep!s}_unused'}}.")
    renames = {c: t for c, t in target.items() if c != t}
    return frame.rename(columns=renames) if renames else frame


def _unknown_columns_error(bad: list[Any], columns: list[Any], name: str,
                           kind: str) -> InvalidInputError:
    return InvalidInputError(
        f"{name}: columns= names {bad}, not in the {kind} table; its columns are "
        f"{[str(c) for c in columns]}.",
        hint="Spell the source column exactly as in the table's header.")


def _coords_from_geometry(frame: pd.DataFrame, lon_col: str, lat_col: str,
                          name: str) -> pd.DataFrame:
    """Coordinates from the point geometry when the columns are absent; geometry dropped."""
    geom_name = getattr(frame, "_geometry_column_name", None)
    if geom_name is None or geom_name not in frame.columns:
        return frame
    import geopandas as gpd

    if lon_col in frame.columns or lat_col in frame.columns:
        return pd.DataFrame(frame.drop(columns=[geom_name]))
    geoms = gpd.GeoSeries(frame[geom_name], crs=frame.crs, index=frame.index)
    present = (~geoms.isna() & ~geoms.is_empty).to_numpy()
    nonpoint = present & (geoms.geom_type != "Point").to_numpy()
    if nonpoint.any():
        rows = [str(r) for r in frame.index[nonpoint][:10]]
        more = f" and {int(nonpoint.sum()) - 10} more" if nonpoint.sum() > 10 else ""
        kinds = sorted(set(geoms[nonpoint].geom_type))
        warnings.warn(
            f"{name}: {int(nonpoint.sum())} feature(s) are not points ({', '.join(kinds)}; "
            f"row(s) {', '.join(rows)}{more}); their representative points (inside each shape) "
            "are used as locations.", DataQualityWarning, stacklevel=4)
        # Computed in the source CRS: it is inside the shape there, and a point stays a
        # point under any transform.
        geoms = geoms.copy()
        geoms[nonpoint] = geoms[nonpoint].representative_point()
    if geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
        try:
            geoms = geoms.to_crs("EPSG:4326")
        except Exception as exc:  # pyproj raises several types; all mean the same here
            raise InvalidInputError(
                f"{name}: cannot transform the geometry from {geoms.crs} to WGS-84 ({exc}).",
                hint="Reproject the file to EPSG:4326 or give lon/lat columns.") from None
    lon = np.full(len(frame), np.nan)
    lat = np.full(len(frame), np.nan)
    if present.any():
        pts = geoms[present]
        lon[present] = pts.x.to_numpy(dtype=float)
        lat[present] = pts.y.to_numpy(dtype=float)
    out = pd.DataFrame(frame.drop(columns=[geom_name]))
    out[lon_col] = lon
    out[lat_col] = lat
    return out


def _to_wgs84(frame: pd.DataFrame, lon_col: str, lat_col: str, system: str) -> pd.DataFrame:
    """Convert the rows whose coordinates are numbers; others stay as read for validation."""
    from territory import coords

    lon, lat = _to_float(frame[lon_col]), _to_float(frame[lat_col])
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return frame
    new_lon, new_lat = coords.convert(lon[ok], lat[ok], system, "wgs84")
    frame = frame.copy(deep=False)
    for col, new in ((lon_col, new_lon), (lat_col, new_lat)):
        if ok.all():
            frame[col] = np.asarray(new, dtype=float)
        else:
            values = frame[col].to_numpy(dtype=object, copy=True)
            values[ok] = np.asarray(new, dtype=float)
            frame[col] = values
    return frame


# ----------------------------------------------------------------------------------------------
# text files


def _read_text(data: bytes | str, name: str, *, encoding: str | None,
               sep: str | None) -> pd.DataFrame:
    text = data if isinstance(data, str) else _decode(data, name, encoding)
    # The same parser as a chunked read, on the text in memory: one set of rules for both.
    return _TextChunks(iter([text]), name, sep, _CHUNK_ROWS).whole()


def _parse_error(name: str, sep: str, message: str) -> InvalidInputError:
    return InvalidInputError(
        f"{name}: cannot be read as a {_sep_name(sep)}-separated table: {message.strip()}.",
        hint="Rows must have as many fields as the header; quote fields that contain the "
             "separator or line breaks (Excel does this when saving as CSV).")


def _sep_name(sep: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}.get(sep, repr(sep))


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header into the most fields, consistently with the
    lines below it (comma when nothing splits: a one-column table)."""
    sample = text[:65536]
    lines = sample.splitlines()
    if len(sample) < len(text) and len(lines) > 1:
        lines = lines[:-1]  # probably cut in the middle
    lines = [ln for ln in lines if ln.strip()][:30]
    best, best_score = ",", (0, 0)
    for sep in (",", "\t", ";", "|"):
        try:
            counts = [len(r) for r in csv.reader(lines, delimiter=sep)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _decode(data: bytes, name: str, encoding: str | None) -> str:
    """Text of a file: the given encoding, else UTF-8 (with or without BOM), else GB18030.

    GB18030 decodes many byte sequences, including UTF-8 Chinese read the wrong way, so a
    file that is partly UTF-8 and partly GBK is refused rather than turned into mojibake.
    """
    if encoding is not None:
        _check_encoding(encoding)
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise _decode_error(data, name, exc.start, f"as {encoding}") from None
    return _detect(data, name)[0]


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InvalidInputError(
            f"encoding={encoding!r} is not a known text encoding.",
            hint="Use e.g. 'utf-8', 'gb18030' (covers GBK and GB2312) or 'big5'.") from None


def _detect(data: bytes, name: str, at: tuple[int, int] = (0, 0)) -> tuple[str, str]:
    """Text and codec of ``data`` by the rules of ``_decode``.

    ``at`` is the byte offset and the number of line feeds before ``data`` in its file (a
    chunked read detects on a sample that may start further down); messages count from there.
    """
    start = at[0] == 0
    if start and data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise _decode_error(data, name, exc.start, "as UTF-16 (it starts with a UTF-16 "
                                "byte-order mark)") from None
    # A BOM is one only at the start of the file.
    utf8 = "utf-8-sig" if start else "utf-8"
    try:
        text = data.decode(utf8)
    except UnicodeDecodeError as exc:
        bad = exc.start
    else:
        if (start and data.startswith(codecs.BOM_UTF8)) or text.isascii() or _WIDE.search(text):
            return text, utf8
        chosen = _utf8_or_gbk(data, text, name, at)
        return chosen, utf8 if chosen is text else "gb18030"
    # Valid UTF-8 before ``bad`` proves nothing by itself (GBK "路" is the UTF-8 of "·");
    # UTF-8 Chinese there does.
    first = _first_utf8_line(data, 0, bad)
    if first:
        raise _decode_error(data, name, bad, f"as UTF-8, though line {at[1] + first} is "
                            "UTF-8: the file mixes encodings", at)
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise _decode_error(data, name, exc.start, "as UTF-8 or GBK/GB18030", at) from None
    line = _first_utf8_line(data, bad, len(data))
    if line:
        raise _decode_error(data, name, bad, f"as UTF-8 (it reads as GBK) while line "
                            f"{at[1] + line} is UTF-8: the file mixes encodings", at)
    _refuse_utf8_latin(data, text, name, at[1] + data.count(b"\n", 0, bad) + 1, at)
    return text, "gb18030"


def _refuse_utf8_latin(data: bytes, gbk_text: str, name: str, gbk_line: int,
                       at: tuple[int, int]) -> None:
    """Refuse a line of UTF-8 accented Latin in a GBK file.

    UTF-8 accented Latin ("Café") is also valid GBK ("Caf茅"): in a file that is GBK
    elsewhere (``gbk_line``) such a line is mixed in or ambiguous, and either guess could be
    mojibake.
    """
    escaped = data.decode("utf-8", "surrogateescape")
    latin = _UTF8_LATIN_LINE.search(escaped)
    if latin:
        line = escaped.count("\n", 0, latin.start())
        gbk = gbk_text.split("\n")[line].strip()
        raise InvalidInputError(
            f"{name}: line {at[1] + line + 1} reads as UTF-8 ({latin.group(0).strip()!r}) and "
            f"as GBK ({gbk!r}), while line {gbk_line} is GBK only: the file mixes encodings, "
            "or that line is ambiguous.",
            hint="Save the file in one encoding (Excel: Save As 'CSV UTF-8'), or pass the "
                 "file's encoding, e.g. encoding='gb18030' or encoding='utf-8'.")


# A character beyond two-byte UTF-8 (CJK among them): proof that valid UTF-8 is UTF-8.
_WIDE = re.compile("[\u0800-\U0010ffff]")
# Non-ASCII other than Latin letters (pinyin tones, European accents).
_NOT_LATIN = re.compile("[^\x00-\x7f\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")


def _utf8_or_gbk(data: bytes, text: str, name: str, at: tuple[int, int] = (0, 0)) -> str:
    """Choose for a file that is valid UTF-8 only in two-byte sequences.

    Short GBK text can be valid UTF-8 by accident: GBK "医" (d2 bd) is UTF-8 "ҽ". When the GBK
    reading is all common Chinese (GB2312) and the UTF-8 reading has something other than
    Latin letters, the file is GBK. When both readings look like text ("Café" or GBK
    "Caf茅"), no guess is safe.
    """
    try:
        gbk = data.decode("gb18030")
        gbk.encode("gb2312")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return text
    if _NOT_LATIN.search(text):
        return gbk
    found = re.search("[^\x00-\x7f]", text)
    line = text.count("\n", 0, found.start() if found else 0)
    utf8_line = text.splitlines()[line]
    gbk_line = gbk.splitlines()[line]
    raise InvalidInputError(
        f"{name}: the text reads both as UTF-8 ({utf8_line!r}) and as GBK ({gbk_line!r}) at "
        f"line {at[1] + line + 1}; which is it?",
        hint="Pass encoding='utf-8' or encoding='gbk', or save the file with Excel as "
             "'CSV UTF-8', which marks it.")


# A whole line of valid UTF-8 whose non-ASCII characters are all accented Latin letters.
_UTF8_LATIN_LINE = re.compile(
    "^[\x00-\x09\x0b-\x7f]*[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]"
    "[\x00-\x09\x0b-\x7f\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]*$", re.MULTILINE)
# A whole line of valid UTF-8 (no escaped byte) holding a character beyond two-byte UTF-8.
_UTF8_WIDE_LINE = re.compile(
    "^[^\n\udc80-\udcff]*[\u0800-\ud7ff\ue000-\U0010ffff][^\n\udc80-\udcff]*$",
    re.MULTILINE)


def _first_utf8_line(data: bytes, start: int, stop: int) -> int:
    """Line number (from 1) of the first line in ``data[start:stop]`` (from the start of the
    line holding ``start``) that is UTF-8 Chinese or other text beyond two-byte UTF-8; 0 when
    none is.

    GBK text almost never forms valid three-byte UTF-8 sequences throughout a line, so such a
    line is good evidence of UTF-8. Bytes that are not UTF-8 decode to lone surrogates, so
    one regex pass over the text finds the line (a line-by-line loop was seconds per 10^6).
    """
    line_start = data.rfind(b"\n", 0, start) + 1
    chunk = data[line_start:stop].decode("utf-8", "surrogateescape")
    found = _UTF8_WIDE_LINE.search(chunk)
    if found is None:
        return 0
    return data.count(b"\n", 0, line_start) + chunk.count("\n", 0, found.start()) + 1


def _decode_error(data: bytes, name: str, offset: int, how: str,
                  at: tuple[int, int] = (0, 0)) -> InvalidInputError:
    """The error for the bytes at ``offset`` in ``data``, which starts ``at`` (byte offset,
    line feeds before) in its file."""
    pos = max(offset, 0)  # < 0: the bytes an incremental decoder held from the block before
    return _decode_error_at(name, at[0] + offset, at[1] + data.count(b"\n", 0, pos) + 1,
                            data[pos:pos + 4].hex(" "), how)


def _decode_error_at(name: str, offset: int, line: int, snippet: str,
                     how: str) -> InvalidInputError:
    return InvalidInputError(
        f"{name}: the bytes at offset {offset} (line {line}: {snippet}) cannot be read {how}.",
        hint="Save the file in one encoding (Excel: Save As 'CSV UTF-8'), or pass the file's "
             "encoding, e.g. encoding='gb18030' or encoding='utf-8'.")


def _finish_table(raw: pd.DataFrame, name: str, first_row: int = 1) -> pd.DataFrame:
    """Header, row labels and empty rows/columns of a table read without a header.

    ``raw`` holds the sheet as read: position ``p`` is spreadsheet row ``p + first_row``.
    """
    blank_row = raw.isna().all(axis=1).to_numpy()
    if blank_row.all():
        raise InvalidInputError(f"{name}: the table is empty.",
                                hint="Give a header row and at least one data row.")
    head = int(np.argmax(~blank_row))
    body = raw.iloc[head + 1:]
    body.index = pd.RangeIndex(head + 1 + first_row, len(raw) + first_row)
    body = body.loc[~blank_row[head + 1:]]
    names: list[str] = []
    keep: list[Any] = []
    for pos, (col, value) in enumerate(raw.iloc[head].items()):
        text = _header_text(value)
        if not text:
            if body[col].isna().all():
                continue  # trailing separators or an empty spreadsheet column
            text = f"column_{pos + 1}"
        names.append(text)
        keep.append(col)
    _refuse_repeated_names(keep, names, name)
    if len(body) == 0:
        raise InvalidInputError(f"{name}: the table has a header but no data rows.",
                                hint="Give at least one data row below the header.")
    body = body[keep]
    body.columns = names
    return body


def _header_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip().removeprefix("\ufeff")


def _refuse_repeated_names(keep: list[Any], names: list[str], name: str) -> None:
    """Refuse a header naming two columns alike; ``keep`` are their positions from 0."""
    seen: dict[str, list[int]] = {}
    for pos, n in zip(keep, names, strict=True):
        seen.setdefault(n, []).append(int(pos) + 1)
    dup = {n: p for n, p in seen.items() if len(p) > 1}
    if dup:
        where = "; ".join(f"{n!r} in columns {', '.join(map(str, p))}" for n, p in dup.items())
        raise InvalidInputError(f"{name}: the header repeats column names: {where}.",
                                hint="Give each column its own name.")


# ----------------------------------------------------------------------------------------------
# chunked reading (see "Large files" in the module docstring)


def _chunks(source: Source, chunk_rows: int | None,
            encoding: str | None) -> _TextChunks | _ParquetChunks | None:
    """The chunked reader for ``source``, or None when it is to be read whole."""
    if chunk_rows is not None and (
            isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer))
            or chunk_rows < 0):
        raise InvalidInputError(
            f"chunk_rows={chunk_rows!r} is not a whole number >= 0.",
            hint="Give the rows per chunk, 0 to read the whole table at once, or None to "
                 "chunk files over 64 MiB.")
    if chunk_rows == 0 or isinstance(source, pd.DataFrame):
        return None
    reader = getattr(source, "read", None)
    if callable(reader):
        if chunk_rows is None:
            return None  # the size of a stream is unknown: chunk only when asked to
        name = _source_name(source)
        return _TextChunks(_stream_texts(reader, name, encoding), name, None, int(chunk_rows))
    path, name, suffix = _checked_path(source)
    if suffix not in _TEXT_EXT and suffix not in _PARQUET_EXT:
        return None
    if chunk_rows is None:
        try:
            if path.stat().st_size <= _AUTO_CHUNK_BYTES:
                return None
        except OSError:
            return None  # the whole read says why
        chunk_rows = _CHUNK_ROWS
    if suffix in _PARQUET_EXT:
        # Geometry columns need geopandas' whole-table reader.
        return None if _is_geoparquet(path) else _ParquetChunks(path, name, int(chunk_rows))
    return _TextChunks(_file_texts(path, name, encoding), name, _TEXT_EXT[suffix],
                       int(chunk_rows))


class _Chunks:
    """Raw tables of a file read in chunks; row labels as for the whole-table read."""

    name: str
    #: Unnamed columns found empty in every chunk, which the whole-table read drops (known
    #: after the last chunk).
    dropped: list[str]
    #: The table's column names as the whole-table read gives them (after the last chunk).
    columns: list[str]

    def __iter__(self) -> Iterator[pd.DataFrame]:
        raise NotImplementedError

    def whole(self) -> pd.DataFrame:
        """All chunks as one table (for small tables, e.g. reps)."""
        frames = list(self)
        frame = frames[0] if len(frames) == 1 else pd.concat(frames)
        return frame.drop(columns=self.dropped) if self.dropped else frame

    def check_mapping(self, columns: Mapping[str, str] | None, kind: str) -> None:
        """Refuse ``columns=`` naming a column the whole-table read would have dropped."""
        bad = [k for k in dict(columns or {}) if k in self.dropped]
        if bad:
            raise _unknown_columns_error(bad, self.columns, self.name, kind)


class _TextChunks(_Chunks):
    """A CSV text as raw tables of at most ``rows`` lines each, headed and labelled as
    ``_read_text`` heads and labels the whole table.

    What needs the whole file waits for the end: a column without a header is kept when it
    holds a value in any chunk (until then it is carried, named as it would be), and an empty
    table, a header without rows, or a header name repeated by such a column are refused
    after the last chunk.
    """

    def __init__(self, texts: Iterator[str], name: str, sep: str | None, rows: int) -> None:
        self.name = name
        self.dropped = []
        self.columns = []
        self._texts = texts
        self._sep = sep
        self._rows = rows

    def __iter__(self) -> Iterator[pd.DataFrame]:
        pieces = iter(self._texts)
        head = ""
        for piece in pieces:
            head += piece if head else piece.removeprefix("\ufeff")
            if head and not head.isspace():
                break
        if not head or head.isspace():
            raise InvalidInputError(f"{self.name}: the file is empty.",
                                    hint="Give a header row and at least one data row.")
        # pandas cannot start on a blank line; skip leading ones but count them for row
        # numbers. Then enough text to sniff the delimiter exactly as on the whole text.
        found = _NOT_BLANK.search(head)
        assert found is not None
        lead = head.count("\n", 0, found.start())
        cut = head.rfind("\n", 0, found.start()) + 1 if lead else 0
        while len(head) - cut <= _SNIFF_CHARS:
            more = next(pieces, None)
            if more is None:
                break
            head += more
        sep = self._sep or _sniff_delimiter(head[cut:cut + _SNIFF_CHARS + 1])
        first_row = lead + 1
        raws = _raw_tables(head, cut, pieces, sep, self._rows, self.name)
        del head
        keep: list[Any] | None = None
        names: list[str] = []
        unnamed: dict[str, str] = {}  # name in the chunks -> name in the table
        real: dict[str, str] = {}
        repeated = False
        filled: set[str] = set()
        rows = 0
        for raw in raws:
            raw.index = raw.index + first_row
            blank = raw.isna().all(axis=1).to_numpy()
            if keep is None:
                if blank.all():
                    continue
                head_pos = int(np.argmax(~blank))
                keep, names, unnamed, real = self._header(raw.iloc[head_pos])
                written = [t for n, t in real.items() if n not in unnamed]
                # A name written twice fails the read after the last chunk (a parse error
                # further down first, as in a whole-table read); no chunk is worth checking.
                repeated = len(set(written)) < len(written)
                raw, blank = raw.iloc[head_pos + 1:], blank[head_pos + 1:]
            body = raw.loc[~blank] if blank.any() else raw
            if len(body) == 0 or repeated:
                continue
            body = body[keep]
            body.columns = names
            filled.update(c for c in unnamed if c not in filled and body[c].notna().any())
            rows += len(body)
            yield body
        if keep is None:
            raise InvalidInputError(f"{self.name}: the table is empty.",
                                    hint="Give a header row and at least one data row.")
        final_keep: list[Any] = []
        for col, n in zip(keep, names, strict=True):
            if n in unnamed and n not in filled:
                self.dropped.append(n)  # trailing separators or an empty spreadsheet column
            else:
                final_keep.append(col)
                self.columns.append(real[n])
        _refuse_repeated_names(final_keep, self.columns, self.name)
        if rows == 0:
            raise InvalidInputError(f"{self.name}: the table has a header but no data rows.",
                                    hint="Give at least one data row below the header.")

    def _header(self, row: pd.Series) -> tuple[list[Any], list[str], dict[str, str],
                                                dict[str, str]]:
        """Columns, their names in the chunks, the unnamed ones among them, and the table's
        name of each column carried under another.

        A column without a header named like a written one is carried under another name
        until the end tells whether it is dropped (fine) or kept (a repeated name). So is the
        second of two columns written alike, though no chunk of such a table is yielded.
        """
        texts = [_header_text(v) for v in row.to_numpy(dtype=object)]
        taken = {t for t in texts if t}
        names: list[str] = []
        unnamed: dict[str, str] = {}
        real: dict[str, str] = {}
        for pos, text in enumerate(texts):
            chunk_name = text or f"column_{pos + 1}"
            if (not text and chunk_name in taken) or chunk_name in names:
                chunk_name = f"{chunk_name} (column {pos + 1})"
            if not text:
                unnamed[chunk_name] = f"column_{pos + 1}"
            real[chunk_name] = text or f"column_{pos + 1}"
            names.append(chunk_name)
        return list(row.index), names, unnamed, real


_NOT_BLANK = re.compile("[^\r\n \t]")
# Numbers in pandas' parser errors: "Expected 3 fields in line 7, saw 4" counts records from 1,
# "EOF inside string starting at row 6" from 0.
_PANDAS_POSITION = re.compile(r"(in line |at row )(\d+)")


def _raw_tables(text: str, start: int, more: Iterator[str], sep: str, rows: int,
                name: str) -> Iterator[pd.DataFrame]:
    """The records of a CSV text from ``text[start:]`` (then ``more``) as raw tables of at
    most ``rows`` lines: cells as text, the index their position from 0.

    Each table is parsed by its own pandas call, cut at a line feed outside quoted fields,
    and each but the first starts with a dummy record as wide as the table, dropped after
    parsing. pandas checks a line's field count against the line before, and its chunked
    reading (``chunksize``, and ``low_memory``'s internal chunks of up to 2**18 rows) skips
    the check on the first line of a chunk: a longer line there loses its extra fields
    without a word, a shorter one makes the next full line an error (pandas issue 11569).
    Here no line but the table's first is ever first.
    """
    buf, pos = text, start
    done = False
    records = 0
    dummy = ""

    def pull() -> bool:
        nonlocal buf, pos, done
        piece = next(more, None)
        if piece is None:
            done = True
            return False
        buf, pos = buf[pos:] + piece, 0
        return True

    while True:
        # The end of the ``rows``-th line from ``pos`` (or of the text).
        end, lines = pos, 0
        while lines < rows:
            nl = buf.find("\n", end)
            if nl >= 0:
                end, lines = nl + 1, lines + 1
                continue
            offset = pos
            if not pull():
                end = len(buf)
                break
            end -= offset
        while True:
            cut = _record_end(buf, pos, end, sep)
            if cut >= 0 or done:
                break
            offset = pos
            if pull():
                end -= offset
        piece = buf[pos:(cut if cut >= 0 else len(buf))]
        pos += len(piece)
        if not piece:
            return
        try:
            raw = pd.read_csv(io.StringIO(dummy + piece), sep=sep, header=None, dtype=str,
                              keep_default_na=False, na_values=list(MISSING_TOKENS),
                              skip_blank_lines=False, quoting=csv.QUOTE_MINIMAL,
                              low_memory=False)
        except (pd.errors.ParserError, ValueError) as exc:
            # pandas counts from the dummy record: count from the table's start instead.
            message = _shifted(str(exc), records - 1) if dummy else str(exc)
            raise _parse_error(name, sep, message) from None
        if dummy:
            raw = raw.iloc[1:]
        else:
            dummy = sep.join(["0"] * raw.shape[1]) + "\n"
        raw.index = pd.RangeIndex(records, records + len(raw))
        records += len(raw)
        yield raw
        if done and pos >= len(buf):
            return


def _shifted(message: str, by: int) -> str:
    """pandas' record numbers in ``message`` moved by ``by``."""
    return _PANDAS_POSITION.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + by}", message)


def _record_end(text: str, start: int, end: int, sep: str) -> int:
    """The first position from ``end`` (just after a line feed, or the end of ``text``) that
    ends a record begun at ``start``: ``end`` itself unless a quoted field is open there;
    -1 when the field runs past the end of ``text``.

    The rules are pandas' (``QUOTE_MINIMAL``, quotes doubled inside quotes): a quote opens a
    field only as its first character; elsewhere it is a character like any other.
    """
    scan = start
    while True:
        opened = _open_quote(text, scan, end, sep)
        if opened < 0:
            return end
        close = _closing_quote(text, opened)
        if close < 0:
            return -1
        nl = text.find("\n", close + 1)
        if nl < 0:
            return -1
        scan, end = opened, nl + 1


def _open_quote(text: str, start: int, stop: int, sep: str) -> int:
    """Position of the quote of a field still open at ``stop`` (-1: none), scanning from
    ``start``, where a field begins."""
    i = text.find('"', start, stop)
    while i >= 0:
        if i == start or text[i - 1] in (sep, "\n", "\r"):
            close = _closing_quote(text, i)
            if close < 0 or close >= stop:
                return i
            i = text.find('"', close + 1, stop)
        else:
            i = text.find('"', i + 1, stop)
    return -1


def _closing_quote(text: str, opened: int) -> int:
    """Position of the quote closing the field opened at ``opened``; -1 if ``text`` ends
    first (a quote at the very end may be the first of a doubled pair: unknown yet)."""
    j = opened + 1
    while True:
        j = text.find('"', j)
        if j < 0 or j + 1 >= len(text):
            return -1
        if text[j + 1] != '"':
            return j
        j += 2


def _file_texts(path: Path, name: str, encoding: str | None) -> Iterator[str]:
    """The decoded text of a file, block by block."""
    try:
        with path.open("rb") as f:
            yield from _decoded(_line_blocks(f.read), name, encoding)
    except OSError as exc:
        raise InvalidInputError(f"{name}: cannot be read ({exc}).") from None


def _stream_texts(read: Callable[[int], Any], name: str,
                  encoding: str | None) -> Iterator[str]:
    """The text of a file object, block by block (decoded when it gives bytes)."""
    first = read(_BLOCK_BYTES)
    if isinstance(first, str):
        if first:
            yield first
        yield from iter(lambda: read(_BLOCK_BYTES), "")
    else:
        yield from _decoded(_line_blocks(read, first), name, encoding)


def _line_blocks(read: Callable[[int], bytes], first: bytes = b"") -> Iterator[bytes]:
    """The bytes of a file in blocks of about ``_BLOCK_BYTES``, each ending after a line feed
    (but the last).

    UTF-8, GBK/GB18030 and other ASCII-based encodings never use the byte 0x0a inside a
    character, so each block decodes on its own and an error's offset is exact.
    """
    carry = first
    while True:
        data = read(_BLOCK_BYTES)
        if not data:
            break
        carry += data
        cut = carry.rfind(b"\n") + 1
        if cut:
            yield carry[:cut]
            carry = carry[cut:]
    if carry:
        yield carry


def _decoded(blocks: Iterator[bytes], name: str, encoding: str | None) -> Iterator[str]:
    """The text of a file given as line blocks, decoded as ``_decode`` decodes it whole.

    With ``encoding=`` or a UTF-16 byte-order mark the codec is known. Otherwise ASCII blocks
    pass as they are (they read alike in UTF-8 and GBK) until the first block that is not
    ASCII; the codec is chosen by ``_detect`` on a sample of ``_HEAD_BYTES`` from there, then
    every later block is decoded with it and checked as ``_detect`` checks the whole file: a
    byte that does not decode is an error at its offset and line, and so is a UTF-8 line in
    a file read as GBK (GB18030 would turn it into mojibake without complaint).
    """
    if encoding is not None:
        _check_encoding(encoding)
    offset = lines = 0
    first = next(blocks, b"")
    blocks = itertools.chain([first], blocks)
    codec = encoding
    how = f"as {encoding}"
    if codec is None and first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec, how = "utf-16", "as UTF-16 (it starts with a UTF-16 byte-order mark)"
    if codec is not None:
        decoder = codecs.getincrementaldecoder(codec)("strict")
        for block in itertools.chain(blocks, [b""]):
            held = decoder.getstate()[0]
            try:
                text = decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                if not block:  # the file ends inside a character
                    block = held
                    offset, lines = offset - len(held), lines - held.count(b"\n")
                    held = b""
                raise _decode_error(block, name, exc.start - len(held), how,
                                    (offset, lines)) from None
            offset, lines = offset + len(block), lines + block.count(b"\n")
            if text:
                yield text
        return
    chosen: str | None = None
    utf8_line = 0  # first line of UTF-8 beyond two bytes (0: none yet)
    gbk_at = (0, 0, "")  # offset, line and bytes of the first evidence of GBK
    for block in blocks:
        if chosen is None:
            if block.isascii():
                text = block.decode("ascii")
            else:
                sample = [block]
                size = len(block)
                while size < _HEAD_BYTES:
                    more = next(blocks, None)
                    if more is None:
                        break
                    sample.append(more)
                    size += len(more)
                block = b"".join(sample)
                del sample
                text, chosen = _detect(block, name, (offset, lines))
                if chosen != "gb18030":
                    found = _first_utf8_line(block, 0, len(block))
                    utf8_line = lines + found if found else 0
                else:
                    try:
                        block.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        at = exc.start
                    else:  # valid UTF-8 taken for GBK: its first non-ASCII byte is the evidence
                        at = next(i for i, b in enumerate(block) if b >= 0x80)
                    gbk_at = (offset + at, lines + block.count(b"\n", 0, at) + 1,
                              block[at:at + 4].hex(" "))
        elif chosen == "gb18030":
            try:
                text = block.decode("gb18030")
            except UnicodeDecodeError as exc:
                raise _decode_error(block, name, exc.start, "as UTF-8 or GBK/GB18030",
                                    (offset, lines)) from None
            if not block.isascii():
                found = _first_utf8_line(block, 0, len(block))
                if found:
                    raise _decode_error_at(name, *gbk_at, f"as UTF-8 (it reads as GBK) while "
                                           f"line {lines + found} is UTF-8: the file mixes "
                                           "encodings")
                _refuse_utf8_latin(block, text, name, gbk_at[1], (offset, lines))
        else:
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError as exc:
                found = utf8_line
                if not found:
                    here = _first_utf8_line(block, 0, exc.start)
                    found = lines + here if here else 0
                how = (f"as UTF-8, though line {found} is UTF-8: the file mixes encodings"
                       if found else "as UTF-8, the encoding of the lines before it: the "
                       "file mixes encodings")
                raise _decode_error(block, name, exc.start, how, (offset, lines)) from None
            if not utf8_line and not block.isascii():
                found = _first_utf8_line(block, 0, len(block))
                utf8_line = lines + found if found else 0
        offset, lines = offset + len(block), lines + block.count(b"\n")
        if text:
            yield text


def _is_geoparquet(path: Path) -> bool:
    import pyarrow.parquet as pq

    try:
        return b"geo" in (pq.read_schema(path).metadata or {})
    except Exception:  # unreadable: the whole-table read reports it
        return False


class _ParquetChunks(_Chunks):
    """A Parquet file in batches of at most ``rows`` rows, as ``_read_parquet`` reads it whole
    (row labels are positions from 0)."""

    def __init__(self, path: Path, name: str, rows: int) -> None:
        self.name = name
        self.dropped = []
        self.columns = []
        self._path = path
        self._rows = rows

    def __iter__(self) -> Iterator[pd.DataFrame]:
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(self._path)
            floats = _int_columns_with_nulls(pf)
            batches = pf.iter_batches(batch_size=self._rows)
        except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
            raise self._error(exc) from None
        start = 0
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    break
                frame = _batch_frame(batch, floats)
            except Exception as exc:
                raise self._error(exc) from None
            if frame.index.name is not None or any(n is not None for n in frame.index.names[1:]):
                frame = frame.reset_index()  # a named index is data (often the id): keep it
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            self.columns = [str(c) for c in frame.columns]
            if len(frame):
                yield frame
        if start == 0:
            raise InvalidInputError(f"{self.name}: the table has no rows.")

    def _error(self, exc: Exception) -> InvalidInputError:
        return InvalidInputError(f"{self.name}: cannot be read as Parquet ({exc}).")


def _int_columns_with_nulls(pf: Any) -> set[str]:
    """Integer columns with a null anywhere in the file.

    pandas gives such a column as float64 in a whole-table read but as int64 in a batch
    without nulls; casting it in every batch keeps each value's type (and so the text of an
    error) as in the whole read. The row-group statistics count the nulls; a column without
    them is read on its own.
    """
    import pyarrow as pa

    meta = pf.metadata
    where = {meta.schema.column(j).path: j for j in range(meta.num_columns)}
    out: set[str] = set()
    for field in pf.schema_arrow:
        if not pa.types.is_integer(field.type) or field.name not in where:
            continue
        j = where[field.name]
        nulls = 0
        for g in range(meta.num_row_groups):
            stats = meta.row_group(g).column(j).statistics
            if stats is None or not stats.has_null_count:
                nulls = pf.read(columns=[field.name]).column(0).null_count
                break
            nulls += stats.null_count
        if nulls:
            out.add(field.name)
    return out


def _batch_frame(batch: Any, floats: set[str]) -> pd.DataFrame:
    import pyarrow as pa

    if floats:
        schema = batch.schema
        arrays = [batch.column(i).cast(pa.float64()) if f.name in floats else batch.column(i)
                  for i, f in enumerate(schema)]
        fields = [f.with_type(pa.float64()) if f.name in floats else f for f in schema]
        batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, schema.metadata))
    frame: pd.DataFrame = batch.to_pandas()
    return frame


# ----------------------------------------------------------------------------------------------
# Excel


def _read_excel(path: Path, name: str, sheet: int | str) -> pd.DataFrame:
    if path.suffix.lower() == ".xls":
        rows = _xls_rows(path, name, sheet)
    else:
        rows = _xlsx_rows(path, name, sheet)
    if not rows:
        raise InvalidInputError(f"{name}: sheet {sheet!r} is empty.",
                                hint="Give a header row and at least one data row.")
    width = max(len(r) for r in rows)
    cells = [[_cell_text(v) for v in r] + [None] * (width - len(r)) for r in rows]
    raw = pd.DataFrame(cells, dtype=object)
    return _finish_table(raw, f"{name} [sheet {sheet!r}]")


def _xlsx_rows(path: Path, name: str, sheet: int | str) -> list[tuple[Any, ...]]:
    import zipfile

    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InvalidInputError(f"{name}: cannot be read as an Excel workbook ({exc}).",
                                hint="Check that the file is an .xlsx saved by Excel.") from None
    try:
        names = wb.sheetnames
        if isinstance(sheet, int) and not isinstance(sheet, bool) and 0 <= sheet < len(names):
            ws = wb.worksheets[sheet]
        elif isinstance(sheet, str) and sheet in names:
            ws = wb[sheet]
        else:
            raise InvalidInputError(f"{name}: no sheet {sheet!r}; its sheets are {names}.",
                                    hint="Pass sheet= as a position from 0 or a name.")
        # Workbooks written by other tools often carry wrong dimensions; read what is there.
        ws.reset_dimensions()
        return [tuple(r) for r in ws.iter_rows(min_row=1, min_col=1, values_only=True)]
    finally:
        wb.close()


def _xls_rows(path: Path, name: str, sheet: int | str) -> list[tuple[Any, ...]]:
    try:
        raw = pd.read_excel(path, sheet_name=sheet, header=None, dtype=object)
    except ImportError:
        raise InvalidInputError(
            f"{name}: reading the old .xls format needs the xlrd package.",
            hint="pip install xlrd, or save the workbook as .xlsx.") from None
    except Exception as exc:  # xlrd raises its own types for every kind of damage
        raise InvalidInputError(f"{name}: cannot be read as an .xls workbook ({exc}).") from None
    # read_excel drops empty leading rows; the spreadsheet's numbering is lost in that case.
    values = raw.astype(object).where(raw.notna(), None).to_numpy()
    return [tuple(r) for r in values]


def _cell_text(v: Any) -> str | None:
    """An Excel cell as the text a user would see typed (``None`` when missing)."""
    if v is None:
        return None
    if isinstance(v, str):
        return None if v in MISSING_TOKENS else v  # exactly as for CSV cells
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return None
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(v, dt.datetime):
        # Excel has no date type: a date is a datetime at midnight.
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.time):
        return v.strftime("%H:%M") if not v.second else v.strftime("%H:%M:%S")
    if isinstance(v, dt.date):
        return v.isoformat()
    return str(v)


# ----------------------------------------------------------------------------------------------
# Parquet and spatial formats


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(path).metadata or {}
        if b"geo" in meta:
            import geopandas as gpd

            frame: pd.DataFrame = gpd.read_parquet(path)
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise InvalidInputError(f"{name}: cannot be read as Parquet ({exc}).") from None
    if frame.index.name is not None or any(n is not None for n in frame.index.names[1:]):
        frame = frame.reset_index()  # a named index is data (often the id): keep it
    frame.index = pd.RangeIndex(len(frame))
    if len(frame) == 0:
        raise InvalidInputError(f"{name}: the table has no rows.")
    return frame


def _read_spatial(path: Path, name: str, *, layer: str | int | None, encoding: str | None,
                  prefer_layer: str | None) -> pd.DataFrame:
    import pyogrio

    try:
        layers = [str(row[0]) for row in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio.errors.DataSourceError and GDAL's own
        raise InvalidInputError(f"{name}: cannot be read as a spatial file ({exc}).",
                                hint="Check that the file is complete and of its type.") from None
    if layer is None:
        if len(layers) > 1:
            if prefer_layer not in layers:
                raise InvalidInputError(
                    f"{name}: has several layers {layers}; which one to read?",
                    hint="Pass layer='name'.")
            layer = prefer_layer
    elif (isinstance(layer, str) and layer not in layers) or (
            isinstance(layer, int) and not 0 <= layer < len(layers)):
        raise InvalidInputError(f"{name}: no layer {layer!r}; its layers are {layers}.",
                                hint="Pass layer= as one of these names or a position from 0.")
    # GDAL would turn GeoJSON strings such as "08:30" into times; keep the text as written.
    options = {"DATE_AS_STRING": "YES"} if path.suffix.lower() in (".geojson", ".json") else {}
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, encoding=encoding, fid_as_index=True,
                                       **options)
    except Exception as exc:
        raise InvalidInputError(f"{name}: cannot be read ({exc}).") from None
    if len(frame) == 0:
        raise InvalidInputError(f"{name}: the layer has no features.",
                                hint="Give at least one feature.")
    frame.index.name = None
    return frame


# ----------------------------------------------------------------------------------------------
# writing


def _export_frame(table: pd.DataFrame | Accounts | Reps) -> pd.DataFrame:
    """The frame to write: reps' clock columns as ``"HH:MM"`` (a bare number in a text file
    would read back as a clock time, ``510`` as 05:10)."""
    if isinstance(table, Reps):
        frame = table.frame.copy()
        for col in _CLOCK_COLUMNS:
            frame[col] = [format_clock(m) for m in frame[col].to_numpy()]
        return frame
    if isinstance(table, Accounts):
        return table.frame
    if isinstance(table, pd.DataFrame):
        return table
    raise InvalidInputError(f"Cannot write a {type(table).__name__}; give a DataFrame, "
                            "Accounts or Reps.")


def _write(table: Accounts | Reps, path: str | os.PathLike[str], kind: _Kind,
           lonlat: tuple[str, str]) -> Path:
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix in (".csv", ".txt", ".tsv"):
        return write_csv(table, out, sep="\t" if suffix == ".tsv" else ",")
    frame = _export_frame(table)
    try:
        if suffix in (".xlsx", ".xlsm"):
            _write_xlsx(frame, out, kind)
        elif suffix in (".gpkg", ".geojson", ".json"):
            import geopandas as gpd

            gdf = gpd.GeoDataFrame(
                frame, geometry=gpd.points_from_xy(frame[lonlat[0]], frame[lonlat[1]]),
                crs="EPSG:4326")
            if suffix == ".gpkg":
                gdf.to_file(out, driver="GPKG", layer=kind, engine="pyogrio")
            else:
                if out.exists():
                    out.unlink()  # the GeoJSON driver refuses to overwrite
                gdf.to_file(out, driver="GeoJSON", engine="pyogrio")
        elif suffix == ".parquet":
            frame.to_parquet(out, index=False)
        elif suffix == ".shp":
            raise InvalidInputError(
                f"{out}: shapefiles cut column names to 10 characters, so the {kind} would "
                "not read back as written.", hint="Write .gpkg instead.")
        else:
            raise InvalidInputError(
                f"{out}: unsupported file type {suffix or '(no extension)'!r}.",
                hint="Use .csv, .tsv, .txt, .xlsx, .gpkg, .geojson, .json or .parquet.")
    except InvalidInputError:
        raise
    except Exception as exc:  # OSError, pyarrow, GDAL, openpyxl: all mean "cannot write"
        raise InvalidInputError(f"{out}: cannot write the {kind} ({exc}).") from None
    return out


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str) -> None:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append([str(c) for c in frame.columns])
    cols = []
    for c in frame.columns:
        values = frame[c].to_numpy(dtype=object)
        cols.append([None if (isinstance(v, float) and math.isnan(v)) or v is None
                     else (v.item() if isinstance(v, np.generic) else v) for v in values])
    for row in zip(*cols, strict=True):
        # A text starting with "=" would become a formula: keep it text.
        ws.append([_text_cell(ws, v, WriteOnlyCell) if isinstance(v, str) and v.startswith("=")
                   else v for v in row])
    wb.save(path)


def _text_cell(ws: Any, value: str, cell_type: Any) -> Any:
    cell = cell_type(ws, value=value)
    cell.data_type = "s"
    return cell
