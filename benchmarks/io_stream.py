"""Reading large account tables whole or in chunks: time and peak memory, side by side.

For each size, the synthetic China accounts (``synth.china_scenario(n, seed).accounts``) are
written with ``territory.io.write_accounts`` as CSV (UTF-8 with BOM) and as Parquet to a
temporary directory, then read back with ``territory.io.read_accounts`` twice per format:

==========  ==========================================================================
whole       ``chunk_rows=0``: the file's bytes, its text and a table of strings at once,
            then one validation over the whole table (the path of files up to 64 MiB)
chunked     ``chunk_rows=--chunk-rows`` (50,000, the size chosen above 64 MiB): decoded,
            parsed and validated chunk by chunk, keeping only the validated columns
==========  ==========================================================================

Each write and each read runs in its own subprocess, so its peak memory is its own: the peak
resident set of that process, sampled every 20 ms by a thread (tracemalloc would miss numpy
and Arrow buffers), and its RSS before the read (the interpreter and imports) for scale. Each
read also hashes its result (after the measurement), and the table says whether the chunked
read gave the very accounts the whole read gave. One CSV row per format, size and path, with
the ratios chunked / whole.

    python benchmarks/io_stream.py --sizes 100000,1000000 --out benchmarks/results/io_stream.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from scale import PeakRSS  # noqa: E402  (one memory sampler for the benchmarks)

GIB = 1024.0 ** 3
FORMATS = ("csv", "parquet")
PATHS = ("whole", "chunked")


# ---------------------------------------------------------------------------------------------
# child processes


def write_files(n: int, seed: int, folder: Path) -> dict[str, Any]:
    """Write the synthetic accounts as CSV and Parquet; their sizes in MiB."""
    from territory import synth
    from territory.io import write_accounts

    accounts = synth.china_scenario(n, seed=seed).accounts
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        path = write_accounts(accounts, folder / f"accounts_{n}.{fmt}")
        out[fmt] = path.stat().st_size / 2**20
    return out


def read_file(path: Path, chunk_rows: int) -> dict[str, Any]:
    """Read the accounts once: seconds, peak and starting RSS, and a hash of the result."""
    from territory.io import read_accounts

    meter = PeakRSS()
    base = meter.current()
    start = time.perf_counter()
    accounts = read_accounts(path, chunk_rows=chunk_rows)
    seconds = time.perf_counter() - start
    peak = meter.peak()
    meter.close()
    # Outside the measurement: what the two paths must agree on.
    digest = int(pd.util.hash_pandas_object(accounts.frame, index=True).sum())
    digest ^= hash((tuple(str(p) for p in accounts.hours_profiles),
                    accounts.hours_code.tobytes()))
    return {"time_s": seconds, "peak_rss_gib": peak / GIB, "base_rss_gib": base / GIB,
            "rows": len(accounts), "digest": str(digest)}


def child(args: list[str]) -> dict[str, Any]:
    """Run ``python io_stream.py <args> --json <file>`` and return what it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        tmp = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, "--json", str(tmp)]
    try:
        # A fixed hash seed: the digests of the two reads are compared across processes.
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONHASHSEED": "0"})
        if proc.returncode != 0 or tmp.stat().st_size == 0:
            return {"error": f"exit {proc.returncode}"}
        result: dict[str, Any] = json.loads(tmp.read_text())
        return result
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# the run


def run(sizes: list[int], seed: int, chunk_rows: int, folder: Path) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for n in sizes:
        print(f"n = {n:,}: writing", file=sys.stderr, flush=True)
        sizes_mib = child(["--write", str(n), "--seed", str(seed), "--dir", str(folder)])
        for fmt in FORMATS:
            path = folder / f"accounts_{n}.{fmt}"
            for how in PATHS:
                rows_arg = "0" if how == "whole" else str(chunk_rows)
                print(f"n = {n:,}: {fmt} {how}", file=sys.stderr, flush=True)
                result = child(["--read", str(path), "--chunk-rows", rows_arg])
                rows.append({"format": fmt, "accounts": n, "path": how,
                             "chunk_rows": int(rows_arg),
                             "file_mib": sizes_mib.get(fmt, float("nan")), **result})
            path.unlink(missing_ok=True)
    frame = pd.DataFrame(rows)
    for col in ("time_s", "peak_rss_gib", "base_rss_gib", "rows"):
        if col not in frame:
            frame[col] = float("nan")
    whole = frame[frame["path"] == "whole"].set_index(["format", "accounts"])
    key = pd.MultiIndex.from_frame(frame[["format", "accounts"]])
    frame["time_ratio"] = frame["time_s"].to_numpy() / whole["time_s"].reindex(key).to_numpy()
    frame["rss_ratio"] = (frame["peak_rss_gib"].to_numpy()
                          / whole["peak_rss_gib"].reindex(key).to_numpy())
    if "digest" in frame:
        frame["same_result"] = (frame["digest"].to_numpy()
                                == whole["digest"].reindex(key).to_numpy())
    return frame


def print_table(frame: pd.DataFrame) -> None:
    print("| format | accounts | file | path | time | peak RSS | RSS before | time ratio | "
          "RSS ratio | same result |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for r in frame.itertuples(index=False):
        print(f"| {r.format} | {r.accounts:,} | {r.file_mib:.0f} MiB | {r.path} | "
              f"{r.time_s:.1f} s | {r.peak_rss_gib:.2f} GiB | {r.base_rss_gib:.2f} GiB | "
              f"{r.time_ratio:.2f} | {r.rss_ratio:.2f} | "
              f"{'yes' if getattr(r, 'same_result', False) else 'NO'} |")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000", help="accounts, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-rows", type=int, default=50_000,
                    help="rows per chunk on the chunked path (0 on the whole path)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "io_stream.csv")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the files are written (a temporary directory by default)")
    ap.add_argument("--write", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--read", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.write is not None:
        args.json.write_text(json.dumps(write_files(args.write, args.seed, args.dir)))
        return 0
    if args.read is not None:
        args.json.write_text(json.dumps(read_file(args.read, args.chunk_rows)))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.dir is None:
        with tempfile.TemporaryDirectory(prefix="io_stream_") as tmp:
            frame = run(sizes, args.seed, args.chunk_rows, Path(tmp))
    else:
        args.dir.mkdir(parents=True, exist_ok=True)
        frame = run(sizes, args.seed, args.chunk_rows, args.dir)
    print_table(frame)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cols = ["format", "accounts", "path", "time_s", "peak_rss_gib", "time_ratio", "rss_ratio",
            "base_rss_gib", "chunk_rows", "file_mib", "rows", "same_result"]
    frame[[c for c in cols if c in frame]].to_csv(args.out, index=False, float_format="%.4g")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
