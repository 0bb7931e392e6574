"""Partitioning engine on the 48 CTDP "DL" instances, side by side with open-source anchors.

The problem of Gliesch, Ritt & Moreira (2018): three activities balanced within tau = 5 % of
their means, every territory connected in the Delaunay graph, minimise the largest territory
diameter. Gap = (diameter - best known) / best known, best known = min ``cmp`` over the
feasible A-TS runs of ``full.dat`` (10 runs x 30 min each); empty for generator seeds outside the
published set. Negative gaps are improvements on the best-known values.

Solvers (``--solvers``, comma-separated):

* ``territory``: :func:`solvers.partition.solve_partition`, objective ``"diameter"``, one core.
* ``kmeans-constrained``: ``k_means_constrained.KMeansConstrained`` on the coordinates with
  ``size_min/size_max`` from the count tolerance (it balances unit counts only).
* ``spopt``: ``spopt.region.RegionKMeansHeuristic`` on the coordinates with the Delaunay
  contiguity (contiguous, compact, not balanced).
* ``spopt-skater``: ``spopt.region.Skater`` on the coordinates with a floor of
  ``(1 - tau) n / p`` units per region (dense n x n dissimilarity).

The spopt anchors are slow (RegionKMeansHeuristic: about two minutes at n = 1000), so they run
only up to ``--anchor-max-n`` units; larger instances get a "skipped" row.

All are scored by the same functions (:mod:`solvers.partition.metrics`).

Usage::

    python benchmarks/partition_ctdp.py --sizes 1000 --time-limit 20
    python benchmarks/partition_ctdp.py --instances del-n2500-k40-s25162 --solvers territory,spopt
    python benchmarks/partition_ctdp.py --sizes 1000 --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ctdp import (  # noqa: E402
    DEFAULT_BENCH_DIR,
    CtdpInstance,
    best_known,
    generate,
    instance_names,
    parse_name,
)

from solvers.partition import PartitionParams, PartitionProblem, solve_partition  # noqa: E402
from solvers.partition.metrics import (  # noqa: E402
    relative_deviation,
    territory_contiguity,
    territory_diameters,
    territory_totals,
)

FIELDS = [
    "instance", "n", "p", "gen_seed", "solver", "time_limit_s", "runtime_s", "feasible",
    "balanced", "contiguous", "n_disconnected", "maxdev_w1_pct", "maxdev_w2_pct",
    "maxdev_w3_pct", "diameter", "best_known", "gap_pct", "iterations", "starts", "note",
]


def score(inst: CtdpInstance, labels: np.ndarray) -> dict[str, object]:
    """Feasibility per measure, contiguity and diameter of a plan."""
    totals = territory_totals(labels, inst.measures, inst.p)
    targets = np.broadcast_to(inst.measures.sum(axis=0) / inst.p, totals.shape)
    maxdev = np.abs(relative_deviation(totals, targets)).max(axis=0)
    contiguous = territory_contiguity(labels, inst.p, inst.edges)
    balanced = bool((maxdev <= inst.tau + 1e-9).all())
    return {
        "balanced": balanced,
        "contiguous": bool(contiguous.all()),
        "n_disconnected": int((~contiguous).sum()),
        "feasible": balanced and bool(contiguous.all()),
        "maxdev_w1_pct": round(100 * maxdev[0], 3),
        "maxdev_w2_pct": round(100 * maxdev[1], 3),
        "maxdev_w3_pct": round(100 * maxdev[2], 3),
        "diameter": round(float(territory_diameters(inst.xy, labels, inst.p).max()), 4),
    }


def run_territory(inst: CtdpInstance, time_limit_s: float, seed: int) -> tuple[np.ndarray, dict]:
    prob = PartitionProblem(
        inst.xy, inst.measures, inst.p, inst.tau, edges=inst.edges, contiguous=True,
        objective="diameter",
    )
    # the benchmark spends its whole budget (no early stop after starts without improvement)
    params = PartitionParams(max_starts_without_improvement=None)
    res = solve_partition(prob, time_limit_s=time_limit_s, seed=seed, params=params)
    return res.assignment, {"iterations": res.iterations, "starts": res.n_starts}


def run_kmeans_constrained(inst: CtdpInstance, time_limit_s: float, seed: int):
    from k_means_constrained import KMeansConstrained

    per = inst.n / inst.p
    km = KMeansConstrained(
        n_clusters=inst.p,
        size_min=int(np.ceil(per * (1 - inst.tau))),
        size_max=int(np.floor(per * (1 + inst.tau))),
        n_init=1,
        random_state=seed,
        n_jobs=1,
    )
    return km.fit_predict(inst.xy).astype(np.int64), {"note": "n_init=1"}


def _libpysal_w(inst: CtdpInstance):
    from libpysal.weights import W

    neigh: dict[int, list[int]] = {i: [] for i in range(inst.n)}
    for u, v in inst.edges.tolist():
        neigh[u].append(v)
        neigh[v].append(u)
    return W(neigh, silence_warnings=True)


def run_spopt(inst: CtdpInstance, time_limit_s: float, seed: int):
    from spopt.region import RegionKMeansHeuristic

    model = RegionKMeansHeuristic(inst.xy, inst.p, _libpysal_w(inst), seed=seed)
    model.solve()
    return np.asarray(model.labels_, dtype=np.int64), {"note": "RegionKMeansHeuristic"}


def run_spopt_skater(inst: CtdpInstance, time_limit_s: float, seed: int):
    import geopandas as gpd
    from spopt.region import Skater

    gdf = gpd.GeoDataFrame({"x": inst.xy[:, 0], "y": inst.xy[:, 1]},
                           geometry=gpd.points_from_xy(inst.xy[:, 0], inst.xy[:, 1]))
    floor = int(np.floor((1 - inst.tau) * inst.n / inst.p))
    model = Skater(gdf, _libpysal_w(inst), ["x", "y"], n_clusters=inst.p, floor=floor)
    model.solve()
    return np.asarray(model.labels_, dtype=np.int64), {"note": f"Skater floor={floor}"}


SOLVERS = {
    "territory": run_territory,
    "kmeans-constrained": run_kmeans_constrained,
    "spopt": run_spopt,
    "spopt-skater": run_spopt_skater,
}


def select(args: argparse.Namespace) -> list[tuple[int, int, int]]:
    names = instance_names(args.bench_dir)
    cases = [parse_name(nm) for nm in names]
    if args.instances:
        wanted = [parse_name(s) for s in args.instances.split(",")]
        return wanted
    if args.sizes:
        sizes = {int(s) for s in args.sizes.split(",")}
        cases = [c for c in cases if c[0] in sizes]
    if args.seeds:
        pairs = sorted({(n, p) for n, p, _ in cases})
        cases = [(n, p, int(s)) for n, p in pairs for s in args.seeds.split(",")]
    return cases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    ap.add_argument("--sizes", help="n values, e.g. 1000,2500")
    ap.add_argument("--seeds", help="generator seeds instead of the published ones")
    ap.add_argument("--instances", help="instance names, comma-separated")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per instance")
    ap.add_argument("--seed", type=int, default=0, help="solver seed")
    ap.add_argument("--solvers", default="territory")
    ap.add_argument("--anchor-max-n", type=int, default=1000,
                    help="largest n on which the spopt anchors run")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/partition_ctdp.csv")
    args = ap.parse_args(argv)
    solvers = args.solvers.split(",")
    for s in solvers:
        if s not in SOLVERS:
            ap.error(f"unknown solver {s!r}; choose from {', '.join(SOLVERS)}")
    best = best_known(args.bench_dir) if (args.bench_dir / "published_results").exists() else {}
    cases = select(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    head = (f"{'instance':24s} {'solver':18s} {'feas':>4s} {'dev1%':>6s} {'dev2%':>6s} "
            f"{'dev3%':>6s} {'conn':>5s} {'diameter':>9s} {'best':>8s} {'gap%':>7s} {'time':>6s}")
    print(head)
    with open(args.out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        for n, p, gen_seed in cases:
            inst = generate(n, p, gen_seed)
            bk = best.get(inst.name)
            for solver in solvers:
                t0 = time.perf_counter()
                if solver.startswith("spopt") and n > args.anchor_max_n:
                    labels, extra = None, {"note": f"skipped: n > --anchor-max-n {args.anchor_max_n}"}
                else:
                    try:
                        labels, extra = SOLVERS[solver](inst, args.time_limit, args.seed)
                    except Exception as exc:  # an anchor failing is a result, not a crash
                        labels, extra = None, {"note": f"{type(exc).__name__}: {exc}"[:200]}
                runtime = time.perf_counter() - t0
                row: dict[str, object] = {
                    "instance": inst.name, "n": n, "p": p, "gen_seed": gen_seed,
                    "solver": solver, "time_limit_s": args.time_limit,
                    "runtime_s": round(runtime, 2), "best_known": bk, **extra,
                }
                if labels is not None and len(np.unique(labels)) <= p and labels.min() >= 0:
                    row.update(score(inst, labels))
                    if bk is not None and row["feasible"]:
                        row["gap_pct"] = round(100 * (row["diameter"] - bk) / bk, 3)
                rows.append(row)
                writer.writerow({k: row.get(k, "") for k in FIELDS})
                fh.flush()
                if labels is None:
                    print(f"{inst.name:24s} {solver:18s} {row['note']}", flush=True)
                    continue
                print(
                    f"{inst.name:24s} {solver:18s} {'yes' if row.get('feasible') else 'no':>4s} "
                    f"{row.get('maxdev_w1_pct', ''):>6} {row.get('maxdev_w2_pct', ''):>6} "
                    f"{row.get('maxdev_w3_pct', ''):>6} "
                    f"{'yes' if row.get('contiguous') else 'no':>5s} "
                    f"{row.get('diameter', ''):>9} {'' if bk is None else f'{bk:.2f}':>8s} "
                    f"{row.get('gap_pct', ''):>7} {runtime:6.1f}",
                    flush=True,
                )
    print()
    for solver in solvers:
        mine = [r for r in rows if r["solver"] == solver]
        feas = [r for r in mine if r.get("feasible")]
        gaps = [float(r["gap_pct"]) for r in feas if r.get("gap_pct") not in (None, "")]
        mean_gap = f"{np.mean(gaps):.2f} %" if gaps else "n/a"
        print(f"{solver:18s} feasible {len(feas)}/{len(mine)}, mean gap {mean_gap} "
              f"over {len(gaps)}, mean runtime {np.mean([r['runtime_s'] for r in mine]):.1f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
