"""The partitioning engine: multi-start construction + penalised tabu search, within a time limit.

Per start: a balanced location-allocation plan (:mod:`solvers.partition.construct`), then the
tabu search of :mod:`solvers.partition.search` in chunks (the clock is read between chunks).
When the search stalls it is restarted from the start's best plan with a random kick (iterated
local search); in sum-distance mode with free centres the centres first move to the medoids
(location-allocation). For the diameter objective a start is first balanced under the
sum-distance score (it keeps territories round while units are traded), then the threshold
search of the diameter takes over. The best plan over the starts wins: feasible before
infeasible, then the lower objective; among infeasible plans the least total violation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numba as nb
import numpy as np

from solvers.errors import SolverInputError
from solvers.partition import search as S
from solvers.partition.bound import lagrangian_pmedian_bound, lp_bound_fixed_centres
from solvers.partition.construct import build_start, fill_empty, make_contiguous
from solvers.partition.graph import (
    adjacency_csr,
    canonical_edges,
    connect_components,
    delaunay_edges,
)
from solvers.partition.metrics import (
    balance_excess,
    moved_units,
    relative_deviation,
    territory_contiguity,
    territory_diameters,
    territory_sum_distance,
    territory_totals,
    weighted_medoids,
)
from solvers.partition.params import PartitionParams
from solvers.partition.problem import PartitionProblem
from solvers.partition.result import PartitionResult, Violation

__all__ = ["solve_partition"]

# Largest n for the Lagrangian p-median bound (O(n^2) per subgradient step).
_LAGRANGIAN_MAX_UNITS = 6000


@dataclass
class _Prepared:
    """Arrays of a problem in the form the kernels take."""

    xy: np.ndarray
    w: np.ndarray
    targets: np.ndarray
    tol: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    inv_t: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    edges: np.ndarray
    contiguous: bool
    fixed: np.ndarray
    movable: np.ndarray
    ugroup: np.ndarray
    tgroup: np.ndarray
    wdist: np.ndarray
    current: np.ndarray
    move_cost: np.ndarray
    move_size: np.ndarray
    budget: float
    center_units: np.ndarray
    centers: np.ndarray | None
    mode: int

    @property
    def n(self) -> int:
        return len(self.xy)

    @property
    def p(self) -> int:
        return len(self.tgroup)

    def kernel_args(self) -> tuple:
        return (
            self.xy, self.w, self.lo, self.hi, self.inv_t, self.indptr, self.indices,
            self.movable, self.ugroup, self.tgroup, self.wdist, self.current, self.move_cost,
            self.move_size,
        )


def _prepare(problem: PartitionProblem) -> _Prepared:
    n, p = problem.n_units, problem.n_territories
    xy = np.ascontiguousarray(problem.xy)
    if problem.edges is not None:
        edges = problem.edges
    else:
        # No adjacency given (contiguity not asked): search over the Delaunay neighbourhood.
        edges = connect_components(xy, delaunay_edges(xy))[0]
    indptr, indices = adjacency_csr(n, edges)
    targets = problem.targets
    tol = problem.tolerance
    fixed = problem.fixed_territory()
    ugroup, tgroup = problem.groups()
    current = problem.current if problem.current is not None else np.full(n, -1, np.int64)
    return _Prepared(
        xy=xy,
        w=np.ascontiguousarray(problem.measures),
        targets=targets,
        tol=tol,
        lo=targets * (1.0 - tol),
        hi=targets * (1.0 + tol),
        inv_t=np.where(targets > 0, 1.0 / np.where(targets > 0, targets, 1.0), 1.0),
        indptr=indptr,
        indices=indices,
        edges=edges,
        contiguous=bool(problem.contiguous),
        fixed=fixed,
        movable=fixed < 0,
        ugroup=ugroup,
        tgroup=tgroup,
        wdist=np.ascontiguousarray(problem.unit_weights()),
        current=np.ascontiguousarray(current, dtype=np.int64),
        move_cost=problem.move_cost if problem.move_cost is not None else np.zeros(n),
        move_size=problem.move_size if problem.move_size is not None else np.ones(n),
        budget=problem.move_budget if problem.move_budget is not None else np.inf,
        center_units=(
            problem.center_units if problem.center_units is not None
            else np.full(p, -1, np.int64)
        ),
        centers=problem.centers,
        mode=S.DIAMETER if problem.objective == "diameter" else S.SUM_DISTANCE,
    )


class _Search:
    """One tabu-search state (arrays shared with the kernels) and its driver steps."""

    def __init__(self, prep: _Prepared, a0: np.ndarray, cxy: np.ndarray, rng_seed: int,
                 params: PartitionParams) -> None:
        n, p, m = prep.n, prep.p, prep.w.shape[1]
        self.prep = prep
        self.g = prep.kernel_args()
        self.cxy = np.ascontiguousarray(cxy, dtype=np.float64)
        self.st = (
            a0.astype(np.int64).copy(),  # a
            np.zeros((p, m)),  # tot
            np.zeros(p, np.int64),  # cnt
            np.full(p, -1, np.int64),  # head
            np.full(n, -1, np.int64),  # nxt
            np.full(n, -1, np.int64),  # prv
            np.zeros(p),  # pen
            np.zeros(p, np.int64),  # viol_list
            np.full(p, -1, np.int64),  # viol_pos
            np.zeros(n),  # conf
            np.zeros(n, np.int64),  # hot_list
            np.full(n, -1, np.int64),  # hot_pos
            np.zeros(n, np.int64),  # tabu
            np.zeros((p, 4)),  # bbox
            a0.astype(np.int64).copy(),  # best_a
            np.zeros(n, np.int64),  # mark
            np.zeros(n + 1, np.int64),  # queue
            np.zeros(p),  # spen
        )
        self.ist = np.zeros(S.N_IST, np.int64)
        self.fst = np.zeros(S.N_FST)
        self.rng = np.array([rng_seed | 1], dtype=np.uint64)
        self.params = params
        ist, fst = self.ist, self.fst
        ist[S.MODE] = prep.mode
        ist[S.CONTIG] = int(prep.contiguous)
        ist[S.TABU_MIN] = params.tabu_min
        ist[S.TABU_MAX] = params.tabu_max
        ist[S.SAMPLE_HOT] = params.sample_hot
        ist[S.SWAPS] = int(params.swaps)
        ist[S.LAST_FROM] = ist[S.LAST_TO] = -1
        fst[S.BUDGET] = prep.budget
        fst[S.CENTRING] = params.balance_centring
        fst[S.BEST_OBJ] = np.inf
        tol_scale = 1.0 / max(float(prep.tol.mean()), 0.01)
        if prep.mode == S.DIAMETER:
            fst[S.DT] = np.inf
            S.init_state(self.g, self.cxy, self.st, ist, fst)
            d = S.max_diameter(prep.xy, self.st[S.S_HEAD], self.st[S.S_NXT], self.st[S.S_CNT], 0.0,
                               self.st[S.S_QUEUE])
            # Start at the plan's own largest diameter: balance repairs may not stretch it.
            fst[S.DT] = max(d * (1.0 + 1e-9), 1e-12)
            lam0 = tol_scale
        else:
            S.init_state(self.g, self.cxy, self.st, ist, fst)
            lam0 = max(fst[S.OBJ], 1e-12) / p
        fst[S.LAM] = lam0
        fst[S.LAM_MIN] = lam0 / 50.0
        # Capped so that a long repair cannot make the objective irrelevant (snake territories).
        fst[S.LAM_MAX] = lam0 * (1e4 if prep.mode == S.DIAMETER else 1e2)
        S.init_state(self.g, self.cxy, self.st, ist, fst)
        # a start plan that is already feasible is the first record (and, for the diameter,
        # sets the threshold below its largest diameter)
        S.record(self.g, self.cxy, self.st, ist, fst)

    @property
    def a(self) -> np.ndarray:
        return self.st[S.S_A]

    @property
    def best_a(self) -> np.ndarray:
        return self.st[S.S_BEST_A]

    @property
    def has_best(self) -> bool:
        return bool(self.ist[S.HAS_BEST])

    @property
    def iterations(self) -> int:
        return int(self.ist[S.IT])

    def run(self, n_iter: int) -> int:
        code = S.run(self.g, self.cxy, self.st, self.ist, self.fst, self.rng, n_iter,
                     self.params.stall_iterations)
        if self.has_best and self.fst[S.CENTRING] > 0:
            # Centring helps to reach balance; once balanced it would only fight compactness.
            self.fst[S.CENTRING] = 0.0
            S.init_state(self.g, self.cxy, self.st, self.ist, self.fst)
        return code

    def record(self) -> None:
        S.record(self.g, self.cxy, self.st, self.ist, self.fst)

    def move_centres_to_medoids(self) -> bool:
        """Sum-distance, free centres: centres to the medoids of the best plan; True if moved."""
        prep = self.prep
        base = self.best_a
        med = weighted_medoids(prep.xy, prep.wdist, base, prep.p)
        new = np.where(med[:, None] >= 0, prep.xy[np.maximum(med, 0)], self.cxy)
        if np.allclose(new, self.cxy):
            return False
        self.cxy[:] = new
        self.a[:] = base
        self.fst[S.BEST_OBJ] = np.inf
        self.ist[S.HAS_BEST] = 0
        S.init_state(self.g, self.cxy, self.st, self.ist, self.fst)
        self.record()
        return True

    def flow_repair(self, rounds: int = 3) -> bool:
        """Balance by flows between adjacent territories; True if the violation dropped.

        Boundary moves see a chain of territories at their bounds as a plateau: a surplus three
        territories away from a deficit can only travel through neighbours that are themselves
        at a bound, and each single move there trades one violation for another. Here the
        excess of the worst measure (total less target, every territory) is routed as a
        min-cost flow over the territory adjacency graph (arc cost: distance between the
        territories' centres), and each arc's flow becomes units moved across that boundary
        (``search.transfer``). The tabu search then mends what the moves did to the other
        measures and to compactness.
        """
        prep = self.prep
        before = float(self.fst[S.PEN])
        if before <= 0:
            return False
        improved = False
        for _ in range(rounds):
            tot = self.st[S.S_TOT]
            excess_all = balance_excess(tot, prep.targets, prep.tol)
            excess = excess_all.sum(axis=0)
            kept = False
            # the worst measure first; a round that does not help (the moves may push the
            # other measures out) is undone
            for c in np.argsort(-excess, kind="stable"):
                if excess[c] <= 1e-9:
                    break
                pen0 = float(self.fst[S.PEN])
                others = np.arange(excess_all.shape[1]) != c
                worst0 = float(excess_all[:, others].max()) if others.any() else 0.0
                snapshot = self.a.copy()
                flows = _balancing_flows(prep, self.a, tot[:, c], prep.targets[:, c],
                                         prep.tol[c], self.cxy)
                for src, dst, amount in flows:
                    S.transfer(src, dst, amount, int(c), self.g, self.cxy, self.st, self.ist,
                               self.fst)
                # kept when the total violation drops and no territory ends further out on
                # another measure (with conflicting measures a lower total can hide a worse
                # one); the measure routed may pass through a worse worst on its way
                after = balance_excess(self.st[S.S_TOT], prep.targets, prep.tol)
                worst = float(after[:, others].max()) if others.any() else 0.0
                if (float(self.fst[S.PEN]) < pen0 * (1.0 - 1e-6)
                        and worst <= worst0 * (1.0 + 1e-9)):
                    kept = True
                    break
                if flows:
                    self.a[:] = snapshot
                    S.init_state(self.g, self.cxy, self.st, self.ist, self.fst)
            if not kept:
                break
            improved = True
            if float(self.fst[S.PEN]) <= 0:
                break
        # fresh tabu list, aspiration and progress marks for the search that follows
        S.init_state(self.g, self.cxy, self.st, self.ist, self.fst)
        return improved

    def kick(self, n_moves: int) -> None:
        """Back to the best plan (if any), then ``n_moves`` random boundary moves."""
        if self.has_best:
            self.a[:] = self.best_a
        S.init_state(self.g, self.cxy, self.st, self.ist, self.fst)
        S.perturb(self.g, self.cxy, self.st, self.ist, self.fst, self.rng, n_moves)


def _balancing_flows(prep: _Prepared, a: np.ndarray, total: np.ndarray, target: np.ndarray,
                     tol: float, cxy: np.ndarray) -> list[tuple[int, int, float]]:
    """Arcs (from, to, amount) of a min-cost flow bringing every territory into its band.

    One measure. Arcs join territories that share a unit edge (within one group) and cost the
    distance between their centres, so surplus takes the shortest way to the deficits. Each
    territory supplies its total less its target and may keep a remainder within half its
    tolerance (arcs to and from a free node), so only what the band needs is moved, which
    spares the other measures. Returned in an order where a territory gives only after its
    inflow has reached it (the flow is acyclic), so the ones in between pass units on rather
    than shrinking first.
    """
    from ortools.graph.python import min_cost_flow

    p = prep.p
    e = prep.edges
    if len(e) == 0:
        return []
    ka, kb = a[e[:, 0]], a[e[:, 1]]
    same_group = prep.tgroup[ka] == prep.tgroup[kb]
    pairs = canonical_edges(np.column_stack([ka[same_group], kb[same_group]]))
    if len(pairs) == 0:
        return []
    excess = total - target
    scale = 1e6 / max(float(np.abs(excess).max()), 1e-12)
    supply = np.rint(excess * scale).astype(np.int64)
    slack = np.floor(0.5 * tol * target * scale).astype(np.int64)
    d = np.hypot(*(cxy[pairs[:, 0]] - cxy[pairs[:, 1]]).T)
    cost = np.rint(d / max(float(d.mean()), 1e-12) * 100.0).astype(np.int64) + 1
    free = p  # the free node: what a territory keeps within its band goes to or comes from it
    ks = np.arange(p)
    tails = np.concatenate([pairs[:, 0], pairs[:, 1], ks, np.full(p, free)])
    heads = np.concatenate([pairs[:, 1], pairs[:, 0], np.full(p, free), ks])
    cap = int(np.abs(supply).sum()) + 1
    caps = np.concatenate([np.full(2 * len(pairs), cap, np.int64), slack, slack])
    costs = np.concatenate([cost, cost, np.zeros(2 * p, np.int64)])
    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(tails.astype(np.int32), heads.astype(np.int32),
                                             caps, costs)
    # supplies sum to zero up to rounding; the residue goes to the free node
    mcf.set_nodes_supplies(np.arange(p + 1, dtype=np.int32),
                           np.append(supply, -int(supply.sum())))
    if mcf.solve() != mcf.OPTIMAL:
        # e.g. a group or an island whose territories cannot reach their bands together
        return []
    n_terr = 2 * len(pairs)
    flow = mcf.flows(np.arange(n_terr)).astype(np.int64)
    used = np.flatnonzero(flow > 0)
    if len(used) == 0:
        return []
    # Kahn's order on the (acyclic) flow: arcs leave a territory once all its inflow arrived.
    indeg = np.bincount(heads[used], minlength=p)
    out: dict[int, list[int]] = {}
    for t in used.tolist():
        out.setdefault(int(tails[t]), []).append(t)
    ready = [k for k in sorted(out) if indeg[k] == 0]
    arcs: list[tuple[int, int, float]] = []
    while ready:
        k = ready.pop()
        for t in out.get(k, []):
            h = int(heads[t])
            arcs.append((k, h, float(flow[t]) / scale))
            indeg[h] -= 1
            if indeg[h] == 0 and h in out:
                ready.append(h)
    return arcs


class _Clock:
    """Time and iteration budget of a run."""

    def __init__(self, time_limit_s: float, max_iterations: int | None) -> None:
        self.start = time.perf_counter()
        self.deadline = self.start + time_limit_s
        self.search_deadline = self.deadline
        self.max_iterations = max_iterations
        self.used = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def out_of_time(self) -> bool:
        return time.perf_counter() >= self.search_deadline

    def out_of_iterations(self) -> bool:
        return self.max_iterations is not None and self.used >= self.max_iterations

    def chunk(self, size: int) -> int:
        if self.max_iterations is None:
            return size
        return max(0, min(size, self.max_iterations - self.used))


def _run_start(search: _Search, prep: _Prepared, params: PartitionParams, clock: _Clock,
               until_balanced: bool = False) -> None:
    """Drive one start until its kicks are spent or the budget runs out.

    ``until_balanced`` stops at the first balanced plan (phase 1 of the diameter objective).
    """
    kicks = 0
    free_centres = prep.centers is None
    n_kick = max(3, int(params.perturb_fraction * prep.n))
    least_violation = np.inf
    repairs = 0
    if params.flow_repairs > 0 and not search.has_best and not clock.out_of_time():
        repairs += 1
        search.flow_repair()
    while True:
        n_iter = clock.chunk(params.chunk_iterations)
        if n_iter == 0 or clock.out_of_time():
            break
        before = search.iterations
        code = search.run(n_iter)
        clock.used += search.iterations - before
        if until_balanced and search.has_best:
            return
        if code == S.RUNNING:
            continue
        if prep.mode == S.SUM_DISTANCE:
            search.record()
            # Centres follow a balanced plan only: moving them mid-repair reshuffles the units.
            if free_centres and search.has_best and search.move_centres_to_medoids():
                continue
        if not search.has_best and repairs < params.flow_repairs:
            # a stall while unbalanced: the surplus may sit behind territories at their bounds
            repairs += 1
            if search.flow_repair():
                continue
        if not search.has_best:
            # Still repairing balance: kicks would undo repairs, so the tabu search just goes
            # on; the start is abandoned after 5 * ``perturbations`` stalls without a 1 % gain
            # (a fresh start would have to redo the repairs).
            if search.fst[S.PEN] < 0.99 * least_violation:
                least_violation = search.fst[S.PEN]
                kicks = 0
            elif kicks >= 5 * params.perturbations:
                break
            kicks += 1
            if code == S.IDLE:
                search.kick(min(n_kick, 10))  # no candidate at all: a nudge is the only way on
            else:
                search.ist[S.LAST_IMPROVE] = search.ist[S.IT]
            continue
        if kicks >= params.perturbations:
            break
        kicks += 1
        search.kick(n_kick)
    if prep.mode == S.SUM_DISTANCE:
        search.record()


def _balanced(prep: _Prepared, a: np.ndarray) -> bool:
    totals = territory_totals(a, prep.w, prep.p)
    return not (balance_excess(totals, prep.targets, prep.tol) > 1e-9).any()


def _plan_key(prep: _Prepared, a: np.ndarray) -> tuple[float, float]:
    """(total violation, objective) of a plan, compared lexicographically."""
    totals = territory_totals(a, prep.w, prep.p)
    viol = float(balance_excess(totals, prep.targets, prep.tol).sum())
    if prep.contiguous:
        viol += float((~territory_contiguity(a, prep.p, prep.edges)).sum())
    moved = moved_units(a, prep.current)
    viol += max(0.0, float(prep.move_size[moved].sum()) - prep.budget)
    return viol, _objective(prep, a)[0]


def _objective(prep: _Prepared, a: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """(objective, per-territory sum-distance, diameters, centres)."""
    if prep.centers is not None:
        centres = prep.centers
    else:
        med = weighted_medoids(prep.xy, prep.wdist, a, prep.p)
        centres = np.where(med[:, None] >= 0, prep.xy[np.maximum(med, 0)], np.nan)
    sumd = territory_sum_distance(prep.xy, prep.wdist, a, np.nan_to_num(centres))
    diam = territory_diameters(prep.xy, a, prep.p)
    moved = moved_units(a, prep.current)
    mcost = float(prep.move_cost[moved].sum())
    value = float(diam.max()) if prep.mode == S.DIAMETER else float(sumd.sum())
    return value + mcost, sumd, diam, centres


@nb.njit(cache=True)
def _split_by_removal(a: np.ndarray, units: np.ndarray, indptr: np.ndarray,
                      indices: np.ndarray) -> np.ndarray:
    """For each unit: would taking it out split its territory?"""
    n = len(a)
    mark = np.zeros(n, np.int64)
    queue = np.zeros(n + 1, np.int64)
    ist = np.zeros(S.N_IST, np.int64)
    out = np.zeros(len(units), np.bool_)
    for q in range(len(units)):
        out[q] = not S._removal_keeps_connected(units[q], a, indptr, indices, mark, queue, ist)
    return out


def _move_reasons(prep: _Prepared, a: np.ndarray, moved: np.ndarray,
                  names: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Reason code per moved unit: the first constraint that moving it back alone breaks
    (a measure by its name when the problem names them, else by its index)."""
    if len(moved) == 0:
        return ()
    totals = territory_totals(a, prep.w, prep.p)
    tol = prep.tol
    split = (
        _split_by_removal(a, moved.astype(np.int64), prep.indptr, prep.indices)
        if prep.contiguous else np.zeros(len(moved), bool)
    )
    reasons = []
    for q, i in enumerate(moved.tolist()):
        back, here = int(prep.current[i]), int(a[i])
        if prep.fixed[i] >= 0:
            reasons.append("lock")
            continue
        if prep.tgroup[back] != prep.ugroup[i]:
            reasons.append("group")
            continue
        nbrs = prep.indices[prep.indptr[i]:prep.indptr[i + 1]]
        if prep.contiguous and (split[q] or not np.any(a[nbrs] == back)):
            reasons.append("contiguity")
            continue
        rows = np.array([back, here])
        before = balance_excess(totals[rows], prep.targets[rows], tol).sum(axis=0)
        after_tot = totals[rows] + np.stack([prep.w[i], -prep.w[i]])
        after = balance_excess(after_tot, prep.targets[rows], tol).sum(axis=0)
        worse = after - before
        if worse.max() > 1e-12:
            c = int(np.argmax(worse))
            reasons.append(f"balance:{names[c] if names else c}")
        else:
            reasons.append("compactness")
    return tuple(reasons)


def _violations(prep: _Prepared, a: np.ndarray, totals: np.ndarray, contiguous: np.ndarray,
                moved: np.ndarray) -> tuple[Violation, ...]:
    excess = balance_excess(totals, prep.targets, prep.tol)
    out = []
    for c in range(excess.shape[1]):
        bad = np.flatnonzero(excess[:, c] > 1e-9)
        if len(bad):
            out.append(Violation("balance", tuple(bad.tolist()), float(excess[:, c].max()), c))
    if prep.contiguous:
        bad = np.flatnonzero(~contiguous)
        if len(bad):
            out.append(Violation("contiguity", tuple(bad.tolist()), float(len(bad))))
    over = float(prep.move_size[moved].sum()) - prep.budget
    if over > 1e-9:
        out.append(Violation("budget", (), over))
    pinned = prep.fixed >= 0
    bad = np.flatnonzero(pinned & (a != prep.fixed))
    if len(bad):
        out.append(Violation("lock", tuple(np.unique(prep.fixed[bad]).tolist()), float(len(bad))))
    bad = np.flatnonzero(prep.tgroup[a] != prep.ugroup)
    if len(bad):
        out.append(Violation("group", tuple(np.unique(a[bad]).tolist()), float(len(bad))))
    return tuple(out)


def _start_plan(prep: _Prepared, params: PartitionParams, rng: np.random.Generator,
                index: int, best: np.ndarray | None,
                deadline: float, initial: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Start plan number ``index``: from ``current`` when realigning, else a fresh construction.

    Starts that would be identical (fixed centres, or a move budget that ties the plan to the
    current one) begin from the best plan with a larger kick instead.
    """
    squared = prep.mode == S.DIAMETER
    has_current = bool((prep.current >= 0).any())
    deterministic = prep.centers is not None or (has_current and np.isfinite(prep.budget))
    if index > 0 and deterministic and best is not None:
        cxy = prep.centers if prep.centers is not None else _centroids(prep, best)
        return best.copy(), cxy
    if initial is not None and index == 0:
        # the caller's start plan, pins enforced and made contiguous when asked
        a = np.where(prep.fixed >= 0, prep.fixed, initial).astype(np.int64)
        cxy = prep.centers if prep.centers is not None else _centroids(prep, a)
        if prep.contiguous:
            make_contiguous(a, prep.xy, cxy, prep.indptr, prep.indices, prep.fixed, prep.ugroup,
                            prep.tgroup)
        else:
            fill_empty(a, prep.p, prep.xy, cxy, prep.fixed, prep.ugroup, prep.tgroup)
        return a, cxy
    if has_current and index == 0:
        # The current plan, new units (current = -1) allocated around its territories; pieces
        # cut off from their territory then join a neighbour (moved for "contiguity").
        pinned = np.where(prep.fixed >= 0, prep.fixed, prep.current)
        base = np.where(pinned >= 0, pinned, 0)
        cxy = prep.centers if prep.centers is not None else _centroids(prep, base, pinned >= 0)
        if (pinned >= 0).all():
            a = pinned.copy()
        else:
            a = build_start(
                prep.xy, prep.w, prep.targets, pinned, prep.ugroup, prep.tgroup,
                prep.center_units, cxy, prep.wdist, squared, prep.indptr, prep.indices, False,
                rng, params.n_candidates, 1, params.price_iterations,
            )[0]
        raw = a.copy()
        if prep.contiguous:
            make_contiguous(a, prep.xy, cxy, prep.indptr, prep.indices, prep.fixed, prep.ugroup,
                            prep.tgroup)
        else:
            fill_empty(a, prep.p, prep.xy, cxy, prep.fixed, prep.ugroup, prep.tgroup)
        if float(prep.move_size[moved_units(a, prep.current)].sum()) > prep.budget + 1e-9:
            # Repairing a scattered current plan would already spend more than the move budget,
            # which is hard: start from the plan as it is and let the search use the budget.
            a = raw
        return a, cxy
    return build_start(
        prep.xy, prep.w, prep.targets, prep.fixed, prep.ugroup, prep.tgroup, prep.center_units,
        prep.centers, prep.wdist, squared, prep.indptr, prep.indices, prep.contiguous, rng,
        params.n_candidates, params.construction_rounds, params.price_iterations, deadline,
        band=(prep.lo, prep.hi),
    )


def _centroids(prep: _Prepared, a: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """(p, 2) mean point of each territory's units (overall mean for an empty one)."""
    use = np.ones(len(a), bool) if use is None else use
    cnt = np.bincount(a[use], minlength=prep.p).astype(float)
    out = np.empty((prep.p, 2))
    for c in range(2):
        s = np.bincount(a[use], weights=prep.xy[use, c], minlength=prep.p)
        out[:, c] = np.where(cnt > 0, s / np.maximum(cnt, 1), prep.xy[:, c].mean())
    return out


def _bound_applies(prep: _Prepared, params: PartitionParams) -> bool:
    """Whether a lower bound is computed: sum-distance objective, instance small enough."""
    if prep.mode != S.SUM_DISTANCE:
        return False
    if prep.centers is not None:
        # the LP is built arc by arc in Python (about 20 us an arc), outside GLOP's time limit
        return prep.n * prep.p <= params.bound_max_arcs
    return prep.n <= _LAGRANGIAN_MAX_UNITS


def _lower_bound(prep: _Prepared, problem: PartitionProblem, params: PartitionParams,
                 upper: float, time_s: float) -> tuple[float | None, str | None]:
    if not _bound_applies(prep, params) or time_s <= 0:
        return None, None
    if prep.centers is not None:
        if 2e-5 * prep.n * prep.p > time_s:
            return None, None
        allowed = prep.tgroup[None, :] == prep.ugroup[:, None]
        pinned = np.flatnonzero(prep.fixed >= 0)
        allowed[pinned] = False
        allowed[pinned, prep.fixed[pinned]] = True
        lb = lp_bound_fixed_centres(
            prep.xy, prep.w, prep.lo, prep.hi, prep.centers, prep.wdist, allowed,
            problem.current, problem.move_cost, problem.move_size, problem.move_budget, time_s,
        )
        return lb, (None if lb is None else "lp_fixed_centres")
    lb = lagrangian_pmedian_bound(prep.xy, prep.wdist, prep.p, upper, time_s)
    return lb, (None if lb is None else "lagrangian_p_median")


_WARM = [False]


def warm_up() -> None:
    """Compile the engine's kernels now (once per process; cached on disk), so that a timed
    run (the engine's own, or a caller's) does not pay the first compilation inside it."""
    if _WARM[0]:
        return
    _WARM[0] = True
    xy = np.array([[0.0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1]])
    edges = np.array([[0, 1], [1, 2], [3, 4], [4, 5], [0, 3], [1, 4], [2, 5]])
    for objective in ("sum_distance", "diameter"):
        prob = PartitionProblem(xy, np.ones(6), 2, 0.0, edges=edges, objective=objective)
        _solve(prob, 5.0, 0, 50, PartitionParams(bound=False, perturbations=1), warm=True)
    # the flow repair's kernels run only on unbalanced plans: compile them here too
    prob = PartitionProblem(xy, np.ones(6), 2, 0.0, edges=edges)
    prep = _prepare(prob)
    search = _Search(prep, np.array([0, 0, 0, 0, 0, 1]), _centroids(prep, np.zeros(6, np.int64)),
                     1, PartitionParams(bound=False))
    search.flow_repair()
    territory_diameters(xy, np.zeros(6, np.int64), 1)
    indptr, indices = adjacency_csr(6, edges)
    _split_by_removal(np.zeros(6, np.int64), np.arange(6, dtype=np.int64), indptr, indices)
    lagrangian_pmedian_bound(xy, np.ones(6), 2, 10.0, 0.01)


def solve_partition(
    problem: PartitionProblem,
    *,
    time_limit_s: float = 60.0,
    seed: int = 0,
    max_iterations: int | None = None,
    params: PartitionParams | None = None,
    initial: np.ndarray | None = None,
) -> PartitionResult:
    """Carve the units into balanced, compact (contiguous) territories.

    Parameters
    ----------
    problem : the instance (model in :mod:`solvers.partition.problem`).
    time_limit_s : wall-clock cap in seconds, honoured within 10 % + 0.5 s (one-off JIT
        compilation of the kernels, cached on disk, happens before the clock starts).
    seed : seed of the single random generator; the same seed gives the same plan whenever the
        run stops on ``max_iterations`` or on convergence.
    max_iterations : cap on local-search iterations over all starts (None: time only).
    params : search knobs (:class:`PartitionParams`).
    initial : (n,) territory of each unit to start the first start from instead of a
        construction (pinned units are put right, pieces reattached); later starts construct.

    Returns
    -------
    PartitionResult
        The best plan found; when the tolerances cannot be met, the plan with the least total
        violation, flagged ``feasible=False`` with its ``violations``.

    Raises
    ------
    SolverInputError
        If the problem is not a :class:`PartitionProblem` or a run control is out of range.
    """
    if not isinstance(problem, PartitionProblem):
        raise SolverInputError(f"problem: {type(problem).__name__}; expected PartitionProblem.")
    if not np.isfinite(time_limit_s) or time_limit_s <= 0:
        raise SolverInputError(f"time_limit_s = {time_limit_s}; expected > 0.")
    if max_iterations is not None and max_iterations < 0:
        raise SolverInputError(f"max_iterations = {max_iterations}; expected >= 0 or None.")
    params = params if params is not None else PartitionParams()
    if initial is not None:
        initial = np.asarray(initial)
        if (initial.shape != (problem.n_units,) or not np.issubdtype(initial.dtype, np.integer)
                or (initial < 0).any() or (initial >= problem.n_territories).any()):
            raise SolverInputError(f"initial: expected {problem.n_units} territory indices in "
                                   f"[0, {problem.n_territories - 1}].")
    warm_up()
    return _solve(problem, float(time_limit_s), int(seed), max_iterations, params,
                  initial=initial)


def _solve(problem: PartitionProblem, time_limit_s: float, seed: int,
           max_iterations: int | None, params: PartitionParams,
           warm: bool = False, initial: np.ndarray | None = None) -> PartitionResult:
    clock = _Clock(time_limit_s, max_iterations)
    rng = np.random.default_rng(seed)
    prep = _prepare(problem)
    bound_time = 0.0
    if params.bound and _bound_applies(prep, params):
        bound_time = params.bound_time_fraction * time_limit_s
    # Keep a margin for the bound and the final scoring of the plan.
    clock.search_deadline = clock.deadline - bound_time - min(0.05 * time_limit_s, 2.0)

    best: np.ndarray | None = None
    best_key = (np.inf, np.inf)
    n_starts = 0
    since_improve = 0
    stop_reason = "converged"
    while True:
        if n_starts > 0:
            if clock.out_of_time():
                stop_reason = "time_limit"
                break
            if clock.out_of_iterations():
                stop_reason = "iteration_limit"
                break
            limit = params.max_starts_without_improvement
            if limit is not None and since_improve >= limit:
                break
        a0, cxy = _start_plan(prep, params, rng, n_starts, best, clock.search_deadline,
                              initial)
        if prep.mode == S.DIAMETER and not _balanced(prep, a0):
            phase1 = replace(prep, mode=S.SUM_DISTANCE)
            search = _Search(phase1, a0, cxy, int(rng.integers(1, 2**63)), params)
            _run_start(search, phase1, params, clock, until_balanced=True)
            a0 = (search.best_a if search.has_best else search.a).copy()
        search = _Search(prep, a0, cxy, int(rng.integers(1, 2**63)), params)
        if n_starts > 0 and best is not None and np.array_equal(a0, best):
            search.kick(max(3, int(5 * params.perturb_fraction * prep.n)))
        _run_start(search, prep, params, clock)
        n_starts += 1
        candidates = [search.best_a] if search.has_best else []
        # The search ends where its last kick left it, which may be worse than where it
        # began; the start itself competes too.
        candidates += [search.a, a0]
        improved = False
        for cand in candidates:
            key = _plan_key(prep, cand)
            if key < best_key:
                best_key, best, improved = key, cand.copy(), True
        since_improve = 0 if improved else since_improve + 1
    if stop_reason == "converged" and clock.out_of_iterations():
        stop_reason = "iteration_limit"
    if stop_reason == "converged" and clock.out_of_time():
        stop_reason = "time_limit"
    assert best is not None
    return _result(problem, prep, best, clock, n_starts, stop_reason, seed, params,
                   bound_time if not warm else 0.0)


def _result(problem: PartitionProblem, prep: _Prepared, a: np.ndarray, clock: _Clock,
            n_starts: int, stop_reason: str, seed: int, params: PartitionParams,
            bound_time: float) -> PartitionResult:
    totals = territory_totals(a, prep.w, prep.p)
    contiguous = territory_contiguity(a, prep.p, prep.edges)
    value, sumd, diam, centres = _objective(prep, a)
    moved = moved_units(a, prep.current)
    violations = _violations(prep, a, totals, contiguous, moved)
    lb, kind = None, None
    if bound_time > 0:
        lb, kind = _lower_bound(prep, problem, params, value,
                                min(bound_time, clock.deadline - time.perf_counter() - 0.1))
    names = problem.measure_names or tuple(f"measure{c}" for c in range(prep.w.shape[1]))
    return PartitionResult(
        assignment=a.copy(),
        feasible=not violations,
        totals=totals,
        deviation=relative_deviation(totals, prep.targets),
        contiguous=contiguous,
        objective=value,
        objective_name=problem.objective,
        sum_distance=sumd,
        diameter=diam,
        centers=centres,
        lower_bound=lb,
        lower_bound_kind=kind,
        runtime_s=clock.elapsed(),
        iterations=clock.used,
        n_starts=n_starts,
        stop_reason=stop_reason,
        seed=seed,
        params=params,
        moved=moved,
        move_reasons=_move_reasons(prep, a, moved, problem.measure_names),
        violations=violations,
        measure_names=names,
    )
