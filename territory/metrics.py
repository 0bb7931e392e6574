"""Measures of a plan: balance, compactness, contiguity, disruption.

Plain functions of an assignment, so they judge a hand-drawn plan from sales operations as well
as solver output; the partitioner reports through them, so what is enforced and what is reported
cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from solvers._unique import unique_int
from solvers.partition import metrics as core
from territory.geo import account_graph, project_km

__all__ = ["disruption", "evaluate_assignment", "moves_table", "territory_table"]


def territory_table(
    *,
    xy: np.ndarray,
    territory: np.ndarray,
    p: int,
    measures: np.ndarray,
    names: Sequence[str],
    targets: np.ndarray | None = None,
    centers_xy: np.ndarray | None = None,
    group: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-territory measures, deviation from target, compactness and contiguity.

    Parameters
    ----------
    xy:
        (n, 2) planar km (``territory.geo.project_km``).
    territory:
        (n,) territory index per account (-1 = unassigned, ignored).
    measures, names:
        (n, m) values and their names.
    targets:
        (p, m) targets; default the mean per territory.
    centers_xy:
        (p, 2) fixed centres (rep homes) in km; default each territory's medoid account.
    group:
        Optional part labels: the contiguity graph is joined within parts.
    edges:
        Account adjacency to judge contiguity (built when None).

    Returns
    -------
    (table, edges): columns per measure ``m``, ``m_target``, ``m_dev`` (signed fraction), then
    ``accounts``, ``contiguous``, ``pieces``, ``sum_distance_km``, ``mean_distance_km``,
    ``diameter_km``, ``centre_lon``, ``centre_lat``.
    """
    territory = np.asarray(territory, dtype=np.int64)
    measures = np.asarray(measures, dtype=float).reshape(len(territory), -1)
    totals = core.territory_totals(territory, measures, p)
    if targets is None:
        targets = np.broadcast_to(measures[territory >= 0].sum(axis=0) / p, totals.shape)
    dev = core.relative_deviation(totals, np.asarray(targets, dtype=float))
    frame: dict[str, Any] = {}
    for a, name in enumerate(names):
        frame[name] = totals[:, a]
        frame[f"{name}_target"] = np.asarray(targets)[:, a]
        frame[f"{name}_dev"] = dev[:, a]
    count = np.bincount(territory[territory >= 0], minlength=p)
    frame["accounts"] = count
    if edges is None:
        edges, _ = account_graph(xy, group)
    pieces = _pieces(territory, p, edges)
    frame["contiguous"] = pieces == 1
    frame["pieces"] = pieces
    if centers_xy is None:
        med = core.weighted_medoids(xy, np.ones(len(xy)), territory, p)
        centers_xy = np.where(med[:, None] >= 0, xy[np.maximum(med, 0)], np.nan)
    sd = core.territory_sum_distance(xy, np.ones(len(xy)), territory,
                                     np.nan_to_num(centers_xy))
    frame["sum_distance_km"] = sd
    frame["mean_distance_km"] = sd / np.maximum(count, 1)
    frame["diameter_km"] = core.territory_diameters(xy, territory, p)
    from territory.geo import unproject_km

    ll = unproject_km(np.nan_to_num(centers_xy))
    frame["centre_lon"] = ll[:, 0]
    frame["centre_lat"] = ll[:, 1]
    return pd.DataFrame(frame), edges


def _pieces(territory: np.ndarray, p: int, edges: np.ndarray) -> np.ndarray:
    """Number of connected pieces of each territory in the graph (0 when empty)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(territory)
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    inside = (territory[e[:, 0]] == territory[e[:, 1]]) & (territory[e[:, 0]] >= 0)
    e = e[inside]
    graph = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    ok = territory >= 0
    # One int64 key per (territory, component): a 1-D unique, not the slow ``axis=0`` one.
    pairs = unique_int(territory[ok] * n + label[ok])
    return np.bincount(pairs // n, minlength=p)


def moves_table(ids: np.ndarray, current: np.ndarray, territory: np.ndarray,
                rep_ids: np.ndarray, reasons: np.ndarray) -> pd.DataFrame:
    """Accounts whose rep changes: ``account_id, from_rep, to_rep, reason``.

    ``reasons`` gives a reason code per account (only read where the account moved).
    """
    moved = np.flatnonzero((current >= 0) & (territory != current))
    reps = np.asarray(rep_ids, dtype=object)
    return pd.DataFrame({
        "account_id": np.asarray(ids, dtype=object)[moved],
        "from_rep": reps[current[moved]],
        "to_rep": np.where(territory[moved] >= 0, reps[np.maximum(territory[moved], 0)], ""),
        "reason": np.asarray(reasons, dtype=object)[moved],
    })


def disruption(current_rep: Sequence[str], new_rep: Sequence[str],
               potential: np.ndarray | None = None) -> dict[str, float]:
    """Accounts (and potential) whose rep changes, among those that had one."""
    cur = np.asarray(current_rep, dtype=object).astype(str)
    new = np.asarray(new_rep, dtype=object).astype(str)
    had = cur != ""
    moved = had & (cur != new)
    out = {"accounts_with_rep": int(had.sum()), "accounts_moved": int(moved.sum()),
           "share_moved": float(moved.sum() / max(had.sum(), 1))}
    if potential is not None:
        pot = np.asarray(potential, dtype=float)
        out["potential_moved"] = float(pot[moved].sum())
        out["potential_share_moved"] = float(pot[moved].sum() / max(pot[had].sum(), 1e-12))
    return out


def evaluate_assignment(
    lonlat: np.ndarray,
    rep_of_account: Sequence[str],
    measures: dict[str, np.ndarray],
    *,
    homes: dict[str, tuple[float, float]] | None = None,
    targets: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Judge any assignment (e.g. a hand-drawn one): per rep measures, deviation, compactness,
    contiguity.

    Parameters
    ----------
    lonlat:
        (n, 2) account coordinates.
    rep_of_account:
        (n,) rep (or territory) label per account; "" = unassigned.
    measures:
        name -> (n,) values.
    homes:
        rep -> (lon, lat): compactness from the home instead of the medoid account.
    """
    labels = np.asarray(rep_of_account, dtype=object).astype(str)
    reps, territory = np.unique(labels, return_inverse=True)
    territory = territory.astype(np.int64)
    if "" in set(reps):
        blank = int(np.flatnonzero(reps == "")[0])
        territory = np.where(territory == blank, -1, territory - (territory > blank))
        reps = reps[reps != ""]
    p = len(reps)
    names = list(measures)
    meas = np.column_stack([np.asarray(measures[m], dtype=float) for m in names])
    xy = project_km(lonlat)
    centers = None
    if homes is not None:
        centers = project_km(np.array([homes[r] for r in reps], dtype=float))
    tg = None
    if targets is not None:
        tg = np.column_stack([np.asarray(targets[m], dtype=float) for m in names])
    table, _ = territory_table(xy=xy, territory=territory, p=p, measures=meas, names=names,
                               targets=tg, centers_xy=centers)
    table.insert(0, "rep_id", reps)
    return table
