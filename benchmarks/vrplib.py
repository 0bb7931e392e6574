"""Readers and writers for the VRPTW benchmark sets: Solomon text files, CVRPLIB ``.sol`` files
and the ``bks.csv`` tables of ``../shared/bench/vrptw/{solomon,homberger}``.

DIMACS convention (see the sets' SOURCES.md): ``d_ij = floor(10 * euclid(i, j)) / 10``,
travel time = ``d_ij``, objective = total distance only, vehicles free up to the fleet in the
file. :func:`dimacs_problem` builds that problem with ``scale=10`` so solvers and the checker
work on the exact integers ``floor(10 * euclid)``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from solvers.routing.problem import VRPTWProblem

__all__ = [
    "BKS",
    "SolomonInstance",
    "dimacs_distances",
    "dimacs_problem",
    "read_bks",
    "read_sol",
    "read_solomon",
    "write_sol",
]


@dataclass(frozen=True, eq=False)
class SolomonInstance:
    """A Solomon-format VRPTW instance: node 0 is the depot, nodes 1..n the customers.

    Times are in the instance's units (its due dates are latest service *starts*).
    """

    name: str
    n_vehicles: int
    capacity: int
    coords: np.ndarray  # (N, 2)
    demand: np.ndarray  # (N,)
    ready: np.ndarray  # (N,)
    due: np.ndarray  # (N,)
    service: np.ndarray  # (N,)

    @property
    def n_customers(self) -> int:
        """Number of customers (nodes minus the depot)."""
        return int(self.coords.shape[0]) - 1


def read_solomon(path: str | Path) -> SolomonInstance:
    """Read a Solomon / Gehring-Homberger text file.

    Raises
    ------
    ValueError
        When the file lacks the VEHICLE or CUSTOMER section or a customer row is malformed.
    """
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    name = lines[0] if lines and lines[0] else path.stem
    try:
        v_at = next(i for i, ln in enumerate(lines) if ln.upper().startswith("VEHICLE"))
        c_at = next(i for i, ln in enumerate(lines) if ln.upper().startswith("CUSTOMER"))
    except StopIteration:
        raise ValueError(f"{path}: no VEHICLE / CUSTOMER section; not a Solomon file.") from None
    fleet = next(ln for ln in lines[v_at + 1 : c_at] if ln and ln[0].isdigit())
    n_vehicles, capacity = (int(x) for x in fleet.split()[:2])
    rows = []
    for ln in lines[c_at + 1 :]:
        parts = ln.split()
        if not parts or not parts[0].isdigit():
            continue
        if len(parts) != 7:
            raise ValueError(f"{path}: customer row {ln!r} has {len(parts)} fields; expected 7.")
        rows.append([float(x) for x in parts])
    data = np.array(rows)
    if data.size == 0 or not np.array_equal(data[:, 0], np.arange(len(data))):
        raise ValueError(f"{path}: customer numbers must run 0, 1, 2, ... from the depot.")
    return SolomonInstance(
        name=name.upper() if name else path.stem,
        n_vehicles=n_vehicles,
        capacity=capacity,
        coords=data[:, 1:3],
        demand=data[:, 3].astype(np.int64),
        ready=data[:, 4],
        due=data[:, 5],
        service=data[:, 6],
    )


def dimacs_distances(coords: np.ndarray) -> np.ndarray:
    """``floor(10 * euclid) / 10`` for every pair (DIMACS 2021 VRPTW convention).

    The square root of the exact integer sum of squares is correctly rounded, and
    ``10 * sqrt(x)`` can only be an integer when ``sqrt(x)`` is, so the floor is exact.
    """
    diff = coords[:, None, :] - coords[None, :, :]
    euclid = np.sqrt((diff * diff).sum(axis=-1))
    return np.floor(10.0 * euclid) / 10.0


def dimacs_problem(inst: SolomonInstance, n_vehicles: int | None = None) -> VRPTWProblem:
    """The DIMACS problem of an instance: distance-only objective, travel time = distance.

    Parameters
    ----------
    inst : SolomonInstance
    n_vehicles : int, optional
        Fleet size; default the instance's (vehicles carry no fixed cost).
    """
    dist = dimacs_distances(inst.coords)
    v = inst.n_vehicles if n_vehicles is None else n_vehicles
    return VRPTWProblem(
        duration=dist,
        distance=dist,
        tw_early=inst.ready,
        tw_late=inst.due,
        starts=np.zeros(v, dtype=np.int64),
        ends=np.zeros(v, dtype=np.int64),
        service=inst.service,
        demand=inst.demand,
        capacity=np.full(v, inst.capacity),
        scale=10,
        name=inst.name,
    )


def read_sol(path: str | Path) -> tuple[list[list[int]], float | None]:
    """Read a CVRPLIB solution file: ``Route #k: ids ...`` lines, then ``Cost X``.

    Returns
    -------
    routes : list of list of int
        Customer ids per route (the depot is implicit).
    cost : float or None
        The ``Cost`` line, when present.
    """
    routes: list[list[int]] = []
    cost = None
    for ln in Path(path).read_text().splitlines():
        ln = ln.strip()
        if ln.lower().startswith("route"):
            _, _, ids = ln.partition(":")
            routes.append([int(x) for x in ids.split()])
        elif ln.lower().startswith("cost"):
            cost = float(ln.split()[1])
    return routes, cost


def write_sol(path: str | Path, routes: Sequence[Sequence[int]], cost: float) -> None:
    """Write a CVRPLIB solution file (non-empty routes only, numbered from 1)."""
    out: list[str] = []
    for route in (r for r in routes if len(r)):
        out.append(f"Route #{len(out) + 1}: " + " ".join(str(int(x)) for x in route))
    out.append(f"Cost {cost:.1f}" if math.isclose(cost * 10, round(cost * 10)) else f"Cost {cost}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(out) + "\n")


@dataclass(frozen=True)
class BKS:
    """One row of a ``bks.csv`` table (DIMACS convention unless the name says ``hier``)."""

    instance: str
    n_customers: int
    bks_distance: float
    bks_vehicles: int | None
    proven_optimal: bool


def read_bks(path: str | Path) -> dict[str, BKS]:
    """Read a ``bks.csv`` table into ``{instance name (upper case): BKS}``."""
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["instance"].upper()
            out[name] = BKS(
                instance=name,
                n_customers=int(row["n_customers"]),
                bks_distance=float(row["bks_distance"]),
                bks_vehicles=int(row["bks_vehicles"]) if row.get("bks_vehicles") else None,
                proven_optimal=row.get("proven_optimal", "").strip().lower() == "yes",
            )
    return out
