"""Every output of a national plan in one folder.

``write_all(plan, folder)`` writes:

=====================  =======================================================================
file                   content
=====================  =======================================================================
accounts.csv           the input accounts (``account_id``, lon/lat, potential, segment, ...)
reps.csv               the input reps (``rep_id``, home lon/lat, hours, ...)
assignment.csv         ``account_id, territory, rep_id`` (UTF-8 with BOM: Excel shows Chinese)
schedule.csv           ``rep_id, day, date, sequence, account_id, arrival, departure``, one row a
                       visit
territories.gpkg       territory polygons (Voronoi cells of their accounts, clipped to China)
                       with the per-territory measures; layer ``territories``
territories.geojson    the same polygons as GeoJSON
routes.geojson         one line per rep and day (home -> visits -> home or the night's stay)
plan.xlsx              sheets summary, territories, reps, accounts, schedule, dropped, loop
calendars/<rep>.ics    one calendar per rep, a visit an event
map.png                static map: territories, rep homes, province borders, labels
map.html               interactive map that works offline (Leaflet inlined, no tiles)
summary.json           the summary table, the loop, ``simulated_workload_hours`` per rep
=====================  =======================================================================

Without a start date in the scenario's calendar, the cycle is laid on the Monday after today for
the dates of the schedule and the calendars.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from territory import io, reports
from territory.io import write_csv

if TYPE_CHECKING:
    from territory.planning import NationalPlan

__all__ = ["write_all"]


def _next_monday(today: dt.date | None = None) -> dt.date:
    today = today or dt.date.today()
    return today + dt.timedelta(days=(7 - today.weekday()) % 7 or 7)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_all(plan: NationalPlan, folder: str | Path, *, maps: bool = True) -> dict[str, Path]:
    """Write every output of ``plan`` into ``folder`` (see the module docstring).

    Returns the paths written, by name.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sc = plan.scenario
    tp = plan.territories
    rp = plan.routes
    out: dict[str, Path] = {}
    calendar = sc.calendar if sc.calendar.dates is not None else sc.calendar.with_start(
        _next_monday())
    dates = calendar.dates or ()

    accounts = sc.accounts.frame.rename(columns={"id": "account_id"})
    out["accounts.csv"] = write_csv(accounts, folder / "accounts.csv")
    # Clock columns as "HH:MM" and the home as lon/lat, so read_reps reads the file back.
    reps = io._export_frame(sc.reps).rename(columns={"id": "rep_id", "home_lon": "lon",
                                                      "home_lat": "lat"})
    out["reps.csv"] = write_csv(reps, folder / "reps.csv")
    assignment = tp.assignment_frame()
    if "name" in sc.accounts.frame:
        assignment["name"] = sc.accounts.frame["name"].to_numpy()
    out["assignment.csv"] = reports.write_assignment_csv(assignment, folder / "assignment.csv")

    schedule = rp.schedule.copy()
    schedule["date"] = [dates[d].isoformat() for d in schedule["day"]]
    cols = ["rep_id", "day", "date", "sequence", "account_id", "arrival", "start",
            "departure", "visit"]
    out["schedule.csv"] = write_csv(schedule[cols], folder / "schedule.csv")

    polygons = reports.territory_polygons(sc.accounts.lonlat, tp.territory)
    table = tp.territories.reset_index(drop=True)
    table["territory_index"] = np.arange(len(table))
    sim = plan.simulated_h
    table["simulated_workload_h"] = table["rep_id"].map(sim).astype(float)
    gdf = polygons.merge(table, left_on="territory", right_on="territory_index",
                         how="left", suffixes=("_idx", ""))
    gdf = gdf.drop(columns=[c for c in ("territory_idx", "territory_index") if c in gdf])
    out["territories.gpkg"] = reports.write_geo(gdf, folder / "territories.gpkg",
                                                layer="territories")
    out["territories.geojson"] = reports.write_geo(gdf, folder / "territories.geojson")

    stays = rp.days.loc[rp.days["stay_account"] != "", ["rep_id", "day", "stay_account"]] \
        .rename(columns={"stay_account": "account_id"}) if len(rp.days) else None
    lines = reports.route_lines(schedule[["rep_id", "day", "date", "sequence", "account_id"]],
                                sc.accounts.frame[["id", "lon", "lat"]], sc.reps.frame,
                                stays=stays if stays is not None and len(stays) else None)
    out["routes.geojson"] = reports.write_geo(lines, folder / "routes.geojson")

    summary = plan.summary_table()
    loop = pd.DataFrame([r.to_dict() for r in plan.rounds])
    reps_sheet = rp.reps.copy()
    reps_sheet["estimated_workload_h"] = reps_sheet["rep_id"].map(plan.estimated_h)
    out["plan.xlsx"] = reports.write_workbook(folder / "plan.xlsx", {
        "summary": summary.T.reset_index().set_axis(["measure", "value"], axis=1)
        .astype({"value": str}),
        "territories": table.drop(columns=["territory_index"]),
        "reps": reps_sheet,
        "accounts": accounts.merge(assignment[["account_id", "territory", "rep_id"]],
                                   on="account_id", how="left"),
        "schedule": schedule[cols],
        "dropped": rp.dropped,
        "loop": loop,
    }, title="territory-planner plan")

    info_cols = ["id", "lon", "lat"] + (["name"] if "name" in sc.accounts.frame else [])
    info = sc.accounts.frame[info_cols].rename(columns={"id": "account_id"})
    reports.write_ics_all(schedule[["rep_id", "day", "date", "sequence", "account_id",
                                    "arrival", "start", "departure", "visit"]],
                          folder, account_info=info)
    out["calendars"] = folder / "calendars"

    if maps:
        from territory import maps as static
        from territory import webmap

        out["map.png"] = static.static_map(
            folder / "map.png", points=sc.accounts.lonlat, labels=assignment["territory"].to_numpy(),
            label_kind="territory", homes=sc.reps.home_lonlat,
            home_labels=[str(r) for r in sc.reps.ids], territories=gdf,
            title=f"{len(tp.territory_ids)} territories, {len(sc.accounts):,} accounts")
        acc_points = pd.DataFrame({
            "lon": sc.accounts.lon, "lat": sc.accounts.lat,
            "territory": assignment["territory"], "rep_id": assignment["rep_id"],
            "account_id": sc.accounts.ids,
            "segment": sc.accounts.frame["segment"].to_numpy()})
        homes = sc.reps.frame[["id", "home_lon", "home_lat"]].rename(
            columns={"id": "rep_id", "home_lon": "lon", "home_lat": "lat"})
        out["map.html"] = webmap.interactive_map(
            folder / "map.html", territories=gdf, accounts=acc_points, homes=homes,
            routes=lines, title=f"{len(tp.territory_ids)} territories")

    payload = plan.to_dict()
    payload["summary_table"] = summary.iloc[0].to_dict()
    payload["cycle_start"] = dates[0].isoformat() if dates else None
    path = folder / "summary.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2, default=_json_default),
                    encoding="utf-8")
    out["summary.json"] = path
    return out
