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

# The solver faces load numba kernels and OR-Tools: imported on first use, so that
# ``import territory`` stays quick for IO and geography.
_LAZY = {
    "partition": ("territory.alignment", "partition"),
    "partition_units": ("territory.alignment", "partition_units"),
    "TerritoryPlan": ("territory.alignment", "TerritoryPlan"),
    "group_districts": ("territory.alignment", "group_districts"),
    "Districts": ("territory.alignment", "Districts"),
    "plan_routes": ("territory.routes", "plan_routes"),
    "RoutePlan": ("territory.routes", "RoutePlan"),
    "plan": ("territory.planning", "plan"),
    "NationalPlan": ("territory.planning", "NationalPlan"),
    "realignment_report": ("territory.whatif", "realignment_report"),
    "RealignmentReport": ("territory.whatif", "RealignmentReport"),
    "compare": ("territory.whatif", "compare"),
    "Comparison": ("territory.whatif", "Comparison"),
    "size_force_by_region": ("territory.whatif", "size_force_by_region"),
    "calibrated_workload": ("territory.whatif", "calibrated_workload"),
    "headcount_variants": ("territory.whatif", "headcount_variants"),
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'territory' has no attribute {name!r}")

__all__ = [
    "Accounts",
    "Calendar",
    "Comparison",
    "DataQualityWarning",
    "Districts",
    "InfeasibleError",
    "InvalidInputError",
    "MatrixProvider",
    "ModelProvider",
    "NationalPlan",
    "NoSolutionError",
    "OSRMProvider",
    "RealignmentReport",
    "Reps",
    "RoutePlan",
    "Scenario",
    "SegmentRules",
    "SolverError",
    "TerritoryError",
    "TerritoryPlan",
    "TravelModel",
    "WeekHours",
    "__version__",
    "calibrated_workload",
    "china",
    "compare",
    "coords",
    "estimate_workload",
    "group_districts",
    "headcount_variants",
    "partition",
    "partition_units",
    "plan",
    "plan_routes",
    "read_accounts",
    "read_reps",
    "read_table",
    "realignment_report",
    "size_force",
    "size_force_by_region",
    "synth",
    "workload",
    "write_accounts",
    "write_csv",
    "write_reps",
]
