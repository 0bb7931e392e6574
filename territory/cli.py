"""The ``territory`` command line.

Exit codes follow the service contract: 0 ok, 1 internal error, 2 bad input, 3 no feasible plan.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

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


def main() -> None:  # pragma: no cover - console entry point alias
    try:
        app()
    except InvalidInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
