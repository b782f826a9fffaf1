"""Communities of a similarity graph: the graph and the Louvain method.

:func:`knn_graph` links each text to its most similar texts; :func:`louvain` finds groups
of that graph by maximizing modularity (:func:`modularity`), which compares the links
inside a group with what chance would give, so the number of groups follows from the
data; :func:`merge_communities` merges groups past the modularity peak down to a count.
``group.py`` uses them to find a digest's automatic sections.
"""

from __future__ import annotations

from collections import deque

import numpy as np
from scipy import sparse

RESOLUTION = 1.0
"""Standard modularity: a group must hold more links than chance would give."""

_CHUNK = 1024
"""Rows of the similarity matrix computed at once."""


def knn_graph(rows: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """Return the symmetric graph linking each L2-normalized row to its ``k`` most similar
    rows, weighted by cosine similarity; rows sharing no term are never linked."""
    n = rows.shape[0]
    if n < 2 or k < 1 or rows.shape[1] == 0:
        return sparse.csr_matrix((n, n), dtype=np.float64)
    k = min(k, n - 1)
    sources, targets, weights = [], [], []
    transposed = sparse.csr_matrix(rows.T)
    # Chunks bound memory at _CHUNK x n similarities for any n.
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        block = np.asarray((rows[start:stop] @ transposed).todense(), dtype=np.float64)
        block[np.arange(stop - start), np.arange(start, stop)] = -1.0
        nearest = np.argpartition(-block, k - 1, axis=1)[:, :k]
        sims = np.take_along_axis(block, nearest, axis=1)
        sources.append(np.repeat(np.arange(start, stop), k))
        targets.append(nearest.ravel())
        weights.append(sims.ravel())
    src, dst, w = np.concatenate(sources), np.concatenate(targets), np.concatenate(weights)
    keep = w > 1e-9
    graph = sparse.csr_matrix((w[keep], (src[keep], dst[keep])), shape=(n, n))
    return sparse.csr_matrix(graph.maximum(graph.T))


def modularity(
    graph: sparse.csr_matrix, labels: np.ndarray, resolution: float = RESOLUTION
) -> float:
    """Return the modularity of a partition of a weighted undirected graph."""
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    total = float(degrees.sum())
    if total <= 0:
        return 0.0
    coo = graph.tocoo()
    inside = float(coo.data[labels[coo.row] == labels[coo.col]].sum())
    per_group = np.bincount(labels, weights=degrees)
    return inside / total - resolution * float((per_group**2).sum()) / total**2


def _local_moving(graph: sparse.csr_matrix, order: list[int], resolution: float) -> list[int]:
    """One Louvain level: move nodes to the neighbouring community that gains most
    modularity until no move gains; returns each node's community.

    Nodes are visited from a queue, and a move queues only the neighbours it may have
    changed things for (as in Leiden's fast local moving), which saves most of the full
    passes the original method makes.
    """
    indptr: list[int] = graph.indptr.tolist()
    indices: list[int] = graph.indices.tolist()
    data: list[float] = graph.data.tolist()
    degrees: list[float] = np.asarray(graph.sum(axis=1)).ravel().tolist()
    # Self-loops (a community's inner weight after aggregation) count in the degree but
    # never pull a node anywhere, so they are left out of the neighbour lists.
    neighbors = []
    for node in range(len(degrees)):
        start, stop = indptr[node], indptr[node + 1]
        pairs = [(o, w) for o, w in zip(indices[start:stop], data[start:stop], strict=True)]
        neighbors.append([(o, w) for o, w in pairs if o != node])
    total = sum(degrees)
    community = list(range(len(degrees)))
    totals = list(degrees)
    scale = resolution / total
    queue = deque(order)
    queued = [True] * len(degrees)
    while queue:
        node = queue.popleft()
        queued[node] = False
        current = community[node]
        degree = degrees[node]
        links: dict[int, float] = {}
        for other, weight in neighbors[node]:
            c = community[other]
            links[c] = links.get(c, 0.0) + weight
        totals[current] -= degree
        best = current
        best_gain = links.get(current, 0.0) - scale * totals[current] * degree
        for c, weight in links.items():
            gain = weight - scale * totals[c] * degree
            if gain > best_gain + 1e-12:
                best, best_gain = c, gain
        totals[best] += degree
        if best != current:
            community[node] = best
            for other, _ in neighbors[node]:
                if not queued[other] and community[other] != best:
                    queued[other] = True
                    queue.append(other)
    return community


def louvain(
    graph: sparse.csr_matrix, *, seed: int = 0, resolution: float = RESOLUTION
) -> np.ndarray:
    """Return community labels ``0..m-1`` of a weighted undirected graph (Louvain method:
    local moving, then the communities become nodes of a smaller graph, repeated)."""
    n = graph.shape[0]
    labels = np.arange(n)
    if n == 0 or graph.nnz == 0:
        return labels
    rng = np.random.default_rng(seed)
    current = sparse.csr_matrix(graph, dtype=np.float64)
    while True:
        order = rng.permutation(current.shape[0]).tolist()
        community = np.unique(_local_moving(current, order, resolution), return_inverse=True)[1]
        count = int(community.max()) + 1
        if count == current.shape[0]:
            break
        labels = community[labels]
        merge = sparse.csr_matrix(
            (np.ones(len(community)), (np.arange(len(community)), community)),
            shape=(len(community), count),
        )
        current = sparse.csr_matrix(merge.T @ current @ merge)
    return labels


def merge_communities(
    graph: sparse.csr_matrix, labels: np.ndarray, target: int, resolution: float = RESOLUTION
) -> np.ndarray:
    """Merge linked communities until at most ``target`` of them have links, the merge
    that loses least modularity first (greedy agglomeration past the modularity peak).

    Communities without any link (texts sharing no word with the others) are left alone:
    there is nothing to say which group they belong with.
    """
    count = int(labels.max()) + 1 if len(labels) else 0
    onehot = sparse.csr_matrix(
        (np.ones(len(labels)), (np.arange(len(labels)), labels)), shape=(len(labels), count)
    )
    between = np.asarray((onehot.T @ graph @ onehot).todense(), dtype=np.float64)
    totals = between.sum(axis=1)
    total = float(totals.sum())
    if total <= 0:
        return labels
    parent = np.arange(count)
    alive = totals > 0
    while int(alive.sum()) > max(target, 1):
        gain = between / total - resolution * np.outer(totals, totals) / total**2
        allowed = np.triu(between > 0, 1) & np.outer(alive, alive)
        if not allowed.any():
            break
        gain[~allowed] = -np.inf
        a, b = np.unravel_index(int(np.argmax(gain)), gain.shape)
        between[a, :] += between[b, :]
        between[:, a] += between[:, b]
        between[b, :] = 0.0
        between[:, b] = 0.0
        totals[a] += totals[b]
        totals[b] = 0.0
        alive[b] = False
        parent[b] = a
    for c in range(count):  # follow merges to the surviving community
        root = c
        while parent[root] != root:
            root = parent[root]
        parent[c] = root
    merged: np.ndarray = parent[labels]
    return merged
