"""Turn a ``CallCycleProblem`` into flat arrays for the search, and drop what cannot be served.

A *visit node* ``v`` is one required visit ``(account, j)`` (or a fixed appointment) still to be
planned. For each node and day ``d`` the instance holds the allowed start-time windows
``[lo, hi]`` (the visit starts at ``s`` with ``lo <= s <= hi``): the account's opening windows
on that weekday, shrunk by the visit length so the whole visit fits, intersected with the
working window; an appointment gets ``[start, start]`` on its day only.

Visits that no plan can serve are decided here and never reach a solver, each with its reason:

* ``closed``: no working day of its spacing window on which the account is open;
* ``frozen``: its window days that are open are all frozen and the frozen plan does not serve it;
* ``unreachable``: it does not fit any allowed day even alone (home -> account -> home), and
  no overnight stay can help (the account is not remote, no adjacent day can hold a stay, or
  it lies more than a working day's drive from home: trips never include days of pure
  driving with stays on the road);
* ``gap``: gap mode only, fewer days than visits at the minimum gap.

An appointment counts as the visit whose window holds its day (if that visit is still
open, else as an extra visit ``j >= visits[a]``); if no plan can keep it, that visit is dropped
with reason ``appointment``. An appointment on a frozen day that the frozen plan does not
hold is reported as dropped (``frozen``) under an extra visit number.

Penalty of a node of account ``a``: ``ceil(unit * max(value[a], 1e-6 max(value)))`` with
``unit = (2 max cost + night cost + 1) / min value``: the smallest penalty exceeds any
detour (two legs) plus a night, so serving a visit always pays when it fits. Appointments get
four times the sum of all other penalties (kept whenever any plan can keep them).

Times are whole minutes: each leg's driving time is rounded up (``ceil``) so that a schedule
in whole minutes is also feasible with the exact matrix. Costs are integers in 1/100 of an
objective unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.routing.cycle_plan import DayPlan
from solvers.routing.cycle_problem import CallCycleProblem

__all__ = ["COST_SCALE", "NO_LUNCH", "Instance", "PreDrop", "build_instance"]

#: Integer cost units per objective unit.
COST_SCALE = 100
#: Lunch parameters that disable the break (latest start before any time).
NO_LUNCH = -(10**6)


@dataclass(frozen=True)
class PreDrop:
    """A visit dropped before solving."""

    account: int
    visit: int
    reason: str


@dataclass(frozen=True, eq=False)
class Instance:
    """Flat arrays of the search problem (internal; see the module docstring).

    Locations are the problem's (0 = home, ``a + 1`` = account ``a``). Days are all ``D`` days;
    frozen days allow no node.
    """

    n_days: int
    travel: np.ndarray          # (L, L) int64, minutes rounded up
    cost: np.ndarray            # (L, L) int64, COST_SCALE * (minute_cost * min + km_cost * km)
    node_loc: np.ndarray        # (V,) int64 location of each node
    node_acc: np.ndarray        # (V,) int64 account
    node_j: np.ndarray          # (V,) int64 visit number (-2: numbered in day order, gap mode)
    node_svc: np.ndarray        # (V,) int64 service minutes
    node_pen: np.ndarray        # (V,) int64 drop penalty
    node_app: np.ndarray        # (V,) bool fixed appointment
    allowed: np.ndarray         # (V, D) bool
    win_lo: np.ndarray          # (V, D, K) int64 start-window lower bounds (-1 = none)
    win_hi: np.ndarray          # (V, D, K) int64
    day_ws: np.ndarray          # (D,) int64
    day_we: np.ndarray          # (D,) int64
    day_span: np.ndarray        # (D,) int64 bound on end - start
    day_week: np.ndarray        # (D,) int64
    linkable: np.ndarray        # (D,) bool: a stay after day d is allowed
    lunch: np.ndarray           # (3,) int64: earliest start, latest start, duration
    stay_ok: np.ndarray         # (L,) bool: location may host a stay
    night_cost: int             # cost units per night
    nights_left: np.ndarray     # (W,) int64 nights per week still allowed outside frozen days
    fixed_start_loc: np.ndarray  # (D,) int64 start location forced by a frozen stay, else -1
    first_free_day: int         # == frozen_days
    gap: int                    # min gap days (0 = window mode)
    n_accounts: int
    penalty_unit: float         # cost units per unit of value
    pre_dropped: tuple[PreDrop, ...]
    frozen_days: tuple[DayPlan, ...]
    frozen_visit_numbers: tuple[tuple[int, ...], ...]  # per frozen day, visit numbers

    @property
    def n_nodes(self) -> int:
        return int(self.node_loc.shape[0])


def _start_windows(problem: CallCycleProblem, a: int, d: int) -> list[tuple[int, int]]:
    """Start-time windows of a visit of account ``a`` on day ``d`` (whole visit inside)."""
    ow = problem.open_windows[a, int(problem.day_weekday[d])]  # type: ignore[index]
    svc = int(problem.visit_min[a])
    ws = int(problem.work_start[d])
    we = int(problem.work_end[d])
    out = []
    for lo, hi in ow:
        if lo < 0:
            continue
        s0 = max(int(lo), ws)
        s1 = min(int(hi), we) - svc
        if s1 >= s0:
            out.append((s0, s1))
    out.sort()
    return out


def _reach_mask(problem: CallCycleProblem, travel: np.ndarray, wins: np.ndarray,
                span: np.ndarray, lunch: tuple[int, int, int], linkable: np.ndarray,
                stay_ok: np.ndarray, fixed_start_loc: np.ndarray) -> np.ndarray:
    """``(n, D)``: a lone visit of account ``a`` fits day ``d``.

    Days may start and end at home, or (when stays are possible on the adjacent nights) at the
    stay-capable location nearest to the account, so accounts beyond a day's drive from home
    stay reachable on the middle days of a trip.
    """
    from types import SimpleNamespace

    from solvers.routing.cycle_sched import eval_seq, pack_instance

    n = problem.n_accounts
    d_count = problem.n_days
    probe = SimpleNamespace(
        travel=travel, cost=np.zeros_like(travel, dtype=np.int64),
        node_loc=np.arange(1, n + 1), node_svc=problem.visit_min,
        node_pen=np.zeros(n, dtype=np.int64), node_app=np.zeros(n, dtype=bool),
        allowed=np.ones((n, d_count), dtype=bool), win_lo=wins[..., 0], win_hi=wins[..., 1],
        day_ws=problem.work_start, day_we=problem.work_end, day_span=span,
        lunch=np.asarray(lunch))
    packed = pack_instance(probe)
    out = np.zeros((n, d_count), dtype=bool)
    seq = np.zeros(1, dtype=np.int64)
    full = np.asarray(problem.work_end) - np.asarray(problem.work_start)
    # The hotel nearest to each account (a stay-capable account location, maybe its own).
    hotels = np.flatnonzero(stay_ok)
    nearest = np.full(n + 1, -1, dtype=np.int64)
    if len(hotels):
        round_trip = travel[np.ix_(hotels, np.arange(n + 1))] + travel[np.ix_(np.arange(n + 1),
                                                                             hotels)].T
        nearest = hotels[np.argmin(round_trip, axis=0)]
    for a in range(n):
        if problem.visits[a] == 0 and not np.any(problem.appointments[:, 0] == a):  # type: ignore[index]
            continue
        seq[0] = a
        loc = a + 1
        hotel = int(nearest[loc])
        for d in range(d_count):
            if wins[a, d, 0, 0] < 0:
                continue
            starts = [0 if fixed_start_loc[d] < 0 else int(fixed_start_loc[d])]
            ends = [0]
            if hotel >= 0:
                if linkable[d]:
                    ends.append(hotel)
                if d > 0 and linkable[d - 1] and fixed_start_loc[d] < 0:
                    starts.append(hotel)
            for s0 in starts:
                for e0 in ends:
                    ok, end, start = eval_seq(packed, d, seq, 1, s0, e0)
                    if ok and (span[d] >= full[d] or end - start <= span[d]):
                        out[a, d] = True
    return out


def build_instance(problem: CallCycleProblem) -> Instance:
    """Precompute the search arrays and the visits dropped before solving.

    Parameters
    ----------
    problem : CallCycleProblem

    Returns
    -------
    Instance
    """
    n = problem.n_accounts
    d_count = problem.n_days
    frozen = problem.frozen_days
    minutes = problem.minutes
    travel = np.ceil(minutes - 1e-9).astype(np.int64)
    cost = np.rint(COST_SCALE * (problem.minute_cost * minutes + problem.km_cost * problem.km)
                   ).astype(np.int64)
    ws = np.asarray(problem.work_start, dtype=np.int64)
    we = np.asarray(problem.work_end, dtype=np.int64)
    span = problem.span_bound_min().astype(np.int64)
    if problem.lunch_min > 0:
        lunch = (problem.lunch_start, problem.lunch_end - problem.lunch_min, problem.lunch_min)
    else:
        lunch = (0, NO_LUNCH, 0)
    week = np.asarray(problem.day_week, dtype=np.int64)
    n_weeks = int(week.max()) + 1
    linkable = problem.linkable()
    linkable[:frozen] = False  # stays after frozen days come from the frozen plan
    if problem.max_nights_per_week == 0:
        linkable[:] = False

    # Remote accounts may host a stay, if the rep can drive there (and back) within a working
    # day: trips are never planned with whole days of driving.
    far = np.maximum(minutes[0, 1:], minutes[1:, 0]) >= problem.stay_min_drive_min
    longest = int((we - ws).max())
    if problem.lunch_min > 0:
        # The lunch falls inside a day that long (see ``set_capacity`` in cycle_search).
        longest = int(max((we - ws).max() - problem.lunch_min,
                          (lunch[1] - ws).max(), (we - lunch[0] - lunch[2]).max()))
    within = (travel[0, 1:] <= longest) & (travel[1:, 0] <= longest)
    stay_ok = np.zeros(n + 1, dtype=bool)
    stay_ok[1:] = far & within & (problem.max_nights_per_week > 0)

    # Frozen days: copy, count nights, match visit numbers.
    frozen_days: list[DayPlan] = []
    frozen_numbers: list[tuple[int, ...]] = []
    used: dict[tuple[int, int], int] = {}
    extra = np.asarray(problem.visits, dtype=np.int64).copy()
    nights_left = np.full(n_weeks, problem.max_nights_per_week, dtype=np.int64)
    fixed_start_loc = np.full(d_count, -1, dtype=np.int64)
    frozen_acc_days: list[list[int]] = [[] for _ in range(n)]
    if frozen > 0:
        assert problem.previous is not None
        for dp in problem.previous.days[:frozen]:
            numbers = []
            for pv in dp.visits:
                a, j = pv.account, pv.visit
                f = int(problem.visits[a])
                if not (0 <= j < f) or (a, j) in used:
                    j = -1
                    if f > 0 and not problem.gap_mode:
                        for jw in range(f):
                            lo, hi = problem.visit_window(a, jw)
                            if lo <= dp.day <= hi and (a, jw) not in used:
                                j = jw
                    if j < 0:
                        j = int(extra[a])
                        extra[a] += 1
                used[(a, j)] = dp.day
                numbers.append(j)
                frozen_acc_days[a].append(dp.day)
            frozen_days.append(dp)
            frozen_numbers.append(tuple(numbers))
            if dp.stay is not None:
                nights_left[week[dp.day]] -= 1
        last = problem.previous.days[frozen - 1]
        if last.stay is not None and frozen < d_count:
            fixed_start_loc[frozen] = last.stay + 1
    nights_left = np.maximum(nights_left, 0)

    # Start windows per account and day, and which lone visits fit a day at all.
    k_max = 1
    win_lists: list[list[list[tuple[int, int]]]] = []
    for a in range(n):
        row = []
        for d in range(d_count):
            w = _start_windows(problem, a, d) if d >= 0 else []
            k_max = max(k_max, len(w))
            row.append(w)
        win_lists.append(row)
    wins = np.full((n, d_count, k_max, 2), -1, dtype=np.int64)
    for a in range(n):
        for d in range(d_count):
            for k, (lo, hi) in enumerate(win_lists[a][d]):
                wins[a, d, k] = (lo, hi)
    reach = _reach_mask(problem, travel, wins, span, lunch, linkable, stay_ok, fixed_start_loc)

    # Value -> penalty: the smallest penalty exceeds any detour (and one night).
    val = np.asarray(problem.value, dtype=np.float64)
    vmax = float(val.max()) if n else 1.0
    floor = max(vmax * 1e-6, 1e-12) if vmax > 0 else 1.0
    val_eff = np.maximum(val, floor)
    vmin = float(val_eff.min()) if n else 1.0
    detour = 2 * int(cost.max()) + round(COST_SCALE * problem.night_cost) + 1
    penalty_unit = detour / vmin

    nodes_acc: list[int] = []
    nodes_j: list[int] = []
    nodes_app: list[bool] = []
    nodes_days: list[list[tuple[int, list[tuple[int, int]]]]] = []
    pre: list[PreDrop] = []

    def classify(a: int, days: range | list[int]) -> tuple[list[int], str]:
        """Usable days of account ``a`` among ``days``, and the reason when there are none."""
        open_free = [d for d in days if d >= frozen and win_lists[a][d]]
        ok = [d for d in open_free if reach[a, d]]
        if ok:
            return ok, ""
        if open_free:
            return ok, "unreachable"
        if any(win_lists[a][d] for d in days if d < frozen):
            return ok, "frozen"
        return ok, "closed"

    # Appointments on free days.
    app_taken: set[tuple[int, int]] = set()
    app_days: dict[int, list[int]] = {}
    for a, day, start in problem.appointments:  # type: ignore[union-attr]
        a, day, start = int(a), int(day), int(start)
        if day < frozen:
            # Past: kept if the frozen plan has it; otherwise report it, under an extra visit
            # number so the account's regular visit can still be planned.
            if not any(v.account == a and v.start == start for v in frozen_days[day].visits):
                pre.append(PreDrop(a, int(extra[a]), "frozen"))
                extra[a] += 1
            continue
        f = int(problem.visits[a])
        j = -1
        if problem.gap_mode:
            j = -2  # numbered in day order afterwards
        elif f > 0:
            for jj in range(f):
                lo, hi = problem.visit_window(a, jj)
                if lo <= day <= hi and (a, jj) not in used and (a, jj) not in app_taken:
                    j = jj
                    break
        if j == -1:
            j = int(extra[a])
            extra[a] += 1
        if j >= 0:
            app_taken.add((a, j))
        app_days.setdefault(a, []).append(day)
        nodes_acc.append(a)
        nodes_j.append(j)
        nodes_app.append(True)
        nodes_days.append([(day, [(start, start)])])

    if not problem.gap_mode:
        for a in range(n):
            f = int(problem.visits[a])
            for j in range(f):
                if (a, j) in used or (a, j) in app_taken:
                    continue
                lo, hi = problem.visit_window(a, j)
                ok_days, reason = classify(a, range(lo, hi + 1))
                if not ok_days:
                    pre.append(PreDrop(a, j, reason))
                    continue
                nodes_acc.append(a)
                nodes_j.append(j)
                nodes_app.append(False)
                nodes_days.append([(d, win_lists[a][d]) for d in ok_days])
    else:
        g = int(problem.min_gap_days)  # type: ignore[arg-type]
        for a in range(n):
            f = int(problem.visits[a])
            fixed = sorted(frozen_acc_days[a] + app_days.get(a, []))
            done = sum(1 for (aa, j) in used if aa == a and j < f) + len(app_days.get(a, []))
            need = f - done
            if need <= 0:
                continue
            ok_days, reason = classify(a, range(d_count))
            ok_days = [d for d in ok_days if all(abs(d - x) >= g for x in fixed)]
            # Greedy count of days placeable at the gap from each other.
            placed = 0
            last = -(10**9)
            for d in ok_days:
                if d - last >= g:
                    placed += 1
                    last = d
            for k in range(need):
                if k >= placed:
                    pre.append(PreDrop(a, done + k, reason or "gap"))
                    continue
                nodes_acc.append(a)
                nodes_j.append(-2)
                nodes_app.append(False)
                nodes_days.append([(d, win_lists[a][d]) for d in ok_days])

    v_count = len(nodes_acc)
    allowed = np.zeros((v_count, d_count), dtype=bool)
    win_lo = np.full((v_count, d_count, k_max), -1, dtype=np.int64)
    win_hi = np.full((v_count, d_count, k_max), -1, dtype=np.int64)
    for v, days in enumerate(nodes_days):
        for d, wl in days:
            allowed[v, d] = True
            for k, (lo, hi) in enumerate(wl):
                win_lo[v, d, k] = lo
                win_hi[v, d, k] = hi
    node_acc = np.asarray(nodes_acc, dtype=np.int64)
    node_pen = (np.ceil(penalty_unit * val_eff[node_acc]).astype(np.int64) if v_count
                else np.zeros(0, dtype=np.int64))
    node_app = np.asarray(nodes_app, dtype=bool)
    if node_app.any():
        # Appointments are kept whenever any plan can keep them.
        node_pen[node_app] = int(node_pen[~node_app].sum() + detour) * 4
    return Instance(
        n_days=d_count, travel=travel, cost=cost,
        node_loc=node_acc + 1, node_acc=node_acc,
        node_j=np.asarray(nodes_j, dtype=np.int64),
        node_svc=np.asarray(problem.visit_min, dtype=np.int64)[node_acc],
        node_pen=node_pen, node_app=node_app, allowed=allowed, win_lo=win_lo, win_hi=win_hi,
        day_ws=ws, day_we=we, day_span=span, day_week=week, linkable=linkable,
        lunch=np.asarray(lunch, dtype=np.int64), stay_ok=stay_ok,
        night_cost=round(COST_SCALE * problem.night_cost), nights_left=nights_left,
        fixed_start_loc=fixed_start_loc, first_free_day=frozen,
        gap=int(problem.min_gap_days or 0), n_accounts=n,
        penalty_unit=float(penalty_unit), pre_dropped=tuple(pre),
        frozen_days=tuple(frozen_days), frozen_visit_numbers=tuple(frozen_numbers),
    )
