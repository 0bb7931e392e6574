"""Re-create the 48 "DL" instances of the commercial territory design problem (CTDP).

Gliesch, Ritt & Moreira (EvoCOP 2018) published results on instances ``del-n{n}-k{p}-s{seed}``
but not the files; their generator is fully determined (see ``GENERATOR.md`` in the benchmark
folder), and this module follows it:

1. ``std::mt19937`` seeded with ``seed`` (numpy's MT19937 with legacy seeding is the same
   stream); a double in [a, b) is libstdc++'s ``generate_canonical``: two 32-bit draws u0, u1,
   ``(u0 + u1 2^32) / 2^64`` (clipped below 1), scaled to [a, b).
2. n + 3 points, x then y, uniform in [0, 1000); the first n are kept, sorted by x.
3. Per point in sorted order: w1 ~ U[4, 20], w2 ~ U[15, 400], w3 ~ U[15, 100].
4. Coordinates and activities rounded to 6 significant digits (the files' precision).
5. Graph: Delaunay triangulation. Feasibility: connected territories, every activity within
   tau = 5 % of its mean. Objective of the published results: the largest territory diameter.

Usage::

    python benchmarks/ctdp.py                  # list the 48 instances with their sizes
    python benchmarks/ctdp.py --check          # sizes + a sanity check of the diameters
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from solvers.partition.graph import delaunay_edges  # noqa: E402

DEFAULT_BENCH_DIR = ROOT.parent / "shared" / "bench" / "territory" / "ctdp"
NAME = re.compile(r"^del-n(\d+)-k(\d+)-s(\d+)$")
TAU = 0.05


@dataclass(frozen=True)
class CtdpInstance:
    """One DL instance: points, three activities, Delaunay edges, p and tau."""

    name: str
    xy: np.ndarray
    measures: np.ndarray
    edges: np.ndarray
    p: int
    tau: float = TAU

    @property
    def n(self) -> int:
        return len(self.xy)


def _canonical(bg: np.random.MT19937, count: int) -> np.ndarray:
    """``count`` doubles in [0, 1) as libstdc++'s generate_canonical<double, 53> on mt19937."""
    raw = bg.random_raw(2 * count).astype(np.float64).reshape(count, 2)
    c = (raw[:, 0] + raw[:, 1] * 2.0**32) / 2.0**64
    return np.minimum(c, np.nextafter(1.0, 0.0))


def _round6(x: np.ndarray) -> np.ndarray:
    """Round to 6 significant digits, as C++ ``ostream`` writes a double by default."""
    return np.array([float(f"{v:.6g}") for v in np.ravel(x)]).reshape(np.shape(x))


def generate(n: int, p: int, seed: int) -> CtdpInstance:
    """The DL instance ``del-n{n}-k{p}-s{seed}`` (seed < 2^16 as in the original generator)."""
    bg = np.random.MT19937()
    bg._legacy_seeding(seed)  # init_genrand(seed), the classic mt19937 seeding
    pts = (_canonical(bg, 2 * (n + 3)) * 1000.0).reshape(n + 3, 2)[:n]
    pts = pts[np.argsort(pts[:, 0], kind="stable")]
    lo, hi = np.array([4.0, 15.0, 15.0]), np.array([20.0, 400.0, 100.0])
    w = _canonical(bg, 3 * n).reshape(n, 3) * (hi - lo) + lo
    xy = _round6(pts)
    w = _round6(w)
    return CtdpInstance(f"del-n{n}-k{p}-s{seed}", xy, w, delaunay_edges(xy, trim_factor=None), p)


def parse_name(name: str) -> tuple[int, int, int]:
    """``del-n{n}-k{p}-s{seed}`` -> (n, p, seed)."""
    m = NAME.match(name)
    if not m:
        raise ValueError(f"instance name {name!r}; expected del-n<n>-k<p>-s<seed>")
    return int(m[1]), int(m[2]), int(m[3])


def read_published(bench_dir: Path, file: str = "full.dat") -> list[dict[str, object]]:
    """Rows of a published result table (``published_results/<file>``) as dicts."""
    path = Path(bench_dir) / "published_results" / file
    lines = path.read_text().split("\n")
    header = lines[0].split()
    rows = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) != len(header):
            continue
        row: dict[str, object] = {}
        for key, val in zip(header, parts, strict=True):
            row[key] = val if key == "instance" else float(val)
        rows.append(row)
    return rows


def instance_names(bench_dir: Path) -> list[str]:
    """The 48 DL names in the order of ``full.dat``, by (n, p, seed)."""
    names = {str(r["instance"]) for r in read_published(bench_dir)}
    return sorted(names, key=parse_name)


def best_known(bench_dir: Path) -> dict[str, float]:
    """Best-known diameter per instance: min ``cmp`` over feasible (``bal == 0``) A-TS runs."""
    best: dict[str, float] = {}
    for r in read_published(bench_dir):
        if r["bal"] == 0:
            name = str(r["instance"])
            best[name] = min(best.get(name, np.inf), float(r["cmp"]))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    ap.add_argument("--check", action="store_true",
                    help="compare a balanced k-means plan's diameter with the published range")
    args = ap.parse_args(argv)
    rows = read_published(args.bench_dir)
    best = best_known(args.bench_dir)
    cons = {}
    for r in rows:
        cons.setdefault(str(r["instance"]), []).append(float(r["cons_cmp"]))
    print(f"{'instance':24s} {'n':>6s} {'p':>4s} {'edges':>6s} {'w1 mean':>8s} {'w2 mean':>8s} "
          f"{'w3 mean':>8s} {'best':>8s} {'cons':>8s}" + ("  voronoi diam" if args.check else ""))
    for name in instance_names(args.bench_dir):
        n, p, seed = parse_name(name)
        inst = generate(n, p, seed)
        assert inst.n == n and inst.p == p
        line = (f"{name:24s} {n:6d} {p:4d} {len(inst.edges):6d} "
                f"{inst.measures[:, 0].mean():8.2f} {inst.measures[:, 1].mean():8.2f} "
                f"{inst.measures[:, 2].mean():8.2f} {best[name]:8.2f} "
                f"{np.median(cons[name]):8.2f}")
        if args.check:
            from scipy.cluster.vq import kmeans2

            from solvers.partition.metrics import territory_diameters

            _, label = kmeans2(inst.xy, p, seed=seed, minit="++")
            line += f"  {territory_diameters(inst.xy, label, p).max():8.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
