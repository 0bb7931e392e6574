"""The whole pipeline at scale: time and peak memory per stage, 10^3 to 10^6 accounts.

Targets (issue 6, and issue 3's scale points), on 2 cores: **10^5 accounts end to end
(partition + 4-week routes for every rep) < 15 min; 10^6 accounts partitioned < 10 min and
< 8 GiB**; the cost of each stage growing no worse than n log n past 10^4.

The synthetic China scenario with ``n / 200`` reps (about 200 accounts per territory, as the
issue asks; the scenario's own sizing would give about 60). Stages, each timed with its peak
resident memory (RSS of this process and all its children, sampled every 20 ms by a thread:
tracemalloc would miss numpy, OR-Tools and worker processes):

==========  ===========================================================================
generate    ``synth.china_scenario`` (not part of a user's pipeline; shown for scale)
write       accounts and reps written to Parquet (or CSV) with ``territory.io``
read        the files read back as raw tables (``io.read_table``)
validate    ``io.read_accounts`` / ``read_reps`` on the tables: column mapping, checks, defaults
travel      the travel model over all accounts: estimated workload (local density, area
            types) and the sparse 10-nearest-neighbour travel graph (``TravelModel.knn``)
partition   ``alignment.partition`` (aggregation into at most 25,000 basic units above that,
            the engine, assignment back to accounts, account-level metrics)
route       ``routes.plan_routes``: every rep's 4-week call cycle, ``--route-time`` s per rep,
            on ``--workers`` processes (``--backend local``) or a Dask ``LocalCluster``
report      plan summary, account-level metrics, assignment / territory / schedule / rep CSVs
            and the territory polygons as a GeoPackage
==========  ===========================================================================

Each size runs in its own subprocess, so its peak memory is its own. One CSV row per size
and stage (plus ``partition_other``, the partition's time less the engine's search, which runs
to its limit, and a ``total`` row without ``generate``); a log-log plot of time against
accounts per stage with an ``n log n`` reference line. The exponent of each stage is the slope
of log time on log n over the sizes from 10^4 up. Routes are skipped above ``--route-max-n``
(10^5): the 10^6 target is partition-only.

    # the curve as recorded in benchmarks/README.md (about 15 min on 2 idle cores):
    python benchmarks/scale.py --sizes 1000,10000,100000 --time-limit 120 --route-time 0.5 \
        --workers 2 --out benchmarks/results/scale.csv
    python benchmarks/scale.py --sizes 1000000 --time-limit 300 \
        --out benchmarks/results/scale_1e6.csv
    python benchmarks/scale.py --plot-from benchmarks/results/scale.csv \
        benchmarks/results/scale_1e6.csv --out benchmarks/results/scale.csv   # table + PNG
    # the same with routes on a Dask LocalCluster instead of the local process pool:
    python benchmarks/scale.py --sizes 10000,100000 --backend dask --workers 2 \
        --time-limit 120 --route-time 0.5 --out benchmarks/results/scale_dask.csv
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

STAGES = ("generate", "write", "read", "validate", "travel", "partition", "route", "report")
#: Reported too: the partition's time less the engine's search (which runs to its limit).
DERIVED = ("partition_other",)
GIB = 1024.0 ** 3


# ---------------------------------------------------------------------------------------------
# memory sampling


class PeakRSS:
    """Peak RSS (bytes) of this process and all its descendants, sampled by a daemon thread."""

    def __init__(self, interval_s: float = 0.02) -> None:
        import psutil

        self._proc = psutil.Process()
        self._interval = interval_s
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def current(self) -> int:
        import psutil

        total = 0
        try:
            procs = [self._proc, *self._proc.children(recursive=True)]
        except psutil.Error:
            procs = [self._proc]
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.current()
            with self._lock:
                self._peak = max(self._peak, rss)
            self._stop.wait(self._interval)

    def reset(self) -> int:
        """Start a new window; returns the RSS now."""
        rss = self.current()
        with self._lock:
            self._peak = rss
        return rss

    def peak(self) -> int:
        rss = self.current()
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# one size (runs in a child process)


def _executor(backend: str, workers: int) -> tuple[Any, Any, str]:
    """(executor, closer, note) for the route stage."""
    if backend == "local":
        from territory.executor import LocalExecutor

        return LocalExecutor(workers=workers), None, ""
    import territory.executor as ex

    if not hasattr(ex, "DaskExecutor"):
        raise RuntimeError("territory.executor.DaskExecutor is not available in this checkout")
    executor = ex.DaskExecutor(n_workers=workers, dashboard_address=None)
    return executor, executor.close, f"dask LocalCluster {workers} workers"


def run_size(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run the chosen stages at ``n`` accounts; one row per stage."""
    from territory import io, synth
    from territory.errors import DataQualityWarning
    from territory.model import Scenario

    warnings.simplefilter("ignore", DataQualityWarning)
    stages = set(args.stages.split(","))
    unknown = stages - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
    mem = PeakRSS()
    rows: list[dict[str, Any]] = []
    n_reps = max(1, round(n / args.accounts_per_rep))
    base = {"accounts": n, "reps": n_reps, "seed": args.seed, "backend": args.backend,
            "workers": args.workers}

    @contextmanager
    def stage(name: str, detail: dict[str, Any]):  # type: ignore[no-untyped-def]
        start_rss = mem.reset()
        t = time.perf_counter()
        yield
        elapsed = time.perf_counter() - t
        row = {**base, "stage": name, "time_s": elapsed, "peak_rss_gib": mem.peak() / GIB,
               "start_rss_gib": start_rss / GIB, "detail": detail}  # filled in after
        rows.append(row)
        print(f"  n={n:>9,} {name:<10} {elapsed:9.2f} s  peak {row['peak_rss_gib']:6.2f} GiB",
              file=sys.stderr, flush=True)

    d: dict[str, Any] = {}
    with stage("generate", d):
        scenario = synth.china_scenario(n_accounts=n, n_reps=n_reps, seed=args.seed)
    d["reps"] = len(scenario.reps)
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        folder = Path(tmp)
        acc_path = folder / f"accounts.{args.io_format}"
        rep_path = folder / f"reps.{args.io_format}"
        d = {"format": args.io_format}
        with stage("write", d):
            io.write_accounts(scenario.accounts, acc_path)
            io.write_reps(scenario.reps, rep_path)
        d["accounts_mb"] = round(acc_path.stat().st_size / 1e6, 1)
        d = {}
        with stage("read", d):
            acc_table = io.read_table(acc_path)
            rep_table = io.read_table(rep_path)
        d = {}
        with stage("validate", d):
            accounts = io.read_accounts(acc_table, allow_outside_china=True)
            reps = io.read_reps(rep_table, allow_outside_china=True)
            scenario = Scenario(accounts=accounts, reps=reps, calendar=scenario.calendar,
                                travel=scenario.travel, name=scenario.name)
        del acc_table, rep_table
        d["accounts"] = len(accounts)

        if "travel" in stages:
            from territory.workload import estimate_workload

            d = {}
            with stage("travel", d):
                work = estimate_workload(accounts, scenario.calendar, scenario.travel)
                km, minutes = scenario.travel.knn(accounts.lonlat, k=10)
            d["workload_h"] = round(float(work.total_min.sum()) / 60.0)
            d["knn_nnz"] = int(minutes.nnz)
            del km, minutes, work

        plan = None
        if "partition" in stages:
            from territory.alignment import partition

            max_units = args.max_units or 20 * len(scenario.reps)
            d = {"max_units": max_units, "measures": args.measures}
            with stage("partition", d):
                plan = partition(scenario, time_limit_s=args.time_limit, max_units=max_units,
                                 seed=args.seed, measures=args.measures.split(","))
            t = plan.territories
            d.update({
                "feasible": bool(plan.feasible),
                "maxdev_pct": {m: round(100 * v, 1) for m, v in plan.max_deviation().items()},
                "contiguous": f"{int(t['contiguous'].sum())}/{len(t)}",
                "within": "{}/{}".format(int(np.all([
                    (t[f"{m}_dev"].abs() <= tl + 1e-9).to_numpy()
                    for m, tl in zip(plan.measure_names, plan.tolerance, strict=True)],
                    axis=0).sum()), len(t)),
                "notes": list(plan.notes),
            })
            if plan.engine is not None:
                e = plan.engine
                d.update({"units": len(e.assignment), "engine_s": round(e.runtime_s, 1),
                          "engine_stop": e.stop_reason, "engine_starts": e.n_starts,
                          "engine_feasible": bool(e.feasible)})
                # The engine searches until its limit, so the partition's time is the limit;
                # what scales with n is the rest (units, graphs, targets, account metrics).
                part = rows[-1]
                rows.append({**part, "stage": "partition_other",
                             "time_s": part["time_s"] - e.runtime_s,
                             "detail": {"what": "partition time less the engine's search"}})

        routes = None
        if "route" in stages and plan is not None:
            from territory.routes import plan_routes

            executor, close, note = None, None, ""
            d = {}
            try:
                executor, close, note = _executor(args.backend, args.workers)
            except Exception as exc:  # report, do not fail the other stages
                d["error"] = f"backend {args.backend} not available: {exc}"
                print(f"  {d['error']}", file=sys.stderr)
            if executor is not None:
                with stage("route", d):
                    routes = plan_routes(plan, time_limit_s=args.route_time, seed=args.seed,
                                         workers=args.workers, executor=executor)
                if close is not None:
                    close()
                r = routes.reps
                w = r["simulated_workload_h"]
                d.update({
                    "backend": note or f"local pool {args.workers} workers",
                    "reps_planned": len(r), "failed": len(routes.failed),
                    "visits_served": int(r["visits_served"].sum()),
                    "visits_required": int(r["visits_required"].sum()),
                    "served_pct": round(100 * r["visits_served"].sum()
                                        / max(r["visits_required"].sum(), 1), 1),
                    "sim_h_mean": round(float(w.mean()), 1),
                    "sim_h_min": round(float(w.min()), 1), "sim_h_max": round(float(w.max()), 1),
                    "utilisation_mean_pct": round(100 * float(r["utilisation"].mean()), 1),
                    "km": round(float(r["km"].sum())),
                })
            else:
                rows.append({**base, "stage": "route", "time_s": float("nan"),
                             "peak_rss_gib": float("nan"), "start_rss_gib": float("nan"),
                             "detail": d})

        if "report" in stages and plan is not None:
            from territory import metrics, reports

            d = {}
            out = folder / "out"
            out.mkdir()
            with stage("report", d):
                summary = plan.summary()
                measures = {"count": np.ones(len(accounts)), "potential": accounts.potential}
                table = metrics.evaluate_assignment(accounts.lonlat, plan.rep_of_account,
                                                    measures)
                reports.write_assignment_csv(plan.assignment_frame(), out / "assignment.csv")
                io.write_csv(plan.territories, out / "territories.csv")
                io.write_csv(table, out / "evaluation.csv")
                if routes is not None:
                    io.write_csv(routes.schedule, out / "schedule.csv")
                    io.write_csv(routes.reps, out / "reps.csv")
                    routes.summary()
                polygons = reports.territory_polygons(accounts.lonlat, plan.territory)
                reports.write_geo(polygons, out / "territories.gpkg", layer="territories")
            d["lines"] = len(summary.splitlines())
            d["mb"] = round(sum(p.stat().st_size for p in out.iterdir()) / 1e6, 1)
    mem.close()
    for r in rows:
        r["detail"] = json.dumps(r["detail"], default=str)
    total_t = sum(r["time_s"] for r in rows if r["stage"] not in ("generate", "partition_other")
                  and np.isfinite(r["time_s"]))
    rows.append({**base, "stage": "total", "time_s": total_t,
                 "peak_rss_gib": max(r["peak_rss_gib"] for r in rows
                                     if np.isfinite(r["peak_rss_gib"])),
                 "start_rss_gib": float("nan"), "detail": json.dumps({"excludes": "generate"})})
    return rows


# ---------------------------------------------------------------------------------------------
# driver


def exponents(frame: pd.DataFrame, from_n: int = 10_000) -> dict[str, float]:
    """Per stage, the slope of log(time) on log(n) over sizes >= ``from_n``."""
    out = {}
    for name, g in frame[frame["accounts"] >= from_n].groupby("stage"):
        g = g[np.isfinite(g["time_s"]) & (g["time_s"] > 0)]
        if g["accounts"].nunique() >= 2:
            out[str(name)] = float(np.polyfit(np.log(g["accounts"]), np.log(g["time_s"]), 1)[0])
    return out


def print_table(frame: pd.DataFrame) -> None:
    order = {s: i for i, s in enumerate((*STAGES[:6], *DERIVED, *STAGES[6:], "total"))}
    f = frame.assign(_o=frame["stage"].map(order)).sort_values(["accounts", "_o"])
    print(f"\n{'accounts':>10} {'reps':>6} {'stage':<10} {'time s':>9} {'peak GiB':>9}  detail")
    for _, r in f.iterrows():
        print(f"{r['accounts']:>10,} {r['reps']:>6,} {r['stage']:<10} {r['time_s']:>9.2f} "
              f"{r['peak_rss_gib']:>9.2f}  {r['detail']}")
    ex = exponents(frame)
    if ex:
        print("\ntime ~ n^k past 10^4 (n log n is about k = 1.1 here):")
        for s in sorted(ex, key=lambda s: order.get(s, 99)):
            print(f"  {s:<10} k = {ex[s]:.2f}")


def plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for s in (*STAGES, *DERIVED, "total"):
        g = frame[(frame["stage"] == s) & np.isfinite(frame["time_s"])].sort_values("accounts")
        if len(g):
            ax.plot(g["accounts"], g["time_s"], marker="o",
                    lw=2.5 if s == "total" else 1.2, color="k" if s == "total" else None,
                    ls="--" if s in DERIVED else "-",
                    label=s)
    # The reference runs through a stage that is not time-limited (the partition's search
    # and the routes run to their limits), at 10^4 accounts or the smallest size.
    ref = frame[(frame["stage"] == "partition_other") & np.isfinite(frame["time_s"])]
    ref = ref[ref["accounts"] >= min(10_000, ref["accounts"].max())] if len(ref) else ref
    if len(ref):
        ref = ref.sort_values("accounts").iloc[0]
        n = np.geomspace(frame["accounts"].min(), frame["accounts"].max(), 50)
        ref_n, ref_t = float(ref["accounts"]), float(ref["time_s"])
        ax.plot(n, ref_t * (n * np.log(n)) / (ref_n * np.log(ref_n)), "k:", lw=1,
                label=f"n log n (through partition_other at {ref_n:,.0f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("accounts")
    ax.set_ylabel("time (s)")
    ax.set_title("territory-planner pipeline: time per stage")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000,1000000",
                    help="comma-separated account counts (1e5 and 1_000_000 work too)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--accounts-per-rep", type=float, default=200.0)
    ap.add_argument("--time-limit", type=float, default=120.0,
                    help="partition time limit (s), the whole call")
    ap.add_argument("--max-units", type=int, default=25_000,
                    help="basic units of the partition (the library's default; 0 = 20 per "
                         "territory, what 5 %% balance needs, at a higher search cost)")
    ap.add_argument("--measures", default="workload,potential,count",
                    help="partition measures (plan() balances workload alone)")
    ap.add_argument("--route-time", type=float, default=0.5, help="routing time limit per rep (s)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--backend", choices=("local", "dask"), default="local")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help="comma-separated stages (generate, write, read and validate always run)")
    ap.add_argument("--route-max-n", type=int, default=100_000,
                    help="skip routes above this many accounts (the target is partition-only at "
                         "10^6)")
    ap.add_argument("--io-format", choices=("parquet", "csv"), default="parquet")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "scale.csv")
    ap.add_argument("--plot", type=Path, default=None,
                    help="PNG (default: --out with .png)")
    ap.add_argument("--plot-from", type=Path, nargs="*", default=None,
                    help="only redraw the table and plot from these CSVs")
    ap.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    png = args.plot or args.out.with_suffix(".png")
    if args.plot_from:
        frame = pd.concat([pd.read_csv(p) for p in args.plot_from], ignore_index=True)
        print_table(frame)
        plot(frame, png)
        print(f"\nplot: {png}")
        return 0
    if args.one is not None:
        rows = run_size(args.one, args)
        args.json.write_text(json.dumps(rows))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    for n in sizes:
        stages = args.stages
        if n > args.route_max_n:
            stages = ",".join(s for s in stages.split(",") if s != "route")
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
            tmp = Path(fh.name)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", str(n), "--json", str(tmp),
               "--seed", str(args.seed), "--accounts-per-rep", str(args.accounts_per_rep),
               "--time-limit", str(args.time_limit), "--max-units", str(args.max_units),
               "--measures", args.measures,
               "--route-time", str(args.route_time), "--workers", str(args.workers),
               "--backend", args.backend, "--stages", stages, "--io-format", args.io_format]
        print(f"n = {n:,}: {' '.join(cmd[2:])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONHASHSEED": "0"})
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            print(f"n = {n:,}: the run failed (exit {proc.returncode})", file=sys.stderr)
            rows.append({"accounts": n, "stage": "total", "time_s": float("nan"),
                         "peak_rss_gib": float("nan"),
                         "detail": json.dumps({"error": f"exit {proc.returncode}"})})
        else:
            rows += json.loads(tmp.read_text())
        tmp.unlink(missing_ok=True)
        frame = pd.DataFrame(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out, index=False)  # after every size, so a long run keeps its rows
    frame = pd.DataFrame(rows)
    print_table(frame)
    plot(frame, png)
    print(f"\nwrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
