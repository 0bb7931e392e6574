"""National plan from a CRM export: CSV files in; territories, routes, maps and calendars out.

Reads accounts and reps as an analyst's CRM export gives them (``account_id, name, lon, lat,
potential, segment, opening_hours, city`` and ``rep_id, name, lon, lat``: ``read_accounts``
matches the column names), balances the territories on the workload the routes really take
(``territory.plan``), prints the summary and writes every output into ``--out``. Without
``--accounts``/``--reps`` it first writes such files from a synthetic nationwide scenario.

    python examples/national_plan_from_csv.py --small --out out/national
    python examples/national_plan_from_csv.py --accounts crm.csv --reps reps.csv --out out/national
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import territory as tp


def write_crm_export(folder: Path, n_accounts: int, provinces: list[str] | None,
                     seed: int) -> tuple[Path, Path]:
    """Synthetic accounts and reps as CSV, with the column names of a typical CRM export."""
    scenario = tp.synth.china_scenario(n_accounts, seed=seed, provinces=provinces)
    a, r = scenario.accounts.frame, scenario.reps.frame
    accounts = pd.DataFrame({
        "account_id": a["id"], "name": a["name"], "lon": a["lon"], "lat": a["lat"],
        "potential": a["potential"], "segment": a["segment"], "opening_hours": a["hours"],
        "city": a["city"]})
    reps = pd.DataFrame({"rep_id": r["id"], "name": "代表" + r["id"],
                         "lon": r["home_lon"], "lat": r["home_lat"]})
    folder.mkdir(parents=True, exist_ok=True)
    return (tp.write_csv(accounts, folder / "crm_accounts.csv"),
            tp.write_csv(reps, folder / "crm_reps.csv"))


def main(argv: list[str] | None = None) -> tp.NationalPlan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=Path, help="accounts CSV (default: synthetic)")
    parser.add_argument("--reps", type=Path, help="reps CSV (needed with --accounts)")
    parser.add_argument("--out", type=Path, default=Path("out/national_plan"))
    parser.add_argument("--small", action="store_true", help="a quick run: 3 provinces")
    parser.add_argument("--workers", type=int, default=2, help="processes for the routes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if (args.accounts is None) != (args.reps is None):
        parser.error("give both --accounts and --reps, or neither")

    if args.accounts is None:
        args.accounts, args.reps = write_crm_export(
            args.out / "input", n_accounts=200 if args.small else 5_000,
            provinces=["浙江", "上海", "江苏"] if args.small else None, seed=args.seed)
    accounts = tp.read_accounts(args.accounts)  # account_id -> id, opening_hours -> hours ...
    reps = tp.read_reps(args.reps)              # rep_id -> id, lon/lat -> home_lon/home_lat
    scenario = tp.Scenario(accounts, reps, name=args.accounts.stem)
    print(scenario.summary())

    # Territories balanced on estimated workload, routed, then rebalanced on the routes' workload.
    national = tp.plan(
        scenario, tolerance=0.05, workload_tolerance=0.10, seed=args.seed,
        partition_time_s=3 if args.small else 120, route_time_s=0.3 if args.small else 5,
        max_rounds=1 if args.small else 3, workers=1 if args.small else args.workers)
    print(national.summary())
    print(national.summary_table().T.to_string(header=False))

    files = national.write(args.out)  # assignment.csv, schedule.csv, plan.xlsx, maps, ...
    print(f"Wrote {', '.join(sorted(files))} to {args.out}")
    return national


if __name__ == "__main__":
    main()
