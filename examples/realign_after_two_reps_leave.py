"""Realigning after two reps leave: the others take over, and few other accounts move.

Today each account has a ``current_rep``. Two reps leave: their accounts are vacant, and
``territory.plan(realign=True, max_moved=...)`` rebalances the territories of the reps who stay,
moving at most ``max_moved`` of the accounts that keep a rep. ``realignment_report`` then says who
gains and who loses which accounts and why, and the disruption in accounts and in potential.

    python examples/realign_after_two_reps_leave.py --small --out out/realign
    python examples/realign_after_two_reps_leave.py --leaving R0003 R0007 --max-moved 0.15
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd

import territory as tp


def main(argv: list[str] | None = None) -> tuple[tp.NationalPlan, tp.RealignmentReport]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaving", nargs=2, default=["R0002", "R0005"], metavar="REP")
    parser.add_argument("--max-moved", type=float, default=0.15,
                        help="share of the accounts that keep a rep allowed to move")
    parser.add_argument("--out", type=Path, default=Path("out/realign"))
    parser.add_argument("--small", action="store_true", help="a quick run: 160 accounts")
    parser.add_argument("--workers", type=int, default=2, help="processes for the routes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    limit_s = 2 if args.small else 60

    # Today: in practice read_accounts() on a CRM export with a current_rep column.
    scenario = tp.synth.china_scenario(160 if args.small else 3_000, 7 if args.small else None,
                                       seed=args.seed, provinces=["浙江", "上海"])
    today = tp.partition(scenario, time_limit_s=limit_s, seed=args.seed)
    current = pd.Series(today.rep_of_account, index=today.account_ids, name="current_rep")

    # Two reps leave. Their accounts are vacant: no current rep, so any rep may take them and
    # only the moves of the other accounts count against max_moved.
    vacant = current.isin(args.leaving).to_numpy()
    accounts = scenario.accounts.with_columns(current_rep=current.mask(vacant, "").to_numpy())
    staying = [i for i, r in enumerate(scenario.reps.ids) if r not in args.leaving]
    after = dataclasses.replace(scenario, accounts=accounts, reps=scenario.reps.subset(staying))
    print(f"{', '.join(args.leaving)} leave: {vacant.sum()} vacant accounts, "
          f"{len(staying)} reps stay")

    new = tp.plan(after, realign=True, max_moved=args.max_moved, seed=args.seed,
                  partition_time_s=limit_s, route_time_s=0.3 if args.small else 5,
                  max_rounds=1 if args.small else 3, workers=1 if args.small else args.workers)
    print(new.summary())

    # Against today's alignment (the leaving reps included), so their accounts show as moves.
    report = tp.realignment_report(current, new)
    print(report.summary())
    kept = int((~vacant).sum())
    others = int((report.moves["reason"] != "rep left").sum())
    print(f"  {others} of the {kept} accounts that keep a rep moved ({100 * others / kept:.1f} %;"
          f" cap {100 * args.max_moved:.0f} %)")
    print(report.moves.nlargest(12, "potential").to_string(index=False,
                                                           float_format=lambda x: f"{x:,.1f}"))

    files = report.write(args.out)  # realignment_moves.csv, realignment_by_rep.csv
    files["assignment"] = tp.write_csv(new.territories.assignment_frame(),
                                       args.out / "assignment.csv")
    print(f"Wrote {', '.join(p.name for p in files.values())} to {args.out}")
    return new, report


if __name__ == "__main__":
    main()
