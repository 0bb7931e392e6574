"""Modelling knobs of the partitioning engine (how to search, not how long: see ``solve_partition``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from solvers.errors import SolverInputError

__all__ = ["PartitionParams"]


@dataclass(frozen=True)
class PartitionParams:
    """Knobs of :func:`solvers.partition.solve_partition`; the defaults suit 10^2..10^5 units.

    Parameters
    ----------
    n_candidates : K, candidate territories per unit in the construction (its K nearest
        centres of its group).
    construction_rounds : location-allocation rounds (assign, move centres) per start.
    price_iterations : subgradient steps of the balancing prices per assignment.
    chunk_iterations : search iterations between two looks at the clock.
    stall_iterations : search iterations without a new best before a perturbation.
    perturbations : perturbation rounds per start before the next start.
    perturb_fraction : share of units displaced by a perturbation (of the boundary units).
    tabu_min, tabu_max : tabu tenure range (iterations) of a moved unit.
    sample_hot : at most this many objective-driven candidate units per iteration.
    balance_centring : weight of the squared relative deviations added to the violation in the
        search score until a start finds its first balanced plan (pulls territories towards
        their targets, which leaves room for their neighbours' repairs).
    flow_repairs : at most this many flow repairs per start (when a start begins unbalanced
        and when it stalls unbalanced): the excess of the worst measure routed as a min-cost
        flow across territory boundaries and moved as units; 0 turns them off.
    swaps : also try exchanging two adjacent units of a violated territory and a neighbour.
    max_starts_without_improvement : stop ("converged") after this many starts in a row that do
        not improve the best plan; None runs until the time or iteration limit.
    bound : compute a lower bound for the sum-distance objective.
    bound_max_arcs : largest n * p for the LP bound with fixed centres (one variable per arc).
    bound_time_fraction : share of the time limit the bound may use.
    """

    n_candidates: int = 8
    construction_rounds: int = 6
    price_iterations: int = 40
    chunk_iterations: int = 2000
    stall_iterations: int = 1000
    perturbations: int = 30
    perturb_fraction: float = 0.02
    tabu_min: int = 5
    tabu_max: int = 15
    sample_hot: int = 64
    balance_centring: float = 1.0
    swaps: bool = True
    flow_repairs: int = 10
    max_starts_without_improvement: int | None = 8
    bound: bool = True
    bound_max_arcs: int = 300_000
    bound_time_fraction: float = 0.15

    def __post_init__(self) -> None:
        for name in (
            "n_candidates", "construction_rounds", "chunk_iterations", "stall_iterations",
            "tabu_min", "tabu_max", "sample_hot", "bound_max_arcs",
        ):
            if getattr(self, name) < 1:
                raise SolverInputError(f"params.{name} = {getattr(self, name)}; expected >= 1.")
        for name in ("price_iterations", "perturbations", "flow_repairs"):
            if getattr(self, name) < 0:
                raise SolverInputError(f"params.{name} = {getattr(self, name)}; expected >= 0.")
        if self.tabu_max < self.tabu_min:
            raise SolverInputError("params.tabu_max < params.tabu_min; expected a range.")
        if not 0 <= self.perturb_fraction <= 1 or not 0 <= self.bound_time_fraction <= 1:
            raise SolverInputError("params: fractions must lie in [0, 1].")
        if self.max_starts_without_improvement is not None and self.max_starts_without_improvement < 1:
            raise SolverInputError("params.max_starts_without_improvement: expected >= 1 or None.")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict of the knobs."""
        return asdict(self)
