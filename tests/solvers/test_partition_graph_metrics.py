"""Graph helpers, shared metrics, the CTDP generator, and property tests of the engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partition_helpers import check_invariants, grid, load_ctdp
from scipy.spatial.distance import cdist, pdist

from solvers.partition import (
    PartitionParams,
    PartitionProblem,
    adjacency_csr,
    connect_components,
    delaunay_edges,
    solve_partition,
)
from solvers.partition.metrics import (
    balance_excess,
    relative_deviation,
    territory_contiguity,
    territory_diameters,
    territory_sum_distance,
    weighted_medoids,
)

# ---------------------------------------------------------------- graph


def test_delaunay_of_a_square_and_trimming_an_outlier():
    xy = np.array([[0.0, 0], [1, 0], [0, 1], [1, 1]])
    e = delaunay_edges(xy, trim_factor=None)
    assert len(e) == 5  # four sides and one diagonal
    assert (e[:, 0] < e[:, 1]).all()
    # two islands 20 apart: the edges across the sea are long for both of their ends, so the
    # unit-level rule trims them; the cluster-level rule gives back the short ones between
    # the two islands (and only those up to twice the shortest crossing).
    pts, _ = grid(5)
    two = np.vstack([pts, pts + np.array([24.0, 0.0])])
    full = delaunay_edges(two, trim_factor=None)
    kept = delaunay_edges(two, trim_factor=3.0)
    cross = lambda e: e[(e[:, 0] < 25) != (e[:, 1] < 25)]  # noqa: E731
    length = lambda e: np.hypot(*(two[e[:, 0]] - two[e[:, 1]]).T)  # noqa: E731
    assert len(cross(full)) >= len(cross(kept)) > 1
    assert length(cross(kept)).max() <= 2 * length(cross(full)).min() + 1e-9
    _, added = connect_components(two, kept)
    assert len(added) == 0


def test_clusters_keep_their_delaunay_neighbours():
    # A 3 x 3 grid of tight clusters: the clusters' adjacency is a grid (not a tree), so a
    # contiguous territory can take any two neighbouring clusters.
    pts, _ = grid(5)
    blocks = [(bx, by) for bx in range(3) for by in range(3)]
    xy = np.vstack([pts + 40.0 * np.array(b) for b in blocks])
    cluster = np.repeat(np.arange(9), 25)
    e = delaunay_edges(xy, trim_factor=3.0)
    a, b = cluster[e[:, 0]], cluster[e[:, 1]]
    pairs = {(min(x, y), max(x, y)) for x, y in zip(a, b, strict=True) if x != y}
    side = {(min(i, j), max(i, j)) for i, (x1, y1) in enumerate(blocks)
            for j, (x2, y2) in enumerate(blocks) if abs(x1 - x2) + abs(y1 - y2) == 1}
    assert side <= pairs  # all 12 side-by-side pairs; a tree would have 8 links
    # a lone point far out links only to what is within twice its nearest crossing
    lone = np.vstack([xy, [[1000.0, 1000.0]]])
    e2 = delaunay_edges(lone, trim_factor=3.0)
    at = e2[(e2 == 225).any(axis=1)]
    d = np.hypot(*(lone[at[:, 0]] - lone[at[:, 1]]).T)
    nearest = np.hypot(*(xy - lone[225]).T).min()
    assert len(at) >= 1 and d.max() <= 2 * nearest + 1e-9


def test_delaunay_degenerate_inputs():
    assert delaunay_edges(np.zeros((1, 2))).shape == (0, 2)
    line = np.array([[0.0, 0], [2, 0], [1, 0], [3, 0]])
    np.testing.assert_array_equal(delaunay_edges(line), [[0, 2], [1, 2], [1, 3]])


def test_connect_components_joins_islands_to_nearest_unit():
    xy = np.array([[0.0, 0], [1, 0], [10, 0], [11, 0], [30, 0]])
    edges, added = connect_components(xy, np.array([[0, 1], [2, 3]]))
    np.testing.assert_array_equal(added, [[1, 2], [3, 4]])
    assert len(edges) == 4
    same, none = connect_components(xy[:2], np.array([[0, 1]]))
    assert len(none) == 0 and len(same) == 1


def test_adjacency_csr_is_symmetric_and_deduplicated():
    indptr, indices = adjacency_csr(4, np.array([[0, 1], [1, 0], [1, 2], [2, 2], [3, 2]]))
    nbrs = [indices[indptr[u]:indptr[u + 1]].tolist() for u in range(4)]
    assert nbrs == [[1], [0, 2], [1, 3], [2]]


# ---------------------------------------------------------------- metrics


def test_diameters_match_brute_force():
    rng = np.random.default_rng(1)
    xy = rng.random((400, 2)) * 100
    a = rng.integers(0, 7, 400)
    a[a == 6] = 5  # territory 6 empty
    d = territory_diameters(xy, a, 7)
    for k in range(6):
        assert d[k] == pytest.approx(pdist(xy[a == k]).max(), rel=1e-12)
    assert d[6] == 0
    collinear = np.array([[0.0, 0], [1, 1], [2, 2], [2, 2]])
    assert territory_diameters(collinear, np.zeros(4, np.int64), 1)[0] == pytest.approx(8**0.5)


def test_medoids_match_brute_force():
    rng = np.random.default_rng(2)
    xy = rng.random((300, 2))
    w = rng.random(300)
    a = rng.integers(0, 4, 300)
    med = weighted_medoids(xy, w, a, 4)
    for k in range(4):
        s = np.flatnonzero(a == k)
        assert med[k] == s[np.argmin(cdist(xy[s], xy[s]) @ w[s])]
    sumd = territory_sum_distance(xy, w, a, xy[med])
    assert sumd[0] == pytest.approx((cdist(xy[a == 0], xy[med[0]][None]).ravel() * w[a == 0]).sum())


def test_deviation_excess_and_contiguity():
    totals = np.array([[10.0, 0.0], [12.0, 1.0]])
    targets = np.array([[10.0, 0.0], [10.0, 0.0]])
    dev = relative_deviation(totals, targets)
    assert dev[0, 0] == 0 and dev[1, 0] == pytest.approx(0.2)
    assert dev[0, 1] == 0 and dev[1, 1] == np.inf
    exc = balance_excess(totals, targets, np.array([0.1, 0.1]))
    assert exc[1, 0] == pytest.approx(0.1) and exc[1, 1] == 1.0 and exc[0, 0] == 0
    _, edges = grid(3)
    a = np.array([0, 0, 1, 1, 1, 1, 0, 1, 1])  # unit 6 is cut off from 0 and 1
    np.testing.assert_array_equal(territory_contiguity(a, 3, edges), [False, True, False])


# ---------------------------------------------------------------- CTDP generator


def test_ctdp_generator_follows_the_mt19937_stream():
    ctdp = load_ctdp()
    bg = np.random.MT19937()
    bg._legacy_seeding(5489)
    assert bg.random_raw() == 3499211612  # the reference first output of std::mt19937
    inst = ctdp.generate(100, 5, 7)
    again = ctdp.generate(100, 5, 7)
    np.testing.assert_array_equal(inst.xy, again.xy)
    assert inst.xy.shape == (100, 2) and inst.measures.shape == (100, 3)
    assert (np.diff(inst.xy[:, 0]) >= 0).all()  # sorted by x
    assert (inst.measures.min(axis=0) >= [4, 15, 15]).all()
    assert (inst.measures.max(axis=0) <= [20, 400, 100]).all()
    assert ctdp.parse_name("del-n1000-k5-s2292") == (1000, 5, 2292)


@pytest.mark.needs_shared
def test_ctdp_published_tables(shared_dir):
    ctdp = load_ctdp()
    bench = shared_dir / "bench" / "territory" / "ctdp"
    names = ctdp.instance_names(bench)
    assert len(names) == 48
    best = ctdp.best_known(bench)
    assert best["del-n1000-k5-s2292"] == pytest.approx(612.8642)


@pytest.mark.slow
def test_ctdp_small_instance_reaches_published_quality():
    ctdp = load_ctdp()
    inst = ctdp.generate(1000, 5, 2292)
    prob = PartitionProblem(inst.xy, inst.measures, 5, 0.05, edges=inst.edges,
                            objective="diameter")
    res = solve_partition(prob, time_limit_s=20)
    check_invariants(prob, res)
    assert res.feasible
    assert res.objective <= 1.05 * 612.8642  # best known of the A-TS runs (10 x 30 min)


# ---------------------------------------------------------------- property tests


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(6, 40),
    p=st.integers(1, 5),
    m=st.integers(1, 3),
    tol=st.sampled_from([0.0, 0.05, 0.3]),
    objective=st.sampled_from(["sum_distance", "diameter"]),
    contiguous=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_instances_satisfy_invariants(n, p, m, tol, objective, contiguous, seed):
    rng = np.random.default_rng(seed)
    xy = rng.random((n, 2)) * 10
    measures = rng.integers(1, 5, (n, m)).astype(float)
    edges = connect_components(xy, delaunay_edges(xy))[0]
    prob = PartitionProblem(xy, measures, min(p, n), tol, edges=edges, objective=objective,
                            contiguous=contiguous)
    res = solve_partition(prob, time_limit_s=5, seed=seed, max_iterations=500,
                          params=PartitionParams(max_starts_without_improvement=2))
    check_invariants(prob, res)
