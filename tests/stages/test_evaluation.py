"""The evaluation protocol validated on real digits: real vs real sits at the ceiling, known degradations move
the scores the right way, monotonically in their strength, and nothing depends on the batch size."""
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from ganpipe.data import datasets, split
from ganpipe.data.images import to_float, to_uint8
from ganpipe.eval import classifier, protocol
from ganpipe.params import config


@pytest.fixture(scope="module")
def setup():
    """The embedded MNIST digits, split as the pipeline splits them, and a briefly trained classifier."""
    params = config.load(data_params_path())
    train, holdout = split.split_holdout(datasets.load_source(params.data), params.data.holdout_fraction, 0)
    clf_cfg = dataclasses.replace(params.classifier, epochs=2, threads=2)
    torch.set_num_threads(2)
    clf = classifier.train_classifier(train, clf_cfg, 10, progress=False)
    cfg = dataclasses.replace(params.evaluate, kid_subsets=20)
    # the split is stored in class order: the test sets are a fixed random subset, every class in it
    train = split.Split(*(t[torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(0))]
                         for t in (train.images, train.labels)))
    return clf, train, holdout, cfg


def data_params_path():
    from helpers import ROOT

    return ROOT / "params.yaml"


def score(setup, images):
    clf, _, holdout, cfg = setup
    return protocol.scores(protocol.embed(clf, images, 500), protocol.embed(clf, holdout.images, 500), cfg)


def test_split_is_does_not_depend_on_the_order_of_the_set(default_params):
    cfg = dataclasses.replace(config.from_dict(default_params).evaluate, is_splits=10, kid_subsets=5)
    probs = torch.eye(10, dtype=torch.float64).repeat_interleave(50, dim=0)  # stored in class order
    feats = torch.randn(500, 4, dtype=torch.float64)
    scores = protocol.scores(protocol.Embedded(feats, probs), protocol.Embedded(feats, probs), cfg)
    assert scores["is"] == pytest.approx(10.0)
    assert scores["is_split_mean"] == pytest.approx(10.0, rel=0.1)
    assert scores["classes_covered"] == 10 and scores["kl_uniform"] == pytest.approx(0.0)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-8)
    assert scores["precision"] == scores["recall"] == scores["coverage"] == 1.0


def test_real_training_images_score_like_the_ceiling(setup):
    clf, train, holdout, cfg = setup
    result, _ = protocol.evaluate(clf, train.images[:2000], holdout.images, train.images, cfg,
                                 requested=train.labels[:2000], holdout_labels=holdout.labels,
                                 train_labels=train.labels)
    fake, real = result["fake"], result["real"]
    assert fake["is"] == pytest.approx(real["is"], rel=0.05)
    assert fake["classes_covered"] == 10 and fake["kl_uniform"] < 0.01
    assert fake["precision"] > 0.6 and fake["recall"] > 0.6 and fake["coverage"] > 0.8
    assert 0.5 < fake["density"] < 1.5
    assert fake["class_agreement"] > 0.9  # here: the classifier's accuracy on (its own) training digits
    # training images are copies by definition: every one is nearer than any held-out image (copy share 1, C_T
    # far below the paper's -3)
    assert fake["copy_share"] == 1.0 and fake["copy_ct"] < -3 and result["protocol"]["copy"]["quantile"] == 0.05
    # per-class FID compares each class with its own class: with every label shifted by one it must be far worse
    sample, ref = protocol.embed(clf, train.images[:2000], 500), protocol.embed(clf, train.images, 500)
    shifted = protocol.per_class_fid(sample, (train.labels[:2000] + 1) % 10, ref, train.labels)
    assert all(own is not None and own < wrong / 3 for own, wrong in zip(fake["fid_per_class"], shifted)), \
        (fake["fid_per_class"], shifted)
    assert result["protocol"]["n_fake"] == 2000 and result["protocol"]["stats_dtype"] == "float64"


def noise(images, sigma):
    g = torch.Generator().manual_seed(0)
    return to_uint8(to_float(images) + sigma * torch.randn(images.shape, generator=g))


def blur(images, k):
    return images if k == 1 else to_uint8(F.avg_pool2d(to_float(images), k, stride=1, padding=k // 2))


def random_pixels(images, share):
    g = torch.Generator().manual_seed(0)
    out = images.clone()
    n = int(share * len(images))
    out[:n] = torch.randint(0, 256, out[:n].shape, generator=g, dtype=torch.uint8)
    return out


def collapse(images, share):
    out = images.clone()
    out[: int(share * len(images))] = images[0]  # mode collapse: a share of the set is one single image
    return out


FIDELITY = {"fid": +1, "kid": +1, "precision": -1, "density": -1, "is": -1, "confident_share": -1}
DIVERSITY = {"fid": +1, "kid": +1, "recall": -1, "coverage": -1, "is": -1, "kl_uniform": +1}


@pytest.mark.parametrize("name,degrade,strengths,directions", [
    ("additive noise", noise, [0.0, 0.3, 0.6], FIDELITY),
    # mild blur makes digits more typical (precision rises at 3x3), so the strengths start at 5x5
    ("blur", blur, [1, 5, 9], {**FIDELITY, "is": 0}),
    ("random pixels", random_pixels, [0.0, 0.3, 0.6], FIDELITY),
    # recall is left out here: a set that is mostly copies of one image has few distinct points, so its k-NN
    # balls are huge and cover the real set (the weakness that coverage, from the real side, does not have)
    ("one image repeated", collapse, [0.0, 0.5, 0.9], {**DIVERSITY, "recall": 0}),
])
def test_degradations_move_every_score_the_right_way(setup, name, degrade, strengths, directions):
    images = setup[1].images[:2000]
    results = [score(setup, degrade(images, s)) for s in strengths]
    for metric, sign in directions.items():
        if sign == 0:
            continue
        values = [r[metric] for r in results]
        steps = [sign * (b - a) for a, b in zip(values, values[1:])]
        assert all(s > 0 for s in steps), f"{name}: {metric} should {'rise' if sign > 0 else 'fall'}: {values}"


def test_dropping_classes_lowers_diversity_scores(setup):
    _, train, _, _ = setup
    results = []
    for kept in (10, 5, 2):
        idx = torch.nonzero(train.labels < kept).flatten()[:800]  # same count at every strength
        results.append(score(setup, train.images[idx]))
    for metric, sign in {**DIVERSITY, "classes_covered": -1}.items():
        values = [r[metric] for r in results]
        assert all(sign * (b - a) > 0 for a, b in zip(values, values[1:])), (metric, values)


def test_scores_do_not_depend_on_the_batch_size(setup):
    clf, train, holdout, cfg = setup
    images = train.images[:600]
    small = protocol.embed(clf, images, 7)
    large = protocol.embed(clf, images, 600)
    assert torch.allclose(small.features, large.features, atol=1e-5)
    ref = protocol.embed(clf, holdout.images, 500)
    a, b = protocol.scores(small, ref, cfg), protocol.scores(large, ref, cfg)
    for key in ("is", "fid", "kid", "precision", "recall", "density", "coverage", "kl_uniform"):
        assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key


def test_a_generator_that_outputs_one_image_gets_finite_scores(setup):
    images = setup[1].images[:1].repeat(1000, 1, 1, 1)
    result = score(setup, images)
    numbers = [v for v in result.values() if isinstance(v, float)]
    assert all(torch.isfinite(torch.tensor(numbers))), result
    assert result["fid"] > 100 and result["recall"] < 0.05 and result["classes_covered"] == 1


def test_kid_stays_finite_when_a_feature_never_fires_on_the_reference(default_params):
    # seen for real: a classifier trained with other threads had a ReLU unit that was 0 on every held-out
    # image; a per-dimension standardisation divided by ~0 there and KID came out as 3e12
    cfg = dataclasses.replace(config.from_dict(default_params).evaluate, kid_subsets=10)
    g = torch.Generator().manual_seed(0)
    ref = torch.relu(torch.randn(500, 16, generator=g, dtype=torch.float64) * 5)
    ref[:, 0] = 0.0
    fake = torch.relu(torch.randn(800, 16, generator=g, dtype=torch.float64) * 5)
    probs = torch.full((800, 10), 0.1, dtype=torch.float64)
    s = protocol.scores(protocol.Embedded(fake, probs), protocol.Embedded(ref, probs[:500]), cfg)
    assert 0 < s["kid"] < 1 and s["kid_std"] < 1


def test_fid_and_kid_from_images_equal_torchmetrics_given_the_same_classifier(setup):
    """Images in, number out, through independent code: torchmetrics gets the raw uint8 images and the classifier
    as its feature extractor (for KID with the pipeline's documented centring and scaling on the reference),
    and must report the FID and KID the pipeline reports."""
    from torch import nn
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    clf, train, holdout, cfg = setup
    cfg = dataclasses.replace(cfg, kid_subsets=1, kid_subset_size=10_000)  # KID over the whole sets: no sampling
    fake, real = noise(train.images[:500], 0.3), holdout.images  # 500 each
    ours = score(setup, fake)

    with torch.no_grad():
        ref = clf.eval()(to_float(real))[0].double()
    mu = ref.mean(0)
    scale = (ref - mu).pow(2).mean().sqrt()

    class Features(nn.Module):
        def __init__(self, centred: bool):
            super().__init__()
            self.centred, self.num_features = centred, clf.hparams["feature_dim"]

        def forward(self, images):  # uint8 [N, 1, 28, 28], as torchmetrics hands them over
            feats = clf(to_float(images))[0].double()
            return (feats - mu) / scale if self.centred else feats

    fid = FrechetInceptionDistance(feature=Features(False), normalize=False)
    kid = KernelInceptionDistance(feature=Features(True), subsets=1, subset_size=500, normalize=False)
    for metric in (fid, kid):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    assert ours["fid"] > 1 and ours["fid"] == pytest.approx(fid.compute().item(), rel=1e-3)
    assert ours["kid"] > 0.01 and ours["kid"] == pytest.approx(kid.compute()[0].item(), rel=1e-3)
