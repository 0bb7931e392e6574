"""Lower bounds for the sum-distance objective (contiguity always relaxed).

* Fixed centres: the LP relaxation of the balanced assignment (GLOP), over every allowed
  unit-territory arc::

      min  sum_ik c_ik x_ik,   c_ik = weight_i ||x_i - c_k|| + move_cost_i [current_i not in {-1, k}]
      s.t. sum_k x_ik = 1                                   (every unit)
           (1 - tol_a) t_ka <= sum_i w_ia x_ik <= (1 + tol_a) t_ka   (balance)
           sum_{i: current_i >= 0} move_size_i x_{i,current_i} >= sum move_size - budget
           x_ik = 0 across groups, x_{i,locked_i} = 1, x_{center_units[k],k} = 1, x >= 0.

  Its optimum bounds every plan that meets all constraints but contiguity.
* Free centres (medoids): the Lagrangian relaxation of the p-median problem
  ``min sum_ij c_ij x_ij, sum_j x_ij = 1, x_ij <= y_j, sum_j y_j = p`` with ``c_ij =
  weight_i ||x_i - x_j||``; dualising ``sum_j x_ij = 1`` with multipliers ``u`` gives
  ``L(u) = sum_i u_i + (sum of the p smallest rho_j)``, ``rho_j = sum_i min(0, c_ij - u_i)``,
  maximised by subgradient steps. Any plan with its medoids is a p-median solution, so ``L(u)``
  bounds the plan's sum-distance for any ``u`` (balance, contiguity, groups, locks and move costs
  relaxed: a valid but weaker bound when balance binds).
"""

from __future__ import annotations

import time

import numba as nb
import numpy as np
from ortools.linear_solver import pywraplp
from scipy.spatial import cKDTree

__all__ = ["lagrangian_pmedian_bound", "lp_bound_fixed_centres"]


def lp_bound_fixed_centres(
    xy: np.ndarray,
    measures: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    centers: np.ndarray,
    weights: np.ndarray,
    allowed: np.ndarray,
    current: np.ndarray | None,
    move_cost: np.ndarray | None,
    move_size: np.ndarray | None,
    move_budget: float | None,
    time_limit_s: float,
) -> float | None:
    """LP bound with fixed centres (model in the module docstring); None if not solved in time.

    ``allowed`` (n, p) bool marks the arcs kept (groups, locks and centre units applied).
    Returns ``inf`` when the LP is infeasible (so is the problem).
    """
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:
        return None
    solver.SetTimeLimit(max(1, int(time_limit_s * 1000)))
    n, p = allowed.shape
    m = measures.shape[1]
    rows, cols = np.nonzero(allowed)
    d = np.hypot(xy[rows, 0] - centers[cols, 0], xy[rows, 1] - centers[cols, 1]) * weights[rows]
    if current is not None and move_cost is not None:
        d = d + np.where((current[rows] >= 0) & (current[rows] != cols), move_cost[rows], 0.0)
    infinity = solver.infinity()
    xs = [solver.NumVar(0.0, 1.0, "") for _ in range(len(rows))]
    one = [solver.Constraint(1.0, 1.0) for _ in range(n)]
    bal = [[solver.Constraint(lo[k, a], hi[k, a]) for a in range(m)] for k in range(p)]
    budget = None
    if current is not None and move_budget is not None:
        size = move_size if move_size is not None else np.ones(n)
        has = current >= 0
        budget = solver.Constraint(float(size[has].sum() - move_budget), infinity)
    obj = solver.Objective()
    for idx, (i, k) in enumerate(zip(rows.tolist(), cols.tolist(), strict=True)):
        x = xs[idx]
        obj.SetCoefficient(x, float(d[idx]))
        one[i].SetCoefficient(x, 1.0)
        for a in range(m):
            if measures[i, a] != 0:
                bal[k][a].SetCoefficient(x, float(measures[i, a]))
        if budget is not None and current[i] == k:
            budget.SetCoefficient(x, float(size[i]))
    obj.SetMinimization()
    status = solver.Solve()
    if status == pywraplp.Solver.OPTIMAL:
        return float(obj.Value())
    if status == pywraplp.Solver.INFEASIBLE:
        return float("inf")
    return None


@nb.njit(cache=True)
def _lagrangian_steps(
    xy: np.ndarray, w: np.ndarray, p: int, u: np.ndarray, n_steps: int, upper: float,
    state: np.ndarray,
) -> float:
    """``n_steps`` subgradient steps on ``u`` (in place); returns the best ``L(u)`` seen.

    ``state = [theta, best, since_best]`` carries the step control between calls.
    """
    n = len(u)
    rho = np.empty(n)
    best = state[1]
    for _ in range(n_steps):
        for j in range(n):
            s = 0.0
            for i in range(n):
                c = w[i] * np.sqrt((xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2) - u[i]
                if c < 0:
                    s += c
            rho[j] = s
        order = np.argsort(rho)
        value = u.sum()
        for q in range(p):
            value += rho[order[q]]
        if value > best:
            best = value
            state[2] = 0
        else:
            state[2] += 1
            if state[2] >= 20:
                state[0] *= 0.5
                state[2] = 0
        # subgradient g_i = 1 - sum_{j open} [c_ij < u_i]
        g = np.ones(n)
        for q in range(p):
            j = order[q]
            for i in range(n):
                if w[i] * np.sqrt((xy[i, 0] - xy[j, 0]) ** 2 + (xy[i, 1] - xy[j, 1]) ** 2) < u[i]:
                    g[i] -= 1.0
        norm = (g * g).sum()
        if norm == 0:
            break
        step = state[0] * max(upper - value, 1e-9 * max(abs(upper), 1.0)) / norm
        for i in range(n):
            u[i] += step * g[i]
    state[1] = best
    return best


def lagrangian_pmedian_bound(
    xy: np.ndarray, weights: np.ndarray, p: int, upper: float, time_limit_s: float
) -> float | None:
    """Lagrangian p-median bound (model in the module docstring), within ``time_limit_s``.

    ``upper`` is a known objective value (it sets the subgradient step length).
    """
    n = len(xy)
    if p >= n:
        return 0.0
    deadline = time.perf_counter() + time_limit_s
    # start: each unit's cost to the unit that closes a territory-sized ball around it
    kth = min(n - 1, max(1, n // p))
    dist = cKDTree(xy).query(xy, k=kth + 1)[0]
    u = weights * dist.reshape(n, -1)[:, -1]
    state = np.array([2.0, -np.inf, 0.0])
    best = None
    while time.perf_counter() < deadline and state[0] > 1e-4:
        best = _lagrangian_steps(xy, weights, p, u, 5, upper, state)
    return None if best is None else max(0.0, float(best))
