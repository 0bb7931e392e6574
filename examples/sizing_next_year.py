"""Sizing the sales force for next year: more accounts, A accounts visited more often.

Next year's workload: 15 % more accounts (new ones drawn around the same towns) and A accounts
visited 6 times a cycle instead of 4. ``size_force_by_region`` gives the reps needed per region
at 85 % utilisation against the reps there today; ``territory.compare`` then plans today's
headcount and the sized one side by side (balance, km, utilisation, dropped visits), and the
sizing is repeated on the routes' workload (``calibrated_workload``).

    python examples/sizing_next_year.py --small --out out/sizing
    python examples/sizing_next_year.py --accounts 5000 --growth 0.2
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

import territory as tp


def main(argv: list[str] | None = None) -> tuple[pd.DataFrame, tp.Comparison]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3_000, help="accounts today")
    parser.add_argument("--growth", type=float, default=0.15, help="new accounts, share")
    parser.add_argument("--out", type=Path, default=Path("out/sizing"))
    parser.add_argument("--small", action="store_true", help="a quick run: 120 accounts")
    parser.add_argument("--workers", type=int, default=2, help="processes for the routes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = 120 if args.small else args.accounts
    provinces = ["浙江", "福建"] if args.small else ["浙江", "福建", "江苏", "上海", "安徽"]

    today = tp.synth.china_scenario(n, seed=args.seed, provinces=provinces)
    new = tp.synth.china_scenario(round(args.growth * n), seed=args.seed + 1,
                                  provinces=provinces).accounts.frame
    new["id"] = "NEW" + new["id"]
    frame = pd.concat([today.accounts.frame, new], ignore_index=True)
    frame.loc[frame["segment"] == "A", "visits"] = 6
    next_year = dataclasses.replace(today, accounts=tp.Accounts.from_frame(frame))
    print(f"today {len(today.accounts)} accounts, {len(today.reps)} reps; next year "
          f"{len(frame)} accounts, {int(frame['visits'].sum())} visits a cycle "
          f"(today {int(today.accounts.visits.sum())})")

    sizing = tp.size_force_by_region(next_year, utilisation=0.85, levels=("region", "province"))
    sizing["name"] = [tp.china.province_name(g, "zh_short") if lv == "province" else ""
                      for lv, g in zip(sizing["level"], sizing["group"], strict=True)]
    print(sizing.to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    needed = int(sizing.loc[sizing["level"] == "national", "reps_needed"].iloc[0])

    # Today's reps keep their homes; the other headcounts get homes placed near the workload.
    variants = {f"{k} reps": {"n_reps": k}
                for k in sorted({len(today.reps), needed, needed + 1})}
    comparison = tp.compare(
        next_year, variants, seed=args.seed, partition_time_s=2 if args.small else 60,
        route_time_s=0.3 if args.small else 5, max_rounds=1 if args.small else 3,
        workers=1 if args.small else args.workers)
    print(comparison.summary())

    # The estimate against the routes: size again on the workload the routes took.
    routed = comparison.plans[f"{needed} reps"]
    calibrated = tp.size_force_by_region(next_year, 0.85, tp.calibrated_workload(routed))
    print("On the routes' workload:")
    print(calibrated.to_string(index=False, float_format=lambda x: f"{x:,.1f}"))

    args.out.mkdir(parents=True, exist_ok=True)
    tp.write_csv(sizing, args.out / "sizing.csv")
    tp.write_csv(calibrated, args.out / "sizing_calibrated.csv")
    comparison.write(args.out)  # compare.csv
    print(f"Wrote sizing.csv, sizing_calibrated.csv, compare.csv to {args.out}")
    return sizing, comparison


if __name__ == "__main__":
    main()
