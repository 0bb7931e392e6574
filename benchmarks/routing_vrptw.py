"""VRPTW benchmark: our ``solve_vrptw`` against OR-Tools defaults and plain PyVRP, side by side.

Instances: Solomon (100 customers) and Gehring & Homberger (200 / 1000 customers) from
``../shared/bench/vrptw``, under the DIMACS convention (``d_ij = floor(10 * euclid) / 10``,
travel time = distance, objective = total distance only, vehicles free up to the file's fleet);
gaps are to ``bks_distance`` of the sets' ``bks.csv``. Every solution, ours or not, is re-checked
and re-costed by :func:`solvers.routing.check_solution`.

Solvers (same time limit, one seed, one thread each, run one after the other):

``territory``
    ``solve_vrptw(problem, time_limit_s=T, seed=S)`` with the default ``backend="auto"``.
``ortools-default``
    Our OR-Tools model (matrix transits, time and capacity dimensions, one disjunction with a
    big penalty per customer: without them the default first-solution strategy finds no
    solution at all on R101, RC101, RC105), solved with
    ``pywrapcp.DefaultRoutingSearchParameters()`` with only ``time_limit`` changed: first
    solution AUTOMATIC (PATH_CHEAPEST_ARC), metaheuristic AUTOMATIC (greedy descent: it stops at
    the first local optimum, usually long before the limit), default model parameters
    (compressed trail). A run without a solution is reported as "no solution".
``pyvrp``
    ``pyvrp.solve(data, MaxRuntime(T), seed=S)`` with default ``SolveParams`` on the same
    integer data (``ProblemData`` built by our PyVRP backend). ``MaxRuntime`` starts after
    PyVRP's initial local search, so its wall time can exceed T; the table shows wall time.
``territory-ortools`` (not run by default)
    ``solve_vrptw(..., backend="ortools")``: our OR-Tools backend, what ``auto`` falls back to
    when PyVRP is not installed.

Usage::

    python benchmarks/routing_vrptw.py                       # Solomon + Homberger 200, 30 s
    python benchmarks/routing_vrptw.py --instances '../shared/bench/vrptw/homberger/*_10_*.txt' \\
        --sample 12 --time-limit 120 --out benchmarks/results/routing_vrptw_h1000.csv
    python benchmarks/routing_vrptw.py --instances R101 C1_10_1 --time-limit 10 \\
        --solvers territory,pyvrp --solutions out/sol
"""

from __future__ import annotations

import argparse
import csv
import glob
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script: import the repository, and not from this folder, whose vrplib.py would
    # shadow the PyPI package ``vrplib`` that PyVRP imports.
    _here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _here]
    sys.path.insert(0, str(_here.parent))

from benchmarks.vrplib import BKS, dimacs_problem, read_bks, read_solomon, write_sol
from solvers.routing import VRPTWProblem, check_solution, solve_vrptw
from solvers.routing.ortools_vrptw import build_ortools_model, extract_routes

SOLVERS = ("territory", "ortools-default", "pyvrp", "territory-ortools")
DEFAULT_SOLVERS = SOLVERS[:3]
REPO = Path(__file__).resolve().parents[1]
DEFAULT_BENCH_DIR = REPO.parent / "shared" / "bench" / "vrptw"
FIELDS = [
    "instance",
    "n_customers",
    "solver",
    "time_limit_s",
    "seed",
    "feasible",
    "distance",
    "bks_distance",
    "gap_pct",
    "vehicles",
    "bks_vehicles",
    "dropped",
    "runtime_s",
    "note",
]


@dataclass
class Row:
    """One CSV row: one solver on one instance."""

    instance: str
    n_customers: int
    solver: str
    time_limit_s: float
    seed: int
    feasible: bool | None
    distance: float | None
    bks_distance: float | None
    gap_pct: float | None
    vehicles: int | None
    bks_vehicles: int | None
    dropped: int | None
    runtime_s: float
    note: str


def find_instances(items: list[str], bench_dir: Path) -> list[Path]:
    """Instance files from files, glob patterns, folders (their ``*.txt``), names (``R101``,
    ``C1_10_1``, looked up in the bench folder) or, with no items, Solomon plus Homberger 200."""
    if not items:
        paths = sorted((bench_dir / "solomon").glob("*.txt"))
        paths += sorted((bench_dir / "homberger").glob("*_2_*.txt"), key=_natural)
        return paths
    out: list[Path] = []
    for item in items:
        p = Path(item)
        named = [bench_dir / sub / f"{item.upper()}.txt" for sub in ("solomon", "homberger")]
        if any(ch in item for ch in "*?["):
            out += sorted((Path(x) for x in glob.glob(item)), key=_natural)
        elif p.is_dir():
            out += sorted(p.glob("*.txt"), key=_natural)
        elif p.is_file():
            out.append(p)
        elif any(q.is_file() for q in named):
            out.append(next(q for q in named if q.is_file()))
        else:
            raise SystemExit(
                f"--instances: {item} is not a file, a folder or an instance name in {bench_dir}."
            )
    return out


def _natural(p: Path) -> tuple:
    """Sort C1_2_10 after C1_2_9."""
    return tuple(int(t) if t.isdigit() else t for t in p.stem.replace("_", " _ ").split())


def load_bks(paths: list[Path], bench_dir: Path) -> dict[str, BKS]:
    """BKS rows from the ``bks.csv`` next to each instance and in the bench folder."""
    table: dict[str, BKS] = {}
    folders = {p.parent for p in paths} | {bench_dir / "solomon", bench_dir / "homberger"}
    for folder in folders:
        if (folder / "bks.csv").is_file():
            table.update(read_bks(folder / "bks.csv"))
    return table


def run_ortools_default(problem: VRPTWProblem, time_limit_s: float) -> tuple[list | None, str]:
    """OR-Tools with default search parameters except the time limit (see module docstring)."""
    from ortools.constraint_solver import pywrapcp

    model = build_ortools_model(problem, compress_trail=True)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.time_limit.FromMilliseconds(int(time_limit_s * 1000))
    solution = model.routing.SolveWithParameters(params)
    if solution is None:
        return None, f"no solution (status {model.routing.status()})"
    return extract_routes(model, solution), ""


def run_pyvrp_plain(problem: VRPTWProblem, time_limit_s: float, seed: int) -> tuple[list, str]:
    """``pyvrp.solve`` with defaults on our integer data."""
    import pyvrp
    from pyvrp.stop import MaxRuntime

    from solvers.routing.pyvrp_vrptw import build_pyvrp_data, pyvrp_routes

    pdata = build_pyvrp_data(problem)
    res = pyvrp.solve(pdata.data, stop=MaxRuntime(time_limit_s), seed=seed, collect_stats=False)
    note = "" if res.best.is_feasible() else "pyvrp best infeasible"
    return pyvrp_routes(pdata, res.best, problem.n_vehicles), note


def run_one(
    solver: str, problem: VRPTWProblem, time_limit_s: float, seed: int
) -> tuple[list | None, float, str]:
    """Run one solver; returns routes (None if none), wall time and a note."""
    t0 = time.perf_counter()
    routes: list | None
    if solver in ("territory", "territory-ortools"):
        backend = "auto" if solver == "territory" else "ortools"
        result = solve_vrptw(problem, time_limit_s=time_limit_s, seed=seed, backend=backend)
        routes, note = [list(r) for r in result.routes], f"backend {result.backend}"
    elif solver == "ortools-default":
        routes, note = run_ortools_default(problem, time_limit_s)
    elif solver == "pyvrp":
        routes, note = run_pyvrp_plain(problem, time_limit_s, seed)
    else:
        raise SystemExit(f"--solvers: unknown solver {solver!r}; expected {', '.join(SOLVERS)}.")
    return routes, time.perf_counter() - t0, note


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--instances",
        nargs="*",
        default=[],
        help="instance files, glob patterns, folders or names (R101, C1_10_1)",
    )
    ap.add_argument(
        "--bench-dir",
        type=Path,
        default=DEFAULT_BENCH_DIR,
        help="folder holding solomon/ and homberger/ (default ../shared/bench/vrptw)",
    )
    ap.add_argument(
        "--time-limit", type=float, default=30.0, help="seconds per solver and instance"
    )
    ap.add_argument(
        "--solvers",
        default=",".join(DEFAULT_SOLVERS),
        help="comma-separated subset of " + ", ".join(SOLVERS),
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--sample",
        type=int,
        default=None,
        help="run only this many instances, evenly spaced over the sorted list",
    )
    ap.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "routing_vrptw.csv"
    )
    ap.add_argument(
        "--solutions", type=Path, default=None, help="folder for our engine's CVRPLIB .sol files"
    )
    args = ap.parse_args(argv)

    solvers = [s.strip() for s in args.solvers.split(",") if s.strip()]
    for s in solvers:
        if s not in SOLVERS:
            ap.error(f"--solvers: unknown solver {s!r}; expected {', '.join(SOLVERS)}")
    paths = find_instances(args.instances, args.bench_dir)
    if args.sample and args.sample < len(paths):
        step = len(paths) / args.sample
        paths = [paths[int(k * step)] for k in range(args.sample)]
    if not paths:
        ap.error("no instances found")
    bks = load_bks(paths, args.bench_dir)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    header = (
        f"{'instance':<11}{'n':>5} {'solver':<16}{'feas':>5}{'distance':>11}{'bks':>11}"
        f"{'gap%':>8}{'veh':>5}{'bksv':>5}{'drop':>5}{'time_s':>8}  note"
    )
    print(header)
    print("-" * len(header))
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for path in paths:
            inst = read_solomon(path)
            problem = dimacs_problem(inst)
            ref = bks.get(inst.name)
            for solver in solvers:
                routes, wall, note = run_one(solver, problem, args.time_limit, args.seed)
                row = Row(
                    inst.name,
                    inst.n_customers,
                    solver,
                    args.time_limit,
                    args.seed,
                    None,
                    None,
                    ref.bks_distance if ref else None,
                    None,
                    None,
                    ref.bks_vehicles if ref else None,
                    None,
                    round(wall, 2),
                    note,
                )
                if routes is not None:
                    check = check_solution(problem, routes)
                    row.feasible = check.feasible
                    row.distance = round(check.distance, 1)
                    row.vehicles = check.n_routes
                    row.dropped = len(check.dropped)
                    if ref and check.feasible:
                        row.gap_pct = round(100 * (check.distance / ref.bks_distance - 1), 3)
                    if not check.feasible:
                        row.note = (row.note + "; " if row.note else "") + check.violations[0]
                    if solver == "territory" and args.solutions is not None:
                        write_sol(args.solutions / f"{inst.name}.sol", check.routes, check.distance)
                rows.append(row)
                writer.writerow(row.__dict__)
                fh.flush()
                print(_fmt(row), flush=True)
    print()
    print(summarise(rows))
    print(f"\nwrote {args.out}")
    return 0


def _fmt(r: Row) -> str:
    def num(x: float | None, f: str) -> str:
        width = int(f.split(".")[0].rstrip("df"))
        return format(x, f) if x is not None else "-".rjust(width)

    feas = "-" if r.feasible is None else ("yes" if r.feasible else "NO")
    return (
        f"{r.instance:<11}{r.n_customers:>5} {r.solver:<16}{feas:>5}"
        f"{num(r.distance, '11.1f')}{num(r.bks_distance, '11.1f')}{num(r.gap_pct, '8.2f')}"
        f"{num(r.vehicles, '5d')}{num(r.bks_vehicles, '5d')}{num(r.dropped, '5d')}"
        f"{r.runtime_s:8.1f}  {r.note}"
    )


def summarise(rows: list[Row]) -> str:
    """Per solver and instance size: feasible share, mean gap (feasible rows), mean time."""
    lines = [
        f"{'solver':<16}{'size':>6}{'runs':>6}{'feasible':>10}{'mean gap%':>11}"
        f"{'max gap%':>10}{'mean time_s':>13}"
    ]
    keys = sorted(
        {(r.solver, r.n_customers) for r in rows}, key=lambda k: (SOLVERS.index(k[0]), k[1])
    )
    for solver, size in keys:
        sel = [r for r in rows if r.solver == solver and r.n_customers == size]
        gaps = [r.gap_pct for r in sel if r.gap_pct is not None]
        feas = sum(1 for r in sel if r.feasible)
        mean_gap = sum(gaps) / len(gaps) if gaps else math.nan
        lines.append(
            f"{solver:<16}{size:>6}{len(sel):>6}{feas:>6}/{len(sel):<3}{mean_gap:>11.3f}"
            f"{max(gaps) if gaps else math.nan:>10.3f}"
            f"{sum(r.runtime_s for r in sel) / len(sel):>13.1f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
