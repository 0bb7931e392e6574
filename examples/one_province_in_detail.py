"""One province in detail: territories, every rep's call cycle, a rep's first days, maps.

Partitions the accounts of one province (浙江 / Zhejiang by default) among its reps, plans each
rep's four-week call cycle (``plan_routes``), prints the km, hours and utilisation of every rep
and the first days of one rep's schedule, and writes the schedule and the maps into ``--out``.
One province needs no nesting; with several, ``partition(nest="province")`` keeps each
territory inside one of them.

    python examples/one_province_in_detail.py --small --out out/zhejiang
    python examples/one_province_in_detail.py --province 广东 --accounts 3000 --rep R0004
"""

from __future__ import annotations

import argparse
from pathlib import Path

import territory as tp
from territory import maps, reports, webmap


def main(argv: list[str] | None = None) -> tuple[tp.TerritoryPlan, tp.RoutePlan]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", default="浙江")
    parser.add_argument("--accounts", type=int, default=1_500)
    parser.add_argument("--rep", default="R0001", help="whose schedule to print")
    parser.add_argument("--out", type=Path, default=Path("out/province"))
    parser.add_argument("--small", action="store_true", help="a quick run: 150 accounts")
    parser.add_argument("--workers", type=int, default=2, help="processes for the routes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cycle = tp.Calendar.weekly(4, start="2025-03-03", holidays=["2025-04-04"])  # 清明
    scenario = tp.synth.china_scenario(150 if args.small else args.accounts, seed=args.seed,
                                       provinces=[args.province], calendar=cycle)
    print(scenario.summary())

    plan = tp.partition(scenario, tolerance={"workload": 0.05, "potential": 0.10},
                        measures=("workload", "potential"), seed=args.seed,
                        time_limit_s=3 if args.small else 60)
    print(plan.summary())
    routes = tp.plan_routes(plan, time_limit_s=1 if args.small else 10, seed=args.seed,
                            workers=1 if args.small else args.workers)
    print(routes.summary())
    cols = ["rep_id", "accounts", "visits_served", "visits_dropped", "km", "drive_h", "work_h",
            "utilisation", "nights"]
    print(routes.reps[cols].assign(utilisation=100 * routes.reps["utilisation"])  # in %
          .to_string(index=False, float_format=lambda x: f"{x:,.1f}"))

    # The first two days of one rep: where, in which order, and when.
    names = scenario.accounts.frame.set_index("id")["name"]
    schedule = routes.schedule.assign(name=routes.schedule["account_id"].map(names))
    days = routes.days[routes.days["rep_id"] == args.rep].head(2)
    first = schedule[(schedule["rep_id"] == args.rep) & schedule["day"].isin(days["day"])]
    print(f"{args.rep}, first two days (stay_account: a night away, near that account):")
    print(days[["date", "start", "end", "visits", "km", "drive_h", "work_h", "stay_account"]]
          .to_string(index=False, float_format=lambda x: f"{x:,.1f}"))
    print(first[["date", "sequence", "account_id", "name", "arrival", "start", "departure"]]
          .to_string(index=False))

    args.out.mkdir(parents=True, exist_ok=True)
    tp.write_csv(schedule, args.out / "schedule.csv")
    assignment = plan.assignment_frame()  # account_id, territory, rep_id
    tp.write_csv(assignment, args.out / "assignment.csv")
    # Voronoi cells of the accounts, so neighbouring territories share borders exactly.
    territories = reports.territory_polygons(scenario.accounts.lonlat, assignment["territory"]) \
        .merge(plan.territories, on="territory")
    lines = routes.to_geodataframe()  # one line per rep and day
    territories.to_file(args.out / "territories.gpkg", layer="territories")
    lines.to_file(args.out / "routes.gpkg", layer="routes")
    homes = scenario.reps.frame[["id", "home_lon", "home_lat"]]
    maps.static_map(args.out / "map.png", points=scenario.accounts.lonlat,
                    labels=assignment["territory"].to_numpy(),
                    label_kind="territory", homes=scenario.reps.home_lonlat,
                    home_labels=list(homes["id"]), territories=territories,
                    title=f"{tp.china.province_name(args.province, 'en')}: "
                          f"{plan.n_territories} territories")  # the PNG font has no 汉字
    webmap.interactive_map(args.out / "map.html", territories=territories, homes=homes,
                           accounts=scenario.accounts.frame[["lon", "lat"]].assign(
                               label=assignment["territory"]),
                           routes=lines, title=f"{args.province} call cycle")
    print(f"Wrote schedule.csv, assignment.csv, territories.gpkg, routes.gpkg, map.png, "
          f"map.html to {args.out}")
    return plan, routes


if __name__ == "__main__":
    main()
