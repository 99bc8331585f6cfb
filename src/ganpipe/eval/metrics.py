"""Metric math as pure functions: classifier outputs -> statistics -> scores. float64 throughout.

probs are class probabilities [N, K] from the evaluation classifier; features are its penultimate layer [N, F].
"""
from __future__ import annotations

import math

import torch

Tensor = torch.Tensor


def inception_score(probs: Tensor, splits: int = 1) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))): (mean, std) over `splits` equal chunks; splits=1 gives (IS, 0)."""
    probs = probs.double()
    n = len(probs)
    if splits < 1 or splits > n:
        raise ValueError(f"IS splits must be in [1, {n}], got {splits}")
    scores = []
    for chunk in torch.tensor_split(probs, splits):
        p_y = chunk.mean(0, keepdim=True)
        # xlogy: 0 * log 0 = 0, so one-hot predictions are exact rather than NaN
        kl = (torch.xlogy(chunk, chunk) - torch.xlogy(chunk, p_y)).sum(1).mean()
        scores.append(math.exp(kl.item()))
    mean = sum(scores) / len(scores)
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return mean, std


def feature_stats(features: Tensor) -> tuple[Tensor, Tensor]:
    """(mean [F], unbiased covariance [F, F]) in float64."""
    x = features.double()
    if len(x) < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(x)}")
    mu = x.mean(0)
    centered = x - mu
    return mu, centered.T @ centered / (len(x) - 1)


def _psd_sqrt(mat: Tensor) -> Tensor:
    """Symmetric PSD square root via eigh; tiny negative eigenvalues from round-off are clipped to 0."""
    vals, vecs = torch.linalg.eigh((mat + mat.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^1/2), real by construction.

    tr((S1 S2)^1/2) = tr((A S2 A)^1/2) with A = S1^1/2: the eigenvalues of the symmetric PSD matrix A S2 A,
    so there is no complex sqrtm and no NaN for singular covariances.
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    a = _psd_sqrt(sigma1)
    return _frechet(mu1, mu2, sigma1.trace(), sigma2.trace(), a @ sigma2 @ a)


def _frechet(mu1: Tensor, mu2: Tensor, trace1: Tensor, trace2: Tensor, cross: Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), where `cross` is a symmetric PSD matrix whose
    nonzero eigenvalues are those of S1 S2: each FID path below differs only in how small a one it builds."""
    eig = torch.linalg.eigvalsh((cross + cross.T) / 2).clamp(min=0)
    value = (mu1 - mu2).pow(2).sum() + trace1 + trace2 - 2 * eig.sqrt().sum()
    return max(value.item(), 0.0)


def frechet_distance_to(features: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """Frechet distance of a feature set [N, F] to a reference given by its statistics.

    A set no larger than F has a covariance S1 = X^T X / (N - 1) (X: the centred features) of rank below N.
    S1 S2 = X^T (X S2) / (N - 1) has the nonzero eigenvalues of the N x N PSD matrix X S2 X^T / (N - 1) (AB and BA
    share them), so tr((S1 S2)^1/2) comes from that small matrix with no F x F square root: for 2048-d Inception
    features and a set of tens or hundreds, seconds on 2 cores become milliseconds. Larger sets take the F x F
    path of frechet_distance.
    """
    x = features.double()
    n, dim = x.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {n}")
    if n > dim:
        return frechet_distance(*feature_stats(x), mu2, sigma2)
    mu1, mu2, sigma2 = x.mean(0), mu2.double(), sigma2.double()
    centered = x - mu1
    return _frechet(mu1, mu2, centered.pow(2).sum() / (n - 1), sigma2.trace(),
                    centered @ sigma2 @ centered.T / (n - 1))


def fid_infinity(features: Tensor, ref_mu: Tensor, ref_sigma: Tensor, points: int = 15, smallest: float = 0.2,
                 seed: int = 0) -> tuple[float, list[int], list[float]]:
    """FID extrapolated to infinitely many samples (Chong & Forsyth 2020, "Effectively Unbiased FID"): FID's
    bias is linear in 1/n, so FID is measured on `points` random subsets of sizes evenly spaced from
    `smallest` * N to N, a line is fitted to (1/n, FID) by least squares, and its value at 1/n = 0 is returned
    with the sizes and FIDs. Numbers made at different n become comparable; the reference is taken as exact.
    """
    x = features.double()
    sizes = sorted({int(round(v)) for v in torch.linspace(max(2.0, smallest * len(x)), len(x), points).tolist()})
    if len(sizes) < 2:
        raise ValueError(f"FID extrapolation needs at least 3 samples, got {len(x)}")
    mu2, sigma2 = ref_mu.double(), ref_sigma.double()
    root = None  # the reference's square root, made once, for the subsets larger than the feature dimension
    g = torch.Generator().manual_seed(seed)
    fids = []
    for n in sizes:
        subset = x[torch.randperm(len(x), generator=g)[:n]]
        if n <= x.shape[1]:  # low rank: the N x N path (frechet_distance_to)
            fids.append(frechet_distance_to(subset, mu2, sigma2))
            continue
        root = _psd_sqrt(sigma2) if root is None else root
        mu1, sigma1 = feature_stats(subset)
        fids.append(_frechet(mu1, mu2, sigma1.trace(), sigma2.trace(), root @ sigma1 @ root))
    inv = torch.tensor([1.0 / n for n in sizes], dtype=torch.float64)
    design = torch.stack([torch.ones_like(inv), inv], 1)
    coef = torch.linalg.lstsq(design, torch.tensor(fids, dtype=torch.float64)[:, None]).solution
    return coef[0, 0].item(), sizes, fids


def fid(features_a: Tensor, features_b: Tensor) -> float:
    """Frechet distance between two feature sets; refuses sets smaller than the feature dimension."""
    dim = features_a.shape[1]
    for name, feats in (("first", features_a), ("second", features_b)):
        if len(feats) <= dim:
            raise ValueError(f"FID needs more samples than feature dimensions ({dim}); the {name} set has "
                             f"{len(feats)}: use more samples or a smaller classifier.feature_dim")
    return frechet_distance(*feature_stats(features_a), *feature_stats(features_b))


def class_histogram(probs: Tensor) -> Tensor:
    """Counts of argmax predictions per class [K] (int64)."""
    return torch.bincount(probs.argmax(1), minlength=probs.shape[1])


def kl_to_uniform(hist: Tensor) -> float:
    """KL(histogram share || uniform) in nats: 0 when every class is equally frequent, log K for one class."""
    p = hist.double() / hist.sum()
    k = len(hist)
    return (torch.xlogy(p, p).sum() + math.log(k)).item()


def classes_covered(hist: Tensor, cover_share: float) -> int:
    """Classes with at least cover_share of the uniform share (cover_share * N / K) of the samples."""
    threshold = cover_share * hist.sum().item() / len(hist)
    return int((hist.double() >= threshold).sum().item())


def confident_share(probs: Tensor, confidence: float) -> float:
    """Share of samples whose top class probability is at least `confidence`."""
    return (probs.max(1).values >= confidence).double().mean().item()


def class_agreement(probs: Tensor, requested: Tensor) -> tuple[float, list[float]]:
    """How often the classifier predicts the class a conditional generator was asked for: overall, and per
    requested class (NaN-free: classes never requested are left out of the list as None)."""
    hits = (probs.argmax(1) == requested).double()
    per_class = [hits[requested == k].mean().item() if (requested == k).any() else None
                 for k in range(probs.shape[1])]
    return hits.mean().item(), per_class


def kid(features_a: Tensor, features_b: Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3, as (mean, std) over `subsets` random subsets of each set. The subset size is
    clipped to the smaller set, so small sets work (with a larger std).

    Kernel matrices are float32 (the matmuls are 10x faster than float64 here) and summed in float64.
    """
    a, b = features_a.float(), features_b.float()
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set, got {len(a)} and {len(b)}")
    d = a.shape[1]
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=g)[:m]]
        y = b[torch.randperm(len(b), generator=g)[:m]]
        kxx, kyy, kxy = ((u @ v.T / d + 1).pow_(3) for u, v in ((x, x), (y, y), (x, y)))
        off = m * (m - 1)  # unbiased: the diagonals k(x_i, x_i) are left out
        sums = [k.sum(dtype=torch.float64) - k.diagonal().sum(dtype=torch.float64) for k in (kxx, kyy)]
        values.append((sums[0] / off + sums[1] / off - 2 * kxy.sum(dtype=torch.float64) / (m * m)).item())
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), (t.std(unbiased=False).item() if len(values) > 1 else 0.0)


def _blocks(a: Tensor, b: Tensor, chunk: int):
    """Euclidean distances of `a` to all of `b`, one [chunk, len(b)] block at a time (bounded memory)."""
    for start in range(0, len(a), chunk):
        yield start, torch.cdist(a[start : start + chunk], b)


def knn_radii(features: Tensor, ks: int | tuple[int, ...], chunk: int = 1000) -> Tensor:
    """Distance from each point to its k-th nearest neighbour within the same set (itself excluded);
    for a tuple of ks, one column per k from the same pass [N, len(ks)]."""
    single = isinstance(ks, int)
    ks = (ks,) if single else tuple(ks)
    x = features.float()
    if len(x) <= max(ks):
        raise ValueError(f"k-NN with k={max(ks)} needs more than {max(ks)} samples, got {len(x)}")
    out = torch.empty(len(x), len(ks))
    for start, dist in _blocks(x, x, chunk):
        rows = torch.arange(len(dist))
        dist[rows, rows + start] = float("inf")  # not its own neighbour, even when duplicates exist
        nearest = dist.topk(max(ks), dim=1, largest=False).values  # ascending
        out[start : start + len(dist)] = nearest[:, [k - 1 for k in ks]]
    return out[:, 0] if single else out


def knn_scores(real: Tensor, fake: Tensor, pr_k: int = 3, dc_k: int = 5, chunk: int = 1000) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020).

    precision: share of fakes inside the real k-NN manifold (union of balls reaching each real's pr_k-th
    neighbour); recall: share of reals inside the fake manifold; density: mean number of real dc_k-balls
    holding each fake, / dc_k (about 1 for matching sets, unbounded above); coverage: share of reals whose
    dc_k-ball holds at least one fake. Three chunked passes (real-real, fake-fake, fake-real), so memory stays
    at one [chunk, N] block whatever the set sizes.
    """
    real, fake = real.float(), fake.float()
    real_r = knn_radii(real, (pr_k, dc_k), chunk)
    fake_r = knn_radii(fake, pr_k, chunk)
    in_real, density = torch.zeros(len(fake), dtype=torch.bool), torch.zeros(len(fake))
    recalled = torch.zeros(len(real), dtype=torch.bool)
    nearest_fake = torch.full((len(real),), float("inf"))
    for start, dist in _blocks(fake, real, chunk):  # [chunk of fakes, reals]
        rows = slice(start, start + len(dist))
        in_real[rows] = (dist <= real_r[:, 0]).any(1)
        density[rows] = (dist <= real_r[:, 1]).sum(1).float()
        recalled |= (dist <= fake_r[rows, None]).any(0)
        nearest_fake = torch.minimum(nearest_fake, dist.min(0).values)
    return {"precision": in_real.double().mean().item(), "recall": recalled.double().mean().item(),
            "density": density.double().mean().item() / dc_k,
            "coverage": (nearest_fake <= real_r[:, 1]).double().mean().item()}


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, chunk: int = 1000) -> tuple[float, float]:
    s = knn_scores(real, fake, k, k, chunk)
    return s["precision"], s["recall"]


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, chunk: int = 1000) -> tuple[float, float]:
    s = knn_scores(real, fake, k, k, chunk)
    return s["density"], s["coverage"]
