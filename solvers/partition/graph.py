"""Unit adjacency graphs: Delaunay edges, joining islands, CSR adjacency.

Edges are ``(e, 2)`` int64 arrays of unit indices with ``u < v`` and no duplicates. Coordinates
are planar (the caller projects lon/lat first), so lengths are Euclidean.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, QhullError, cKDTree

from solvers._unique import unique_int

__all__ = ["adjacency_csr", "canonical_edges", "connect_components", "delaunay_edges"]


def canonical_edges(edges: np.ndarray) -> np.ndarray:
    """Return edges as sorted ``(u, v)`` pairs with ``u < v``, without self-loops or duplicates."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = np.sort(e, axis=1)
    e = e[e[:, 0] != e[:, 1]]
    if len(e) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    # One int64 key per edge: a 1-D unique sorts ten times faster than ``unique(axis=0)``.
    base = int(e[:, 1].max()) + 1
    key = unique_int(e[:, 0] * base + e[:, 1])
    return np.stack([key // base, key % base], axis=1)


def _path_edges(xy: np.ndarray) -> np.ndarray:
    """Chain the points along their main axis (the graph of a degenerate, collinear set)."""
    n = len(xy)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64)
    centred = xy - xy.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    order = np.argsort(centred @ axis, kind="stable")
    return canonical_edges(np.stack([order[:-1], order[1:]], axis=1))


def delaunay_edges(xy: np.ndarray, trim_factor: float | None = 3.0) -> np.ndarray:
    """Edges of the Delaunay triangulation of the units, long edges trimmed.

    An edge ``(u, v)`` of length ``l`` is trimmed when ``l > trim_factor * max(s_u, s_v)``, where
    ``s_u`` is the lower median length of the edges at ``u``: it is long for both of its ends (hull
    slivers, edges across a sea or an empty region). The lower median keeps a low-degree unit on a
    coast from taking its long edges as its local scale. Trimming can split the graph; pass the result
    through :func:`connect_components` to join the pieces again.

    Parameters
    ----------
    xy : (n, 2) float array of planar coordinates.
    trim_factor : multiple of the local median edge length above which an edge is dropped;
        ``None`` keeps every edge of the triangulation.

    Returns
    -------
    (e, 2) int64 array of edges with ``u < v``. Fewer than three points, or collinear points,
    give the path along the points' main axis; duplicated points get no edge.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    if n < 3:
        return _path_edges(xy)
    try:
        tri = Delaunay(xy)
    except QhullError:
        return _path_edges(xy)
    s = tri.simplices
    edges = canonical_edges(np.concatenate([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]]))
    if trim_factor is None or len(edges) == 0:
        return edges
    length = np.hypot(*(xy[edges[:, 0]] - xy[edges[:, 1]]).T)
    median = _lower_median_at_nodes(n, edges[:, 0], edges[:, 1], length)
    scale = np.maximum(median[edges[:, 0]], median[edges[:, 1]])
    keep = length <= trim_factor * scale
    return np.concatenate([edges[keep], _restore_between_clusters(
        n, edges[keep], edges[~keep], length[~keep], trim_factor)])


def _lower_median_at_nodes(n: int, u: np.ndarray, v: np.ndarray, length: np.ndarray
                           ) -> np.ndarray:
    """(n,) lower median length of the edges ``(u, v)`` at each node (0 for isolated nodes)."""
    ends = np.concatenate([u, v])
    lens = np.concatenate([length, length])
    order = np.lexsort((lens, ends))
    ends, lens = ends[order], lens[order]
    starts = np.searchsorted(ends, np.arange(n))
    deg = np.searchsorted(ends, np.arange(n), side="right") - starts
    median = np.zeros(n)
    has = deg > 0
    median[has] = lens[starts[has] + (deg[has] - 1) // 2]
    return median


def _restore_between_clusters(n: int, kept: np.ndarray, cut: np.ndarray, cut_len: np.ndarray,
                              trim_factor: float) -> np.ndarray:
    """Trimmed edges to put back so that clusters keep their Delaunay neighbours.

    On clustered points (accounts packed in cities) every edge between two cities is long for both
    ends and the rule above trims them all; joining the islands back with one edge each would leave
    a tree of cities, and contiguity on a tree forbids almost every balanced plan. So the same rule
    is applied once more one level up: clusters (components of the kept edges) are adjacent when a
    trimmed Delaunay edge joins them, and a pair of clusters stays adjacent when its shortest link
    is not long for both clusters (``trim_factor`` times the lower median of each cluster's
    shortest links). Every trimmed edge of a kept pair up to twice its shortest link returns, so a
    territory can cross between two cities at more than one place.
    """
    if len(cut) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    graph = coo_matrix((np.ones(len(kept)), (kept[:, 0], kept[:, 1])), shape=(n, n))
    n_comp, label = connected_components(graph, directed=False)
    if n_comp == 1:
        return np.zeros((0, 2), dtype=np.int64)
    ca, cb = label[cut[:, 0]], label[cut[:, 1]]
    lo, hi = np.minimum(ca, cb), np.maximum(ca, cb)
    between = lo != hi
    if not between.any():
        return np.zeros((0, 2), dtype=np.int64)
    cut, cut_len, lo, hi = cut[between], cut_len[between], lo[between], hi[between]
    pair = lo.astype(np.int64) * n_comp + hi
    pairs, inverse = unique_int(pair, return_inverse=True)
    shortest = np.full(len(pairs), np.inf)
    np.minimum.at(shortest, inverse, cut_len)
    pa, pb = pairs // n_comp, pairs % n_comp
    scale = _lower_median_at_nodes(n_comp, pa, pb, shortest)  # as for units, one level up
    pair_ok = shortest <= trim_factor * np.maximum(scale[pa], scale[pb])
    back = pair_ok[inverse] & (cut_len <= 2.0 * shortest[inverse])
    return cut[back]


def connect_components(xy: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join the graph's islands, each to the nearest unit of another component.

    Borůvka-style rounds: every component except the largest gets the shortest edge from one of
    its units to a unit outside it, until one component remains.

    Parameters
    ----------
    xy : (n, 2) float array of planar coordinates.
    edges : (e, 2) int array of unit indices.

    Returns
    -------
    edges : (e', 2) int64 array, the canonical input edges plus the added ones.
    added : (a, 2) int64 array of the added edges (empty when the graph was connected), so the
        caller can warn about them.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    edges = canonical_edges(edges)
    added: list[np.ndarray] = []
    if n <= 1:
        return edges, np.zeros((0, 2), dtype=np.int64)
    tree = cKDTree(xy)
    current = edges
    while True:
        graph = coo_matrix(
            (np.ones(len(current)), (current[:, 0], current[:, 1])), shape=(n, n)
        )
        n_comp, label = connected_components(graph, directed=False)
        if n_comp == 1:
            break
        sizes = np.bincount(label, minlength=n_comp)
        largest = int(np.argmax(sizes))
        new = []
        for c in range(n_comp):
            if c == largest:
                continue
            members = np.flatnonzero(label == c)
            if len(members) <= 64:
                # Among a point's |c| + 1 nearest points at least one lies outside c, and the
                # first such one is its nearest outside point.
                dist, idx = tree.query(xy[members], k=min(n, len(members) + 1))
                dist, idx = dist.reshape(len(members), -1), idx.reshape(len(members), -1)
                dist = np.where(label[idx] != c, dist, np.inf)
                r, col = np.unravel_index(np.argmin(dist), dist.shape)
                new.append((members[r], idx[r, col]))
            else:
                outside = np.flatnonzero(label != c)
                dist, idx = cKDTree(xy[outside]).query(xy[members], k=1)
                r = int(np.argmin(dist))
                new.append((members[r], outside[idx[r]]))
        new_edges = canonical_edges(np.array(new, dtype=np.int64))
        added.append(new_edges)
        current = canonical_edges(np.concatenate([current, new_edges]))
    extra = canonical_edges(np.concatenate(added)) if added else np.zeros((0, 2), np.int64)
    return current, extra


def adjacency_csr(n: int, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric CSR adjacency of an undirected graph.

    Returns
    -------
    indptr : (n + 1,) int64; the neighbours of ``u`` are ``indices[indptr[u]:indptr[u + 1]]``,
        sorted ascending.
    indices : (2e,) int64.
    """
    e = canonical_edges(edges)
    src = np.concatenate([e[:, 0], e[:, 1]])
    dst = np.concatenate([e[:, 1], e[:, 0]])
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return indptr, dst.astype(np.int64)
