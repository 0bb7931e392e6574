"""The ``territory`` command line.

Exit codes follow the service contract: 0 ok, 1 internal error, 2 bad input, 3 no feasible plan.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from territory.errors import InvalidInputError, TerritoryError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Balanced sales territories and rep call-cycle routes.")


@app.callback()
def _root() -> None:
    """territory-planner: plan territories and routes for a national sales force."""


def _fail(exc: Exception, code: int) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code)


def _print_table(frame: pd.DataFrame, floatfmt: str = "{:,.1f}") -> None:
    formatters = {c: floatfmt.format for c in frame.columns
                  if pd.api.types.is_float_dtype(frame[c])}
    typer.echo(frame.to_string(index=False, formatters=formatters))


@app.command()
def demo(
    accounts: int = typer.Option(20_000, "--accounts", help="Number of synthetic accounts."),
    out: Path = typer.Option(Path("out"), "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
) -> None:
    """Build the nationwide synthetic scenario, size the force and draw it."""
    from territory import china, maps, synth
    from territory.workload import estimate_workload, size_force

    t0 = time.perf_counter()
    try:
        scenario = synth.china_scenario(n_accounts=accounts, seed=seed)
    except (TerritoryError, ValueError) as exc:
        _fail(exc, 2)
    t_build = time.perf_counter() - t0
    acc = scenario.accounts
    est = estimate_workload(acc, scenario.calendar, scenario.travel)
    avail = float(scenario.reps.available_minutes(scenario.calendar)[0])
    regions = china.region_of_province()
    region = np.array([regions.get(p, "?") for p in acc.province], dtype=object)
    sizing = size_force(est.total_min, avail, utilisation=0.85,
                        groups={"region": region})
    visits = acc.visits
    per_region = pd.DataFrame({
        "region": region, "accounts": 1, "visits": visits,
        "visit_h": est.visit_min / 60.0, "travel_h": est.travel_min / 60.0,
        "potential": acc.potential,
    }).groupby("region", sort=True).sum(numeric_only=True)
    per_region["workload_h"] = per_region["visit_h"] + per_region["travel_h"]
    reps_here = pd.Series(
        [regions.get(p, "?") for p in scenario.reps.frame["province"]]).value_counts()
    per_region["reps_needed"] = sizing[sizing["level"] == "region"].set_index(
        "group")["reps_needed"]
    per_region["reps_placed"] = reps_here.reindex(per_region.index).fillna(0).astype(int)
    per_region = per_region.reset_index()
    national = sizing[sizing["level"] == "national"].iloc[0]

    typer.echo(f"Scenario {scenario.name}: {len(acc):,} accounts, {len(scenario.reps)} reps, "
               f"{scenario.calendar.n_days}-day cycle, built in {t_build:.1f} s")
    typer.echo(f"Rep time: {avail / 60:.1f} h per cycle; target utilisation 85 %\n")
    typer.echo("Workload and sizing per region (call cycle):")
    _print_table(per_region)
    typer.echo(f"\nNational: {national['workload_h']:,.0f} h of work -> "
               f"{national['reps_needed']} reps needed "
               f"(exact {national['reps_exact']:.1f}); visits per rep-day at that size: "
               f"{visits.sum() / (national['reps_needed'] * scenario.calendar.n_days):.1f}")

    out.mkdir(parents=True, exist_ok=True)
    png = maps.static_map(
        out / "map.png", points=acc.lonlat, labels=acc.frame["segment"].to_numpy(),
        homes=scenario.reps.home_lonlat,
        title=f"{len(acc):,} synthetic accounts by segment, {len(scenario.reps)} rep homes")
    summary = {
        "scenario": scenario.summary(),
        "regions": per_region.to_dict(orient="records"),
        "national": {k: (v.item() if hasattr(v, "item") else v)
                     for k, v in national.to_dict().items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2,
                                                 default=str), encoding="utf-8")
    typer.echo(f"\nWrote {png} and {out / 'summary.json'} "
               f"({time.perf_counter() - t0:.1f} s in all)")


@app.command("partition")
def partition_cmd(
    source: Path = typer.Argument(..., help="Units table (id, x, y, measures) or accounts."),
    edges: Path | None = typer.Option(None, "--edges", help="Edges table with columns u,v."),
    reps: Path | None = typer.Option(None, "--reps", help="Reps table: partition accounts "
                                     "into one territory per rep (scenario mode)."),
    x: str = typer.Option("x", "--x", help="Column of planar x (units mode)."),
    y: str = typer.Option("y", "--y", help="Column of planar y (units mode)."),
    id_col: str = typer.Option("id", "--id", help="Column of unit ids (units mode)."),
    measures: str = typer.Option("", "--measures", help="Comma list of measures to balance "
                                 "(units mode; scenario mode default workload,potential,count)."),
    territories: int | None = typer.Option(None, "--territories", help="Number of territories "
                                           "(scenario mode default: one per rep)."),
    tolerance: float = typer.Option(0.05, "--tolerance", help="Relative tolerance (0.05 = 5 %)."),
    objective: str = typer.Option("sum_distance", "--objective",
                                  help="sum_distance or diameter."),
    no_contiguity: bool = typer.Option(False, "--no-contiguity",
                                       help="Do not require contiguous territories."),
    nest: str | None = typer.Option(None, "--nest", help="province or region (scenario mode)."),
    time_limit: float = typer.Option(60.0, "--time-limit", help="Seconds."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("assignment.csv"), "--out", help="Output CSV."),
) -> None:
    """Partition units (or a scenario's accounts) into balanced, compact territories.

    Exit code 0 on a feasible plan, 3 when the tolerances could not be met (the best plan is
    still written), 2 on bad input, 1 on an internal error.
    """
    from territory import io
    from territory.alignment import partition, partition_units
    from territory.reports import write_assignment_csv

    names = [m.strip() for m in measures.split(",") if m.strip()]
    try:
        if reps is not None:
            from territory.model import Scenario

            scenario = Scenario(accounts=io.read_accounts(source), reps=io.read_reps(reps),
                                name=source.stem)
            plan = partition(scenario, territories, tolerance=tolerance,
                             measures=names or ("workload", "potential", "count"),
                             contiguous=not no_contiguity, objective=objective,  # type: ignore[arg-type]
                             nest=nest, time_limit_s=time_limit, seed=seed)  # type: ignore[arg-type]
            write_assignment_csv(plan.assignment_frame(), out)
            typer.echo(plan.summary())
            feasible = plan.feasible
        else:
            if not names:
                raise InvalidInputError("Give --measures (comma list of columns to balance) "
                                        "for a units table, or --reps for accounts.")
            if territories is None:
                raise InvalidInputError("Give --territories for a units table.")
            table = io.read_table(source)
            edge_table = io.read_table(edges) if edges is not None else None
            frame, result = partition_units(
                table, territories, measures=names, x=x, y=y, id_col=id_col,
                edges=edge_table, tolerance=tolerance, contiguous=not no_contiguity,
                objective=objective, time_limit_s=time_limit, seed=seed)  # type: ignore[arg-type]
            io.write_csv(frame, out)
            typer.echo(result.summary())
            feasible = result.feasible
    except (InvalidInputError, ValueError) as exc:
        _fail(exc, 2)
    except TerritoryError as exc:
        _fail(exc, 1)
    typer.echo(f"wrote {out}")
    raise typer.Exit(0 if feasible else 3)


def _read_assignment(path: Path) -> dict[str, str]:
    """account id -> rep id from a CSV with ``account_id`` (or ``id``) and ``rep_id``."""
    from territory import io

    table = io.read_table(path)
    acc_col = next((c for c in ("account_id", "id") if c in table.columns), None)
    if acc_col is None or "rep_id" not in table.columns:
        raise InvalidInputError(
            f"{path}: an assignment needs columns account_id (or id) and rep_id; found "
            f"{list(table.columns)[:10]}.")
    dup = table[acc_col].astype(str).duplicated(keep=False)
    if dup.any():
        raise InvalidInputError(
            f"{path}: account ids listed twice in the assignment: "
            f"{sorted(set(table.loc[dup, acc_col].astype(str)))[:10]}.")
    return dict(zip(table[acc_col].astype(str), table["rep_id"].astype(str), strict=True))


@app.command("route")
def route_cmd(
    accounts: Path = typer.Argument(..., help="Accounts table (CSV, Excel, GeoPackage, ...)."),
    reps: Path = typer.Argument(..., help="Reps table."),
    assignment: Path | None = typer.Option(
        None, "--assignment", help="CSV with account_id,rep_id (as written by `partition` or "
        "`plan`); default the accounts' current_rep column."),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Seconds per rep."),
    workers: int = typer.Option(1, "--workers", help="Processes (reps are planned in parallel)."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("out"), "--out", help="Folder for schedule.csv, "
                             "routes.geojson, route_days.csv and dropped.csv."),
) -> None:
    """Plan every rep's call cycle: who is visited on which day, in which order, at what time.

    Writes schedule.csv (rep_id, day, sequence, account_id, arrival, departure, ...),
    routes.geojson (one line per rep and day), route_days.csv and dropped.csv (each dropped
    visit with its reason). Exit code 0, 2 on bad input, 1 on an internal error.
    """
    from territory import io
    from territory.model import Scenario
    from territory.reports import write_geo
    from territory.routes import plan_routes

    try:
        scenario = Scenario(accounts=io.read_accounts(accounts), reps=io.read_reps(reps),
                            name=accounts.stem)
        mapping = _read_assignment(assignment) if assignment is not None else None
        if mapping is not None:
            unknown = sorted(set(mapping) - set(scenario.accounts.ids))
            if unknown:
                raise InvalidInputError(f"{assignment}: {len(unknown)} account id(s) not among "
                                        f"the accounts: {unknown[:10]}.")
        progress = _progress_bar("routes")
        routes = plan_routes(scenario, assignment=mapping, time_limit_s=time_limit, seed=seed,
                             workers=workers, progress=progress)
    except (InvalidInputError, ValueError) as exc:
        _fail(exc, 2)
    except TerritoryError as exc:
        _fail(exc, 1)
    out.mkdir(parents=True, exist_ok=True)
    io.write_csv(routes.schedule, out / "schedule.csv")
    io.write_csv(routes.days, out / "route_days.csv")
    io.write_csv(routes.dropped, out / "dropped.csv")
    if len(routes.unassigned):
        io.write_csv(routes.unassigned, out / "unassigned.csv")
    write_geo(routes.to_geodataframe(), out / "routes.geojson")
    typer.echo(routes.summary())
    typer.echo(f"wrote {out}/schedule.csv, routes.geojson, route_days.csv, dropped.csv")
    raise typer.Exit(1 if routes.failed else 0)


def _progress_bar(what: str) -> Any:
    """A tqdm bar as a ``progress(done, total)`` callback; silent when not on a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=what, unit="rep", file=sys.stderr)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return update


def main() -> None:  # pragma: no cover - console entry point alias
    try:
        app()
    except InvalidInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
