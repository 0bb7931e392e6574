"""Flow repair on and off, side by side: territories seeded at rep homes on synthetic China.

Boundary moves stall when a surplus sits behind territories already at their bounds (each move
trades one violation for another); the engine's flow repair routes the excess over the
territory graph instead (``PartitionParams.flow_repairs``). This runs ``territory.partition``
on ``synth.china_scenario(n, n_reps=n // 200, seed)`` (about 200 accounts per rep, as in
``scale.py``), one measure by default, with the repair on (default) and off, on the same
instance one after the other, and prints the worst deviation, the territories within
tolerance, contiguity and the objective (sum of account distances to the homes, km).

    python benchmarks/partition_flow.py --accounts 10000 --seeds 0,1,2 --time-limit 30 \
        --out benchmarks/results/partition_flow.csv
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--seeds", default="0,1,2", help="scenario seeds (the engine uses seed 0)")
    ap.add_argument("--measures", default="workload")
    ap.add_argument("--tolerance", type=float, default=0.05)
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "partition_flow.csv")
    args = ap.parse_args(argv)

    from solvers.partition import PartitionParams
    from territory import synth
    from territory.alignment import partition
    from territory.errors import DataQualityWarning

    warnings.simplefilter("ignore", DataQualityWarning)
    measures = args.measures.split(",")
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        sc = synth.china_scenario(args.accounts, n_reps=max(args.accounts // 200, 2), seed=seed)
        for repairs in (10, 0):
            t0 = time.perf_counter()
            plan = partition(sc, measures=measures, tolerance=args.tolerance,
                             time_limit_s=args.time_limit, seed=0,
                             params=PartitionParams(flow_repairs=repairs))
            wall = time.perf_counter() - t0
            dev = np.abs(plan.territories[[f"{m}_dev" for m in measures]].to_numpy())
            rows.append({
                "accounts": args.accounts, "reps": plan.n_territories, "scenario_seed": seed,
                "flow_repairs": repairs, "measures": "+".join(measures),
                "time_limit_s": args.time_limit, "time_s": round(wall, 1),
                "feasible": plan.feasible,
                "worst_dev_pct": round(100 * float(dev.max()), 2),
                "within_tol": int((dev.max(axis=1) <= args.tolerance + 1e-9).sum()),
                "contiguous": int(plan.territories["contiguous"].sum()),
                "objective_km": round(float(plan.objective), 0),
            })
            print(pd.DataFrame([rows[-1]]).to_string(index=False, header=len(rows) == 1),
                  flush=True)
    frame = pd.DataFrame(rows)
    on = frame[frame.flow_repairs > 0].set_index("scenario_seed")
    off = frame[frame.flow_repairs == 0].set_index("scenario_seed")
    print("\nobjective ratio on/off per seed:",
          (on["objective_km"] / off["objective_km"]).round(3).to_dict())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
