"""Copy detection: does the generator reproduce its training images? Pure functions on feature vectors.

Two scores, both judged against real held-out images (which the generator never saw, so they show how close a
new image from the data distribution lands to the training set by chance):
- copy share: the share of samples nearer to a training image than `quantile` (5%) of held-out images are.
  Held-out-like samples score about `quantile`; a generator that returns training images scores 1.
- C_T, the data-copying test statistic of Meehan, Chaudhuri & Dasgupta (AISTATS 2020): the training set is cut
  into k-means cells; in each cell a Mann-Whitney U test compares the samples' and the held-out images'
  distances to their nearest training image in the cell; C_T is the held-out-weighted mean of the cells'
  z-scores. About 0 for a generator that neither copies nor underfits, strongly negative for copying (the
  paper flags C_T < -3), positive for samples farther from the training data than new real images are.
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor
MIN_FAKES = 20  # C_T leaves out cells with fewer samples (the paper's tau = 20 / m)
# C_T's cells are fitted on at most this many training points (drawn with the seed; every point is then assigned
# to its nearest centre): k-means over a million 2048-d features would take 16 GB in float64 and an hour, and a
# few cells are placed as well by 20,000 points
KMEANS_FIT = 20_000


def nearest(queries: Tensor, refs: Tensor, chunk: int = 1000, ref_chunk: int = 16_384,
            rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(distance, index) of each query's nearest reference point, Euclidean; float64 distances. Memory is
    bounded whatever the number of references: `chunk` queries at a time against `ref_chunk` references at a
    time (a distance block of at most chunk x ref_chunk), each converted to float64 only while it is used; on a
    tie between chunks the lower index wins. `rows`: search only these references (indices into `refs`, gathered
    a chunk at a time rather than copied out whole); the index returned is then a position in `rows`."""
    dist = torch.full((len(queries),), float("inf"), dtype=torch.float64)
    index = torch.zeros(len(queries), dtype=torch.long)
    n_refs = len(refs) if rows is None else len(rows)
    for r0 in range(0, n_refs, ref_chunk):
        r = (refs[r0 : r0 + ref_chunk] if rows is None else refs[rows[r0 : r0 + ref_chunk]]).double()
        for start in range(0, len(queries), chunk):
            d, i = torch.cdist(queries[start : start + chunk].double(), r).min(1)
            better = d < dist[start : start + len(d)]
            dist[start : start + len(d)] = torch.where(better, d, dist[start : start + len(d)])
            index[start : start + len(d)] = torch.where(better, i + r0, index[start : start + len(d)])
    return dist, index


def copy_share(sample_dist: Tensor, holdout_dist: Tensor, quantile: float = 0.05) -> tuple[float, float]:
    """(share of samples nearer to the training set than the `quantile` of held-out images, that distance)."""
    threshold = torch.quantile(holdout_dist.double(), quantile).item()
    return (sample_dist < threshold).double().mean().item(), threshold


def mann_whitney_z(held: Tensor, fake: Tensor) -> float:
    """z-score of the Mann-Whitney U statistic U = #{(i, j): fake_j > held_i} (+ 1/2 per tie), the normal
    approximation under the null of one distribution: negative when the fakes' distances are smaller."""
    held, fake = held.double(), fake.double()
    n, m = len(held), len(fake)
    # ranks of the pooled values (ties share their mean rank), so U needs no n*m comparison matrix
    pooled = torch.cat([fake, held])
    order = pooled.argsort()
    sorted_vals = pooled[order]
    ranks = torch.empty_like(pooled)
    ranks[order] = torch.arange(1, len(pooled) + 1, dtype=torch.float64)
    _, inverse, counts = torch.unique_consecutive(sorted_vals, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    mean_rank = ends - (counts.double() - 1) / 2
    ranks[order] = mean_rank[inverse]
    u = ranks[:m].sum().item() - m * (m + 1) / 2
    return (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)


def kmeans(x: Tensor, k: int, seed: int = 0, iters: int = 100) -> Tensor:
    """Centres [k, F] of Lloyd's k-means from a seeded k-means++ start (deterministic for a seed); fewer than k
    when the points have fewer distinct values."""
    x = x.double()
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).min(1).values.pow(2)
        if d2.sum() <= 0:  # fewer distinct points than cells (e.g. dead features): fewer cells
            break
        centres = torch.cat([centres, x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    k = len(centres)
    x2 = x.pow(2).sum(1, keepdim=True)
    for _ in range(iters):
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2 with |x|^2 computed once: cdist would copy the points every iteration
        assign = (x2 - (x @ centres.T).mul_(2) + centres.pow(2).sum(1)).argmin(1)
        # each cell's mean in one pass over the points (no per-cell copies); an empty cell keeps its centre
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        moved = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None].double(), centres)
        if torch.equal(moved, centres):
            break
        centres = moved
    return centres


def fit_points(n: int, seed: int) -> Tensor:
    """The training points C_T's cells are fitted on when there are more than KMEANS_FIT: a seeded draw, sorted."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:KMEANS_FIT].sort().values


def data_copying_ct(train: Tensor, held: Tensor, fake: Tensor, cells: int, seed: int = 0,
                    min_fakes: int = MIN_FAKES) -> dict:
    """Meehan et al.'s C_T: {'ct', 'cells_used', 'cells'}. Cells holding fewer than `min_fakes` samples are
    left out (the paper's tau = 20 / m), as are cells without held-out images; with no cell left, ct is None."""
    fit = train if len(train) <= KMEANS_FIT else train[fit_points(len(train), seed)]
    centres = kmeans(fit, min(cells, len(fit)), seed)
    cells = len(centres)
    cell_of = {name: nearest(x, centres)[1] for name, x in (("train", train), ("held", held), ("fake", fake))}
    weighted, weight, used = 0.0, 0.0, 0
    for c in range(cells):
        t = torch.nonzero(cell_of["train"] == c).flatten()  # the cell's training points, searched where they lie
        h, f = held[cell_of["held"] == c], fake[cell_of["fake"] == c]
        if len(f) < min_fakes or len(h) == 0 or len(t) == 0:
            continue
        z = mann_whitney_z(nearest(h, train, rows=t)[0], nearest(f, train, rows=t)[0])
        share = len(h) / len(held)
        weighted, weight, used = weighted + share * z, weight + share, used + 1
    ct = weighted / weight if weight > 0 else None  # no cell holds enough samples: C_T is undefined
    return {"ct": ct, "cells_used": used, "cells": cells}


def scores(train: Tensor, held: Tensor, fake: Tensor, quantile: float, cells: int) -> tuple[dict, Tensor, Tensor]:
    """({'copy_share', 'copy_threshold', 'copy_ct', ...}, each sample's nearest-training distance and index)."""
    fake_d, fake_i = nearest(fake, train)
    held_d, _ = nearest(held, train)
    share, threshold = copy_share(fake_d, held_d, quantile)
    ct = data_copying_ct(train, held, fake, cells)
    return ({"copy_share": share, "copy_threshold": threshold, "copy_ct": ct["ct"],
             "copy_ct_cells": ct["cells_used"]}, fake_d, fake_i)


def closest_pairs(fake_images: Tensor, train_images: Tensor, fake_d: Tensor, fake_i: Tensor, n: int) -> Tensor:
    """uint8 [2n, C, H, W]: the n samples nearest to a training image (top row), their training images below."""
    order = fake_d.argsort()[:n]
    return torch.cat([fake_images[order], train_images[fake_i[order]]])
