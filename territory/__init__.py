"""territory-planner: balanced sales territories and field-rep routes at national scale.

The public API::

    import territory as tp
    scenario = tp.synth.china_scenario(n_accounts=5_000, seed=7)
    accounts = tp.read_accounts("accounts.csv")
"""

from __future__ import annotations

from territory import china, coords, synth, workload
from territory.errors import (
    DataQualityWarning,
    InfeasibleError,
    InvalidInputError,
    NoSolutionError,
    SolverError,
    TerritoryError,
)
from territory.hours import WeekHours
from territory.io import read_accounts, read_reps, read_table, write_accounts, write_csv, write_reps
from territory.model import Accounts, Calendar, Reps, Scenario, SegmentRules
from territory.providers import MatrixProvider, ModelProvider, OSRMProvider
from territory.travel import TravelModel
from territory.workload import estimate_workload, size_force

__version__ = "0.1.0"

__all__ = [
    "Accounts",
    "Calendar",
    "DataQualityWarning",
    "InfeasibleError",
    "InvalidInputError",
    "MatrixProvider",
    "ModelProvider",
    "NoSolutionError",
    "OSRMProvider",
    "Reps",
    "Scenario",
    "SegmentRules",
    "SolverError",
    "TerritoryError",
    "TravelModel",
    "WeekHours",
    "__version__",
    "china",
    "coords",
    "estimate_workload",
    "read_accounts",
    "read_reps",
    "read_table",
    "size_force",
    "synth",
    "workload",
    "write_accounts",
    "write_csv",
    "write_reps",
]
