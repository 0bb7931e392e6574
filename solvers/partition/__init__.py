"""Partitioning engine: balanced, compact, contiguous territories from basic units.

Arrays and small frozen dataclasses in and out; never imports ``territory``, pandas or geopandas.

>>> from solvers.partition import PartitionProblem, solve_partition, delaunay_edges
"""

from solvers.partition.engine import solve_partition, warm_up
from solvers.partition.graph import (
    adjacency_csr,
    canonical_edges,
    connect_components,
    delaunay_edges,
)
from solvers.partition.params import PartitionParams
from solvers.partition.problem import OBJECTIVES, PartitionProblem
from solvers.partition.result import PartitionResult, Violation

__all__ = [
    "OBJECTIVES",
    "PartitionParams",
    "PartitionProblem",
    "PartitionResult",
    "Violation",
    "adjacency_csr",
    "canonical_edges",
    "connect_components",
    "delaunay_edges",
    "solve_partition",
    "warm_up",
]
