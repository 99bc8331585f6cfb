import math

import pytest
import torch

from ganpipe.eval import metrics


def gaussian(n, mean, std, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, len(mean), generator=g, dtype=torch.float64) * torch.tensor(std) + torch.tensor(mean)


def test_fid_of_a_set_with_itself_is_zero():
    x = gaussian(500, [0.0] * 8, [1.0] * 8, 0)
    assert metrics.fid(x, x) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_matches_the_closed_form():
    # diagonal covariances: d = |mu1 - mu2|^2 + sum_i (s1_i - s2_i)^2 with s the standard deviations
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([3.0, 1.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum()
    got = metrics.frechet_distance(mu1, torch.diag(s1**2), mu2, torch.diag(s2**2))
    assert got == pytest.approx(expected.item(), rel=1e-10)


def test_frechet_distance_full_covariances_against_eigendecomposition():
    # non-commuting covariances: compare with tr sqrt(S1 S2) from the eigenvalues of S1 S2 (real, >= 0)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 4, generator=g, dtype=torch.float64), torch.randn(4, 4, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T + 0.1 * torch.eye(4, dtype=torch.float64), b @ b.T + 0.1 * torch.eye(4, dtype=torch.float64)
    mu = torch.zeros(4, dtype=torch.float64)
    tr_sqrt = torch.linalg.eigvals(s1 @ s2).real.clamp(min=0).sqrt().sum()
    expected = (s1.trace() + s2.trace() - 2 * tr_sqrt).item()
    assert metrics.frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-8)


def test_fid_sample_estimate_approaches_the_closed_form():
    x = gaussian(20000, [0.0, 0.0], [1.0, 1.0], 2)
    y = gaussian(20000, [1.0, 0.0], [2.0, 1.0], 3)
    assert metrics.fid(x, y) == pytest.approx(1.0 + 1.0, rel=0.05)


def test_fid_is_real_and_finite_for_a_collapsed_generator():
    real = gaussian(300, [0.0] * 16, [1.0] * 16, 4)
    one_image = torch.ones(300, 16, dtype=torch.float64)  # zero covariance: singular
    value = metrics.fid(one_image, real)
    assert math.isfinite(value) and value > 0


def test_fid_refuses_fewer_samples_than_dimensions():
    with pytest.raises(ValueError, match="more samples than feature dimensions"):
        metrics.fid(torch.randn(10, 16), torch.randn(100, 16))


def test_inception_score_bounds():
    k = 10
    confident_uniform = torch.eye(k).repeat(50, 1)  # each class equally often, each prediction one-hot
    assert metrics.inception_score(confident_uniform)[0] == pytest.approx(10.0)
    one_class = torch.zeros(500, k)
    one_class[:, 3] = 1
    assert metrics.inception_score(one_class)[0] == pytest.approx(1.0)
    unsure = torch.full((500, k), 1 / k)
    assert metrics.inception_score(unsure)[0] == pytest.approx(1.0)


def test_inception_score_splits():
    probs = torch.eye(10).repeat(50, 1)
    mean, std = metrics.inception_score(probs, splits=5)  # each split of 100 still holds every class 10 times
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        metrics.inception_score(probs, splits=0)


def test_class_histogram_kl_and_coverage():
    probs = torch.eye(4)[torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])]
    hist = metrics.class_histogram(probs)
    assert hist.tolist() == [2, 2, 2, 2]
    assert metrics.kl_to_uniform(hist) == pytest.approx(0.0)
    assert metrics.classes_covered(hist, 0.5) == 4
    skewed = torch.tensor([97, 1, 1, 1])
    assert metrics.classes_covered(skewed, 0.1) == 1  # 1 sample < 10% of the uniform share of 25
    assert metrics.kl_to_uniform(torch.tensor([5, 0, 0, 0])) == pytest.approx(math.log(4))


def test_confident_share():
    probs = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.1, 0.9]])
    assert metrics.confident_share(probs, 0.9) == pytest.approx(2 / 3)


def normal(n, d, shift=0.0, scale=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) * scale + shift


def test_fid_matches_torchmetrics():
    from torchmetrics.image.fid import _compute_fid

    a, b = normal(400, 8), normal(300, 8, shift=0.3, scale=1.5, seed=1)
    ours = metrics.fid(a, b)
    theirs = _compute_fid(*metrics.feature_stats(a), *metrics.feature_stats(b)).item()
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_kid_matches_torchmetrics_and_is_unbiased():
    from torchmetrics.image.kid import poly_mmd

    a, b = normal(200, 16), normal(200, 16, shift=0.5, seed=1)
    mean, std = metrics.kid(a, b, subsets=1, subset_size=200)  # one subset = the whole sets, reordered
    assert mean == pytest.approx(poly_mmd(a, b).item(), rel=1e-5) and std == 0.0  # float32 kernels
    same = [metrics.kid(normal(300, 16, seed=s), normal(300, 16, seed=s + 100), 10, 100)[0] for s in range(5)]
    assert abs(sum(same) / len(same)) < 0.02  # unbiased: near 0 for two samples of one distribution
    assert metrics.kid(a, b, 10, 100)[0] < metrics.kid(a, normal(200, 16, shift=1.0, seed=2), 10, 100)[0]


def test_kid_clips_the_subset_size_to_the_smaller_set():
    mean, std = metrics.kid(normal(30, 4), normal(5000, 4, seed=1), subsets=20, subset_size=1000)
    assert math.isfinite(mean) and std > 0


def test_knn_radii_skip_only_the_point_itself():
    x = torch.tensor([[0.0], [0.0], [1.0], [3.0]])  # a duplicate: its nearest neighbour is at distance 0
    assert metrics.knn_radii(x, 1).tolist() == [0.0, 0.0, 1.0, 2.0]
    assert metrics.knn_radii(x, 2).tolist() == [1.0, 1.0, 1.0, 3.0]


def test_precision_recall_density_coverage_on_known_sets():
    real = normal(500, 4)
    assert metrics.precision_recall(real, real, 3) == (1.0, 1.0)
    far = normal(500, 4, shift=50.0, seed=1)
    assert metrics.precision_recall(real, far, 3) == (0.0, 0.0)
    assert metrics.density_coverage(real, far, 5) == (0.0, 0.0)
    # mode dropping: fakes from one corner of the real distribution are precise but do not recall it
    corner = real[real[:, 0] > 1.0]
    precision, recall = metrics.precision_recall(real, corner, 3)
    assert precision > 0.9 and recall < 0.4
    density, coverage = metrics.density_coverage(real, normal(500, 4, seed=7), 5)
    assert 0.7 < density < 1.3 and coverage > 0.8


def test_knn_metrics_do_not_depend_on_the_chunk_size():
    real, fake = normal(700, 6), normal(650, 6, shift=0.2, seed=3)
    assert metrics.precision_recall(real, fake, 3, chunk=64) == metrics.precision_recall(real, fake, 3, chunk=5000)
    assert metrics.density_coverage(real, fake, 5, chunk=64) == metrics.density_coverage(real, fake, 5, chunk=5000)


def test_fid_infinity_removes_most_of_the_small_n_bias():
    """Two Gaussians with a known Frechet distance; the reference exact, 300 samples of the other in 64-d. FID at
    n = 300 is biased up (by about tr(S)/n terms); the extrapolation to 1/n = 0 lands much nearer the truth."""
    d = 64
    g = torch.Generator().manual_seed(0)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    ref_sigma, sigma = torch.eye(d, dtype=torch.float64), a @ a.T + 0.5 * torch.eye(d, dtype=torch.float64)
    mu = torch.full((d,), 0.3, dtype=torch.float64)
    true = metrics.frechet_distance(torch.zeros(d), ref_sigma, mu, sigma)
    finite_err, inf_err = [], []
    for seed in range(4):
        x = mu + torch.randn(300, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) \
            @ torch.linalg.cholesky(sigma).T
        finite_err.append(abs(metrics.frechet_distance(*metrics.feature_stats(x), torch.zeros(d), ref_sigma) - true))
        value, sizes, fids = metrics.fid_infinity(x, torch.zeros(d), ref_sigma, points=15)
        assert sizes[0] == 60 and sizes[-1] == 300 and len(fids) == len(sizes) == 15
        assert fids[0] > fids[-1]  # FID falls as n grows
        inf_err.append(abs(value - true))
    assert sum(inf_err) < sum(finite_err) / 3, (inf_err, finite_err)


def _reference(d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / d**0.5
    return torch.randn(d, generator=g, dtype=torch.float64) * 0.1, a @ a.T + 0.1 * torch.eye(d, dtype=torch.float64)


def test_a_set_smaller_than_the_feature_dimension_takes_the_small_matrix_path_to_the_same_fid():
    """frechet_distance_to reads tr((S1 S2)^1/2) off an N x N matrix when N <= F (S1 has rank < N); it must equal
    the F x F square-root path of frechet_distance, and be that path itself above F. The F x F path square-roots
    S1's round-off eigenvalues (about 1e-16 each, so 1e-8 after the root): it agrees to 1e-6, while two points,
    where tr((S1 S2)^1/2) = sqrt(v^T S2 v) exactly for v = (x1 - x2) / sqrt(2), pin the small path to 1e-12."""
    d = 64
    mu, sigma = _reference(d, 0)
    for n in (2, 10, 40, 64):
        x = gaussian(n, [0.2] * d, [1.5] * d, n)
        full = metrics.frechet_distance(*metrics.feature_stats(x), mu, sigma)
        assert metrics.frechet_distance_to(x, mu, sigma) == pytest.approx(full, rel=1e-6), n
    x = gaussian(2, [0.2] * d, [1.5] * d, 7)
    v = (x[0] - x[1]) / 2**0.5
    exact = (x.mean(0) - mu).pow(2).sum() + v @ v + sigma.trace() - 2 * (v @ sigma @ v).sqrt()
    assert metrics.frechet_distance_to(x, mu, sigma) == pytest.approx(exact.item(), rel=1e-12)
    x = gaussian(100, [0.2] * d, [1.5] * d, 1)
    assert metrics.frechet_distance_to(x, mu, sigma) == metrics.frechet_distance(*metrics.feature_stats(x), mu, sigma)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance_to(x[:1], mu, sigma)


def test_fid_infinity_points_on_either_side_of_the_feature_dimension_are_plain_fids_of_their_subsets():
    d = 64
    mu, sigma = _reference(d, 1)
    x = gaussian(150, [0.1] * d, [1.2] * d, 2)
    _, sizes, fids = metrics.fid_infinity(x, mu, sigma, points=6, seed=5)
    assert sizes[0] < d < sizes[-1]  # both paths are taken
    g = torch.Generator().manual_seed(5)
    expected = [metrics.frechet_distance(*metrics.feature_stats(x[torch.randperm(len(x), generator=g)[:n]]), mu, sigma)
                for n in sizes]
    assert fids == pytest.approx(expected, rel=1e-6)  # the F x F path's round-off, as above
    # above F: the same path, so equal far below the other path's round-off (not bitwise: on Intel CPUs MKL's
    # matmul can round differently with the operands' memory alignment)
    assert fids[-1] == pytest.approx(expected[-1], rel=1e-12, abs=0)
