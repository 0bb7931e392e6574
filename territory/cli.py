"""The ``territory`` command line: ``demo``, ``plan``, ``partition``, ``route``, ``report``,
``compare``.

Exit codes follow the service contract (``territory.contract``): 0 ok, 1 internal error, 2 bad
input, 3 no feasible plan (the best plan found is still written and printed).

``plan --json REQUEST`` and ``partition --json REQUEST`` read a request
(``plan_request.v1.json`` / ``partition_request.v1.json``, ``territory/schemas/``) from a file or
``-`` (stdin) and print only the result (``plan_result.v1.json`` / ``partition_result.v1.json``)
or the error (``error.v1.json``) on stdout, as one line of JSON whose ``code`` is the exit code.
Progress bars and warnings go to stderr, the bars only on a terminal.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pandas as pd
import typer

from territory.errors import InvalidInputError, TerritoryError

if TYPE_CHECKING:
    from territory.alignment import TerritoryPlan
    from territory.model import Reps, Scenario
    from territory.planning import NationalPlan

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Balanced sales territories and rep call-cycle routes.")

#: Demo defaults, sized so that 5,000 accounts (109 reps) finish within 3 minutes on 2 cores.
#: Round 0 is one partition plus reps x route time / workers of routing, (15 + 109 x 0.5 / 2) s
#: = 42 s (about 80 s on a fresh install, which compiles the kernels first); later rounds route
#: only the reps whose accounts moved, 25 s falling to a few. The loop's wall-clock budget
#: stops starting rounds in time for the outputs (about 15 s).
DEMO_PARTITION_TIME_S = 6.0
DEMO_ROUTE_TIME_S = 0.5
DEMO_MAX_ROUNDS = 12
DEMO_LOOP_BUDGET_S = 155.0

_REQUEST_HELP = ("Read a JSON request from this file (- for stdin) instead of the tables and "
                 "print only the JSON result on stdout; its code is the exit code.")


@app.callback()
def _root() -> None:
    """territory-planner: plan territories and routes for a national sales force."""


# ----------------------------------------------------------------------------------------------
# helpers


def _exit_code(exc: BaseException) -> int:
    """The contract's exit code for an exception: 2 bad input, 3 infeasible, 1 internal."""
    from territory.contract import error_to_json

    return error_to_json(exc)[1]


def _fail(exc: Exception, code: int | None = None) -> NoReturn:
    """``error: ...`` on stderr, and exit with ``code`` (default: the contract's code)."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(_exit_code(exc) if code is None else code)


def _echo_json(message: Any) -> None:
    typer.echo(json.dumps(message, ensure_ascii=False, allow_nan=False))


def _fail_json(exc: BaseException) -> NoReturn:
    """The ``error.v1.json`` message on stdout, and exit with its code."""
    from territory.contract import error_to_json

    body, code = error_to_json(exc)
    _echo_json(body)
    raise typer.Exit(code)


def _read_request(source: str) -> str | bytes:
    """A request's text from a file, or from stdin for ``-``."""
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{source}: cannot read the request ({exc.strerror or exc}).",
                                hint="Give the path of a JSON request, or - to read it from "
                                     "stdin.") from None


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):,.1f}" if math.isfinite(float(value)) else "-"
    return str(value)


def _print_table(frame: pd.DataFrame, floatfmt: str = "{:,.1f}") -> None:
    formatters = {c: floatfmt.format for c in frame.columns
                  if pd.api.types.is_float_dtype(frame[c])}
    typer.echo(frame.to_string(index=False, formatters=formatters))


def _print_row(row: pd.Series | dict[str, Any], indent: str = "  ") -> None:
    """One row of figures (a summary table) as ``name  value`` lines."""
    items = list(row.items())
    width = max((len(str(k)) for k, _ in items), default=0)
    for key, value in items:
        typer.echo(f"{indent}{key!s:<{width}}  {_format(value)}")


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in (text or "").split(",") if t.strip()]


def _numbers(text: str | None, option: str, kind: type) -> list[Any]:
    """``"55,60,65"`` -> ``[55, 60, 65]``; a bad item is an ``InvalidInputError``."""
    out = []
    for item in _names(text):
        try:
            out.append(kind(item))
        except ValueError:
            what, example = ("a whole number", "55,60,65") if kind is int else \
                ("a number", "0.05,0.10")
            raise InvalidInputError(f"{option} {text!r}: {item!r} is not {what}.",
                                    hint=f"Give a comma list, e.g. {option} {example}."
                                    ) from None
    return out


def _tolerance(text: str | None) -> float | dict[str, float] | None:
    """``--tolerance``: ``0.05`` for every measure, or ``workload=0.05,count=0.10``."""
    if text is None or not text.strip():
        return None
    if "=" not in text:
        values = _numbers(text, "--tolerance", float)
        if len(values) != 1:
            raise InvalidInputError(f"--tolerance {text!r}: give one fraction (0.05) or one per "
                                    "measure (workload=0.05,potential=0.10).")
        return values[0]
    out: dict[str, float] = {}
    for part in _names(text):
        name, _, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(
                f"--tolerance {text!r}: {part!r} is not measure=fraction.",
                hint="E.g. --tolerance workload=0.05,potential=0.10.") from None
    return out


def _nest(value: str | None) -> str | None:
    if value is not None and value not in ("province", "region"):
        raise InvalidInputError(f"--nest {value!r}; expected province or region.")
    return value


def _given(**options: Any) -> dict[str, Any]:
    """The options given on the command line (None = not given: the library's default)."""
    return {k: v for k, v in options.items() if v is not None}


def _scenario_from_files(accounts: Path, reps: Path, weeks: int = 4) -> Scenario:
    from territory import io
    from territory.model import Calendar, Scenario

    return Scenario(accounts=io.read_accounts(accounts), reps=io.read_reps(reps),
                    calendar=Calendar.weekly(weeks), name=accounts.stem)


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


def _stage_progress() -> Callable[[str, int, int], None] | None:
    """A ``progress(stage, done, total)`` callback for ``plan``: one tqdm bar per stage
    (``partition``, ``routes round k``) on stderr; None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {"bar": None, "stage": None}

    def update(stage: str, done: int, total: int) -> None:
        bar = state["bar"]
        if bar is not None and (state["stage"] != stage or done < bar.n):
            bar.close()
            bar = None
        if bar is None:
            bar = tqdm(total=total, desc=stage, file=sys.stderr, dynamic_ncols=True,
                       unit="rep" if stage.startswith("routes") else "step")
            state["bar"], state["stage"] = bar, stage
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            state["bar"] = None

    return update


def _plan_code(result: NationalPlan) -> int:
    """As ``plan_result_to_json``: 1 a rep's routing failed, 0 feasible and within the
    workload tolerance, 3 otherwise."""
    if result.routes.failed:
        return 1
    return 0 if result.territories.feasible and result.within_tolerance else 3


def _show_plan(result: NationalPlan) -> None:
    typer.echo(result.summary())
    typer.echo("\nSummary:")
    _print_row(result.summary_table().iloc[0])


def _write_plan(result: NationalPlan, out: Path, maps: bool) -> dict[str, Path]:
    t0 = time.perf_counter()
    written = result.write(out, maps=maps)
    typer.echo(f"\nWrote {', '.join(written)} into {out} ({time.perf_counter() - t0:.1f} s)")
    return written


# ----------------------------------------------------------------------------------------------
# demo


@app.command()
def demo(
    accounts: int = typer.Option(5_000, "--accounts", min=1,
                                 help="Number of synthetic accounts, across all provinces."),
    out: Path = typer.Option(Path("out"), "--out", help="Output folder."),
    seed: int = typer.Option(0, "--seed", help="Random seed (scenario and plan)."),
    partition_time: float = typer.Option(DEMO_PARTITION_TIME_S, "--partition-time", min=0.01,
                                         help="Seconds for each partition."),
    route_time: float = typer.Option(DEMO_ROUTE_TIME_S, "--route-time", min=0.01,
                                     help="Seconds per rep for each routing."),
    max_rounds: int = typer.Option(DEMO_MAX_ROUNDS, "--max-rounds", min=0,
                                   help="Rebalancing rounds on the simulated workload."),
    loop_budget: float = typer.Option(DEMO_LOOP_BUDGET_S, "--loop-budget", min=1.0,
                                      help="Wall-clock seconds for the whole loop."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Processes for the routing (default: every CPU)."),
    maps: bool = typer.Option(True, "--maps/--no-maps", help="Draw map.png and map.html."),
) -> None:
    """Plan a synthetic national sales force end to end and write every output.

    Builds a scenario of ACCOUNTS accounts across China with the reps its workload needs
    (4-week cycle), plans territories and routes (balanced on the simulated workload), prints
    the summary and writes inputs (accounts.csv, reps.csv) and outputs (assignment.csv,
    schedule.csv, territories.gpkg, routes.geojson, plan.xlsx, calendars/, map.png, map.html,
    summary.json) into OUT. Exit code 0 (also when the plan misses a tolerance: the summary
    says so), 2 on bad input, 1 on an internal error.
    """
    from territory import synth
    from territory.planning import plan
    from territory.whatif import size_force_by_region

    t0 = time.perf_counter()
    try:
        scenario = synth.china_scenario(n_accounts=accounts, seed=seed)
    except (TerritoryError, ValueError) as exc:
        _fail(exc, 2)
    acc = scenario.accounts
    typer.echo(f"Scenario {scenario.name}: {len(acc):,} accounts in "
               f"{pd.Series(acc.province).nunique()} provinces, {len(scenario.reps)} reps, "
               f"{scenario.calendar.n_days}-day cycle (built in {time.perf_counter() - t0:.1f} s)")
    sizing = size_force_by_region(scenario)
    typer.echo("Workload and reps needed per region at 85 % utilisation:")
    _print_table(sizing.drop(columns=["level"]).rename(columns={"group": "region"}))
    n_workers = workers or os.cpu_count() or 1
    typer.echo(f"\nPlanning: partition {partition_time:g} s, routes {route_time:g} s per rep, "
               f"up to {max_rounds} rebalancing rounds, {n_workers} worker(s)...\n")
    try:
        result = plan(scenario, partition_time_s=partition_time, route_time_s=route_time,
                      max_rounds=max_rounds, workers=n_workers, seed=seed,
                      time_limit_s=loop_budget, progress=_stage_progress())
    except TerritoryError as exc:
        _fail(exc)
    _show_plan(result)
    try:
        _write_plan(result, out, maps)
    except TerritoryError as exc:
        _fail(exc)
    typer.echo(f"Demo done in {time.perf_counter() - t0:.0f} s.")


# ----------------------------------------------------------------------------------------------
# plan


@app.command("plan")
def plan_cmd(
    ctx: typer.Context,
    accounts: Path | None = typer.Argument(
        None, help="Accounts table (CSV, Excel, GeoPackage, GeoJSON, Parquet)."),
    reps: Path | None = typer.Argument(None, help="Reps table."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default out; with "
                                    "--json, outputs are written only when given)."),
    json_request: str | None = typer.Option(None, "--json", metavar="REQUEST.json|-",
                                            help=_REQUEST_HELP),
    tolerance: str | None = typer.Option(
        None, "--tolerance", help="Partition tolerance: 0.05, or per measure "
        "workload=0.05,potential=0.10 (default plan()'s)."),
    workload_tolerance: float | None = typer.Option(
        None, "--workload-tolerance", help="Every rep's simulated workload within this "
        "fraction of the mean (default plan()'s, 0.10)."),
    measures: str | None = typer.Option(None, "--measures", help="Comma list of measures to "
                                        "balance; must include workload."),
    nest: str | None = typer.Option(None, "--nest", help="Keep territories inside a "
                                    "province or a region."),
    no_contiguity: bool = typer.Option(False, "--no-contiguity",
                                       help="Do not require contiguous territories."),
    realign: bool = typer.Option(False, "--realign",
                                 help="Start from the accounts' current_rep."),
    max_moved: float | None = typer.Option(None, "--max-moved", min=0.0, max=1.0,
                                           help="With --realign: at most this share of the "
                                           "accounts change rep."),
    partition_time: float | None = typer.Option(None, "--partition-time", min=0.01,
                                                help="Seconds for each partition."),
    route_time: float | None = typer.Option(None, "--route-time", min=0.01,
                                            help="Seconds per rep for each routing."),
    max_rounds: int | None = typer.Option(None, "--max-rounds", min=0,
                                          help="Rebalancing rounds on the simulated workload."),
    time_limit: float | None = typer.Option(None, "--time-limit", min=0.01,
                                            help="Wall-clock seconds for the rebalancing loop."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    workers: int | None = typer.Option(None, "--workers", min=1,
                                       help="Processes for the routing (default 1)."),
    backend: str = typer.Option("local", "--executor", help="Where reps are routed: local "
                                "(process pool) or dask (a LocalCluster of --workers)."),
    scheduler: str | None = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                         help="Dask scheduler (tcp://host:8786): route there."),
    weeks: int = typer.Option(4, "--weeks", min=1, help="Call cycle in weeks (Mon-Fri)."),
    maps: bool = typer.Option(True, "--maps/--no-maps", help="Draw map.png and map.html."),
) -> None:
    """Plan territories and every rep's call cycle, balanced on the simulated workload.

    Prints the summary and writes every output (accounts.csv, reps.csv, assignment.csv,
    schedule.csv, territories.gpkg, routes.geojson, plan.xlsx, calendars/, map.png, map.html,
    summary.json) into OUT. With --json the plan's options come from the request (options
    given here fill in those it leaves out; its calendar replaces --weeks).

    Exit code 0 when the territories are feasible and every rep's simulated workload is within
    the workload tolerance, 3 when not (the best plan is still written), 2 on bad input, 1 on
    an internal error (also when a rep could not be routed).
    """
    from territory.executor import make_executor
    from territory.planning import plan

    try:
        options = _given(tolerance=_tolerance(tolerance), workload_tolerance=workload_tolerance,
                         measures=_names(measures) or None, nest=_nest(nest),
                         contiguous=False if no_contiguity else None,
                         realign=True if realign else None, max_moved=max_moved,
                         partition_time_s=partition_time, route_time_s=route_time,
                         max_rounds=max_rounds, time_limit_s=time_limit, seed=seed,
                         workers=workers)
        if backend != "local" or scheduler is not None:
            options["executor"] = make_executor(workers, backend, scheduler)
            ctx.call_on_close(options["executor"].close)
    except InvalidInputError as exc:
        if json_request is not None:
            _fail_json(exc)
        _fail(exc)
    if json_request is not None:
        _plan_json(json_request, accounts, reps, options, out, maps)
    if accounts is None or reps is None:
        _fail(InvalidInputError("Give ACCOUNTS and REPS (tables), or --json REQUEST.json."))
    try:
        scenario = _scenario_from_files(accounts, reps, weeks)
        result = plan(scenario, **options, progress=_stage_progress())
    except TerritoryError as exc:
        _fail(exc)
    _show_plan(result)
    try:
        _write_plan(result, out or Path("out"), maps)
    except TerritoryError as exc:
        _fail(exc)
    code = _plan_code(result)
    if code == 3:
        typer.echo("Exit code 3: no plan meets every tolerance; the best found is written.",
                   err=True)
    elif code == 1:
        typer.echo(f"Exit code 1: routing failed for {sorted(result.routes.failed)}.", err=True)
    raise typer.Exit(code)


def _plan_json(source: str, accounts: Path | None, reps: Path | None,
               cli_options: dict[str, Any], out: Path | None, maps: bool) -> NoReturn:
    """``plan --json``: request in, ``plan_result`` (or ``error``) JSON out, nothing else."""
    from territory import contract
    from territory.planning import plan

    try:
        if accounts is not None or reps is not None:
            raise InvalidInputError("--json reads the accounts and reps from the request; "
                                    "do not give ACCOUNTS and REPS as well.")
        scenario, options = contract.parse_plan_request(_read_request(source))
        result = plan(scenario, **{**cli_options, **options}, progress=_stage_progress())
        message = contract.plan_result_to_json(result)
        if out is not None:
            result.write(out, maps=maps)
    except Exception as exc:  # the contract: every failure is an error message with a code
        _fail_json(exc)
    _echo_json(message)
    raise typer.Exit(int(message["code"]))


# ----------------------------------------------------------------------------------------------
# partition and route


@app.command("partition")
def partition_cmd(
    source: Path | None = typer.Argument(None, help="Units table (id, x, y, measures) or "
                                         "accounts."),
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
    out: Path | None = typer.Option(None, "--out", help="Output CSV (default assignment.csv; "
                                    "with --json, written only when given)."),
    json_request: str | None = typer.Option(None, "--json", metavar="REQUEST.json|-",
                                            help=_REQUEST_HELP + " Options come from the "
                                            "request; the options here are ignored."),
) -> None:
    """Partition units (or a scenario's accounts) into balanced, compact territories.

    Exit code 0 on a feasible plan, 3 when the tolerances could not be met (the best plan is
    still written), 2 on bad input, 1 on an internal error.
    """
    from territory import io
    from territory.alignment import partition, partition_units
    from territory.reports import write_assignment_csv

    if json_request is not None:
        _partition_json(json_request, source, out)
    out = out or Path("assignment.csv")
    names = _names(measures)
    try:
        if source is None:
            raise InvalidInputError("Give a units or accounts table, or --json REQUEST.json.")
        if reps is not None:
            from territory.model import Scenario

            _nest(nest)  # a bad --nest is refused before the tables are read
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
    except TerritoryError as exc:
        _fail(exc)
    typer.echo(f"wrote {out}")
    raise typer.Exit(0 if feasible else 3)


def _partition_json(source: str, table: Path | None, out: Path | None) -> NoReturn:
    """``partition --json``: request in, ``partition_result`` (or ``error``) JSON out."""
    from territory import contract
    from territory.alignment import partition
    from territory.reports import write_assignment_csv

    try:
        if table is not None:
            raise InvalidInputError("--json reads the accounts and reps from the request; "
                                    "do not give a table as well.")
        scenario, options = contract.parse_partition_request(_read_request(source))
        result = partition(scenario, **options)
        message = contract.partition_result_to_json(result)
        if out is not None:
            write_assignment_csv(result.assignment_frame(), out)
    except Exception as exc:  # the contract: every failure is an error message with a code
        _fail_json(exc)
    _echo_json(message)
    raise typer.Exit(int(message["code"]))


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
    rep = [v.strip() if isinstance(v, str) else "" if v is None or pd.isna(v) else str(v)
           for v in table["rep_id"]]  # a blank rep id: no rep
    return dict(zip(table[acc_col].astype(str), rep, strict=True))


@app.command("route")
def route_cmd(
    ctx: typer.Context,
    accounts: Path = typer.Argument(..., help="Accounts table (CSV, Excel, GeoPackage, ...)."),
    reps: Path = typer.Argument(..., help="Reps table."),
    assignment: Path | None = typer.Option(
        None, "--assignment", help="CSV with account_id,rep_id (as written by `partition` or "
        "`plan`); default the accounts' current_rep column."),
    time_limit: float = typer.Option(10.0, "--time-limit", help="Seconds per rep."),
    workers: int = typer.Option(1, "--workers", help="Processes (reps are planned in parallel)."),
    backend: str = typer.Option("local", "--executor", help="Where reps are routed: local "
                                "(process pool) or dask (a LocalCluster of --workers)."),
    scheduler: str | None = typer.Option(None, "--scheduler", metavar="ADDRESS",
                                         help="Dask scheduler (tcp://host:8786): route there."),
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
    from territory.executor import make_executor
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
        runner = None
        if backend != "local" or scheduler is not None:
            runner = make_executor(workers, backend, scheduler)
            ctx.call_on_close(runner.close)
        routes = plan_routes(scenario, assignment=mapping, time_limit_s=time_limit, seed=seed,
                             workers=workers, executor=runner, progress=progress)
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




# ----------------------------------------------------------------------------------------------
# report


_PLAN_FILES = ("summary.json", "accounts.csv", "reps.csv", "assignment.csv")


def _cycle_weeks(schedule: Path, cycle_start: Any) -> int:
    """Weeks of the cycle a plan folder was made for: from its schedule's dates, else 4."""
    import datetime as dt

    from territory import io

    try:
        dates = io.read_table(schedule)["date"].dropna() if schedule.is_file() else ()
        if len(dates) and cycle_start:
            last = max(dt.date.fromisoformat(str(d)) for d in dates)
            span = (last - dt.date.fromisoformat(str(cycle_start))).days + 1
            return max(1, math.ceil(span / 7))
    except (TerritoryError, KeyError, ValueError):
        pass
    return 4


def _read_plan_reps(path: Path) -> Reps:
    """reps.csv of a plan folder. ``outputs.write_all`` writes the clock columns as minutes
    from midnight (``510``), which ``read_reps`` would read as clock times (05:10); a clock
    column without any ``:`` is therefore taken as minutes here."""
    from territory import io
    from territory.hours import format_clock

    table = io.read_table(path)
    for col in ("work_start", "work_end", "lunch_start", "lunch_end"):
        if col in table.columns:
            cells = table[col].dropna().astype(str).str.strip()
            if len(cells) and not cells.str.contains(":").any():
                try:
                    table[col] = [None if v is None or pd.isna(v) else format_clock(float(v))
                                  for v in table[col]]
                except ValueError:
                    pass  # not minutes after all: read_reps names the bad cells
    return io.read_reps(table, allow_outside_china=True)


def _load_plan_folder(folder: Path, weeks: int | None
                      ) -> tuple[dict[str, Any], Scenario, TerritoryPlan]:
    """A folder written by ``NationalPlan.write``: its summary.json, scenario and territories.

    The territories are rebuilt from assignment.csv (its ``rep_id`` is the truth, so a plan
    edited by hand is read as edited) and summary.json (measures, tolerances, the plan's own
    moves with their reasons): enough for ``realignment_report``, not for re-solving.
    """
    from territory import io
    from territory.alignment import TerritoryPlan
    from territory.model import Calendar, Scenario

    missing = [f for f in _PLAN_FILES if not (folder / f).is_file()]
    if missing:
        raise InvalidInputError(f"{folder}: not a plan folder; missing {', '.join(missing)}.",
                                hint="Give the --out folder of `territory plan` or `territory "
                                     "demo` (NationalPlan.write).")
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{folder / 'summary.json'}: cannot be read ({exc}).") from None
    tpd = summary.get("territories") if isinstance(summary, dict) else None
    if not isinstance(tpd, dict):
        raise InvalidInputError(f"{folder / 'summary.json'} holds no territories; is it the "
                                "summary.json of NationalPlan.write?")
    if weeks is None:
        weeks = _cycle_weeks(folder / "schedule.csv", summary.get("cycle_start"))
    accounts = io.read_accounts(folder / "accounts.csv", allow_outside_china=True)
    scenario = Scenario(accounts=accounts, reps=_read_plan_reps(folder / "reps.csv"),
                        calendar=Calendar.weekly(weeks), name=folder.resolve().name)

    table = io.read_table(folder / "assignment.csv")
    need = {"account_id", "territory", "rep_id"} - set(table.columns)
    if need:
        raise InvalidInputError(f"{folder / 'assignment.csv'}: missing column(s) "
                                f"{sorted(need)}.")

    def text(values: Any) -> list[str]:
        return [v.strip() if isinstance(v, str) else "" if v is None or pd.isna(v) else str(v)
                for v in values]

    ids = [str(a) for a in accounts.ids]
    known = set(ids)
    table_ids = text(table["account_id"])
    extra = [a for a in table_ids if a not in known]
    if extra:
        raise InvalidInputError(f"{folder / 'assignment.csv'}: {len(extra)} account id(s) not "
                                f"in accounts.csv: {extra[:10]}.")
    rep_of = dict(zip(table_ids, text(table["rep_id"]), strict=True))
    label_of = dict(zip(table_ids, text(table["territory"]), strict=True))
    # One territory per rep of the plan (the plan's order, then reps only the file names).
    rep_ids = [str(r) for r in (tpd.get("rep_of_territory") or {}).values() if r]
    rep_ids += sorted({r for r in rep_of.values() if r} - set(rep_ids))
    position = {r: k for k, r in enumerate(rep_ids)}
    territory = np.array([position.get(rep_of.get(a, ""), -1) for a in ids], dtype=np.int64)
    names: dict[int, str] = {}
    for a, k in zip(ids, territory, strict=True):
        if k >= 0:
            names.setdefault(int(k), label_of.get(a) or f"T{k + 1:03d}")
    inverse = {str(r): str(t) for t, r in (tpd.get("rep_of_territory") or {}).items()}
    territory_ids = tuple(names.get(k, inverse.get(r, f"T{k + 1:03d}"))
                          for k, r in enumerate(rep_ids))
    moved = pd.DataFrame(tpd.get("moved") or [],
                         columns=["account_id", "from_rep", "to_rep", "reason"]).astype(str)
    parameters = dict(tpd.get("parameters") or {})
    tp = TerritoryPlan(
        account_ids=np.array(ids, dtype=object), territory=territory,
        territory_ids=territory_ids, rep_ids=tuple(rep_ids),
        territories=pd.DataFrame(tpd.get("territories") or []),
        measure_names=tuple(tpd.get("measures") or ()),
        tolerance=np.asarray(tpd.get("tolerance") or [], dtype=float),
        feasible=bool(tpd.get("feasible")), violations=tuple(tpd.get("violations") or ()),
        moved=moved,
        unassigned=pd.DataFrame({"account_id": np.array(ids, dtype=object)[territory < 0],
                                 "reason": "no rep in assignment.csv"}),
        objective=float(tpd.get("objective") or math.nan),
        objective_name=str(tpd.get("objective_name") or ""),
        lower_bound=tpd.get("lower_bound"), lower_bound_kind=tpd.get("lower_bound_kind"),
        runtime_s=float(tpd.get("runtime_s") or 0.0), seed=int(tpd.get("seed") or 0),
        parameters=parameters, lonlat=accounts.lonlat,
        contiguous_required=bool(parameters.get("contiguous", True)),
        notes=tuple(tpd.get("notes") or ()), scenario=scenario)
    return summary, scenario, tp


def _rep_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Per rep: accounts, estimated and simulated hours, deviation from the mean, routes."""
    sim = pd.Series(summary.get("simulated_workload_hours") or {}, dtype=float)
    est = pd.Series(summary.get("estimated_workload_hours") or {}, dtype=float)
    routes = pd.DataFrame((summary.get("routes") or {}).get("reps") or [])
    frame = pd.DataFrame({"rep_id": sim.index.astype(str), "simulated_h": sim.to_numpy()})
    frame["estimated_h"] = frame["rep_id"].map(est)
    mean = float(sim.mean()) if len(sim) else math.nan
    frame["dev_pct"] = 100 * (frame["simulated_h"] - mean) / mean
    if len(routes) and "rep_id" in routes:
        keep = [c for c in ("accounts", "visits_served", "visits_dropped", "km", "utilisation")
                if c in routes]
        frame = frame.merge(routes[["rep_id", *keep]].astype({"rep_id": str}), on="rep_id",
                            how="left")
        if "utilisation" in frame:
            frame["utilisation"] = 100 * frame["utilisation"].astype(float)
            frame = frame.rename(columns={"utilisation": "utilisation_pct"})
    return frame.reindex(frame["dev_pct"].abs().sort_values(ascending=False,
                                                            kind="stable").index)


@app.command("report")
def report_cmd(
    plan_dir: Path = typer.Argument(..., help="Folder written by `territory plan` or `demo`."),
    current: Path | None = typer.Option(
        None, "--current", help="Current alignment: CSV (or any table) with account_id and "
        "rep_id. Default: the accounts' current_rep column, when filled."),
    out: Path | None = typer.Option(None, "--out", help="Folder for realignment_moves.csv and "
                                    "realignment_by_rep.csv (default PLAN_DIR)."),
    weeks: int | None = typer.Option(None, "--weeks", min=1, help="Cycle weeks for the "
                                     "workload estimate (default: from the schedule's dates)."),
    top: int = typer.Option(30, "--top", min=1, help="Reps listed (largest deviation first)."),
) -> None:
    """Summarise a written plan and, against a current alignment, what it changes.

    Prints the summary table, the loop and each rep's simulated workload. With a current
    alignment (--current, or the accounts' current_rep column) also prints the realignment
    (disruption in accounts and potential, reasons, the reps that gain and lose) and writes
    realignment_moves.csv and realignment_by_rep.csv. Exit code 0, 2 on bad input, 1 on an
    internal error.
    """
    from territory.whatif import realignment_report

    try:
        summary, scenario, tp = _load_plan_folder(plan_dir, weeks)
        mapping = _read_assignment(current) if current is not None else None
    except TerritoryError as exc:
        _fail(exc)
    table = summary.get("summary_table") or summary.get("summary") or {}
    tol = float(summary.get("workload_tolerance") or math.nan)
    verdict = "within" if summary.get("within_tolerance") else "NOT within"
    typer.echo(f"Plan {plan_dir}: {len(scenario.accounts):,} accounts, {len(scenario.reps)} reps; "
               f"territories {'feasible' if tp.feasible else 'INFEASIBLE'}; every rep's "
               f"simulated workload {verdict} ±{100 * tol:.0f} % of the mean")
    _print_row(table)
    for v in tp.violations:
        typer.echo(f"  violated: {v}")
    rounds = summary.get("rounds") or []
    if rounds:
        typer.echo("Loop (max deviation from the mean):")
        for r in rounds:
            typer.echo(f"  round {r.get('round')}: estimated "
                       f"{100 * float(r.get('max_dev_estimated', math.nan)):5.1f} %, simulated "
                       f"{100 * float(r.get('max_dev_simulated', math.nan)):5.1f} %, "
                       f"{r.get('accounts_moved', 0)} accounts moved")
    reps = _rep_table(summary)
    if len(reps):
        typer.echo("Reps by simulated workload, largest deviation first:")
        _print_table(reps.head(top))
        if len(reps) > top:
            typer.echo(f"  ... and {len(reps) - top} more (plan.xlsx, sheet reps)")

    has_current = (scenario.accounts.frame["current_rep"].astype(str).str.strip() != "").any()
    if mapping is None and not has_current:
        typer.echo("\nNo current alignment (give --current, or fill the accounts' current_rep): "
                   "no realignment report.")
        raise typer.Exit(0)
    try:
        report = realignment_report(mapping, tp, scenario)
        written = report.write(out or plan_dir)
    except TerritoryError as exc:
        _fail(exc)
    typer.echo("")
    typer.echo(report.summary())
    typer.echo(f"wrote {', '.join(str(p) for p in written.values())}")
    raise typer.Exit(0)


# ----------------------------------------------------------------------------------------------
# compare


@app.command("compare")
def compare_cmd(
    accounts: Path = typer.Argument(..., help="Accounts table."),
    reps: Path = typer.Argument(..., help="Reps table."),
    reps_list: str | None = typer.Option(
        None, "--reps-list", help="Headcounts to compare, e.g. 55,60,65 (synthetic reps are "
        "placed anew for each; others: the first N are kept)."),
    tolerances: str | None = typer.Option(None, "--tolerances", help="Partition tolerances "
                                          "to compare, e.g. 0.05,0.10."),
    realign_vs_keep: bool = typer.Option(
        False, "--realign-vs-keep", help="Compare keeping the current alignment (current_rep, "
        "no move), realigning from it, and planning afresh."),
    out: Path | None = typer.Option(None, "--out", help="Folder for compare.csv (default out; "
                                    "with --json, written only when given)."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON "
                                  "(Comparison.to_dict) on stdout, nothing else; errors too."),
    tolerance: str | None = typer.Option(None, "--tolerance", help="Partition tolerance of "
                                         "every variant (see `plan`)."),
    workload_tolerance: float | None = typer.Option(None, "--workload-tolerance"),
    measures: str | None = typer.Option(None, "--measures", help="Comma list of measures."),
    nest: str | None = typer.Option(None, "--nest", help="province or region."),
    max_moved: float | None = typer.Option(None, "--max-moved", min=0.0, max=1.0),
    partition_time: float | None = typer.Option(None, "--partition-time", min=0.01),
    route_time: float | None = typer.Option(None, "--route-time", min=0.01),
    max_rounds: int | None = typer.Option(None, "--max-rounds", min=0),
    seed: int | None = typer.Option(None, "--seed"),
    workers: int | None = typer.Option(None, "--workers", min=1),
    weeks: int = typer.Option(4, "--weeks", min=1, help="Call cycle in weeks (Mon-Fri)."),
) -> None:
    """Plan variants of one scenario and put their headline figures side by side.

    Give one of --reps-list, --tolerances or --realign-vs-keep. Prints the table (disruption
    against the accounts' current_rep when filled) and writes compare.csv. Exit code 0 when
    every variant produced a plan, 3 when one did not, 2 on bad input, 1 on an internal error.
    """
    from territory.whatif import compare, headcount_variants

    try:
        chosen = [name for name, given in (("--reps-list", reps_list),
                                           ("--tolerances", tolerances),
                                           ("--realign-vs-keep", realign_vs_keep)) if given]
        if len(chosen) != 1:
            raise InvalidInputError(
                f"Give one of --reps-list, --tolerances, --realign-vs-keep (got "
                f"{', '.join(chosen) or 'none'}).", hint="E.g. --reps-list 55,60,65.")
        common = _given(tolerance=_tolerance(tolerance), workload_tolerance=workload_tolerance,
                        measures=_names(measures) or None, nest=_nest(nest),
                        max_moved=max_moved, partition_time_s=partition_time,
                        route_time_s=route_time, max_rounds=max_rounds, seed=seed,
                        workers=workers)
        scenario = _scenario_from_files(accounts, reps, weeks)
        if reps_list:
            variants = headcount_variants(_numbers(reps_list, "--reps-list", int))
        elif tolerances:
            variants = {f"tolerance {t:g}": {"tolerance": t}
                        for t in _numbers(tolerances, "--tolerances", float)}
        else:
            if not (scenario.accounts.frame["current_rep"].astype(str) != "").any():
                raise InvalidInputError("--realign-vs-keep needs the current alignment: fill "
                                        "the accounts' current_rep column.")
            variants = {"keep": {"realign": True, "max_moved": 0.0, "max_rounds": 0},
                        "realign": {"realign": True}, "fresh": {"realign": False}}
        if not variants:
            raise InvalidInputError(f"{chosen[0]}: give at least one value.")
        comparison = compare(scenario, variants, **common, progress=_stage_progress())
        folder = out if out is not None or json_out else Path("out")
        written = comparison.write(folder) if folder is not None else {}
        if json_out:
            message = comparison.to_dict()
    except Exception as exc:
        if json_out:
            _fail_json(exc)
        if not isinstance(exc, TerritoryError):
            raise
        _fail(exc)
    if json_out:
        _echo_json(message)
    else:
        typer.echo(comparison.summary())
        typer.echo(f"wrote {', '.join(str(p) for p in written.values())}")
    raise typer.Exit(3 if comparison.failed else 0)


# ----------------------------------------------------------------------------------------------
# serve


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port."),
    max_jobs: int = typer.Option(2, "--max-jobs", min=1,
                                 help="Jobs solving at once (one worker process each)."),
    max_queued: int = typer.Option(100, "--max-queued", min=0,
                                   help="Jobs waiting; more are refused with 429."),
    job_time_limit: float = typer.Option(600.0, "--job-time-limit", min=0.1,
                                         help="Seconds a job may run before it is killed."),
    max_payload_mb: float = typer.Option(20.0, "--max-payload-mb", min=0.001,
                                         help="Largest request body in MiB (413 beyond)."),
    retention: float = typer.Option(3600.0, "--retention", min=1.0,
                                    help="Seconds a finished job's result is kept."),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="Routing processes one plan job may use."),
    openapi: Path | None = typer.Option(None, "--openapi", metavar="FILE",
                                        help="Write the OpenAPI document to FILE and exit."),
) -> None:
    """Serve the JSON contract over HTTP: submit jobs, poll them, fetch results (/docs)."""
    try:
        import uvicorn

        from territory import service
    except ImportError as exc:
        _fail(InvalidInputError(f"territory serve needs the service extra ({exc.name} is "
                                "missing): pip install 'territory-planner[service]'"), 1)
    settings = service.ServiceSettings(
        max_payload_bytes=int(max_payload_mb * 2**20), max_concurrent_jobs=max_jobs,
        max_queued_jobs=max_queued, job_time_limit_s=job_time_limit,
        result_retention_s=retention, workers=workers)
    app_ = service.create_app(settings)
    if openapi is not None:
        openapi.write_text(json.dumps(service.openapi_document(app_), indent=2,
                                      ensure_ascii=False), encoding="utf-8")
        typer.echo(f"wrote {openapi}")
        raise typer.Exit(0)
    # One server process: the jobs live in its memory (scale with --max-jobs).
    uvicorn.run(app_, host=host, port=port, workers=1, log_level="info")


def main() -> None:  # pragma: no cover - console entry point alias
    try:
        app()
    except InvalidInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
