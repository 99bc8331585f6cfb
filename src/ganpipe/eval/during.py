"""The score during training: the FID of a fixed set of generated samples against a fixed real reference, cheap
enough to compute every few thousand images shown, so that a run's quality can be plotted over images shown, the
best generator kept, and a bad run stopped early (`ganpipe tune --prune`).

- classifier space: score_n samples against the held-out split (capped at evaluate.reference_n), in the
  evaluation classifier's features: the space of the final eval/fid;
- Inception space: score_n samples against the training split's reference features (stage `reference`), as
  papers and the final eval/inception_fid do.

The samples are drawn from a fixed seed (SEED) with the classes in turn, so two scores differ only by the
generator; nothing here touches a training random stream. FID is biased upwards at small n, so a score compares
only with scores of the same n and space, which is why the metric's name carries both (`score/fid1k_classifier`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from ganpipe.checkpoint import file_sha256
from ganpipe.data.images import to_uint8
from ganpipe.data.split import Split
from ganpipe.eval import classifier, inception, metrics
from ganpipe.eval import reference as inception_reference
from ganpipe.params.config import Config
from ganpipe.params.rules import score_space

# the feature networks' batches: fixed, so that no evaluate.* speed setting re-runs a training (the features of an
# image do not depend on its batch beyond float round-off)
CLASSIFIER_BATCH, INCEPTION_BATCH = 250, {"cpu": 16, "cuda": 200}
SEED = 31337  # the latents every score draws: a stream no training or sampling seed shares
PREFIX = "score/"  # MLflow metric names of the scores during training
BEST, BEST_KIMG = "score/best", "score/best_kimg"  # the best score of a training, and where it was


def key(space: str, n: int) -> str:
    """The metric's name, with n and the space in it (`score/fid1k_classifier`): FID depends on both."""
    count = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return f"{PREFIX}fid{count}_{space}"


@dataclass(frozen=True)
class Reference:
    """The real side of a score: its statistics and what they were computed from."""
    mu: torch.Tensor  # float64 [F]
    sigma: torch.Tensor  # float64 [F, F]
    what: str  # e.g. "held-out split (500 images)"
    sha256: str  # of the file the features came from or through (the classifier, the Inception reference)


def reference(features: torch.Tensor, what: str, sha256: str) -> Reference:
    mu, sigma = metrics.feature_stats(features)
    return Reference(mu, sigma, f"{what} ({len(features)} images)", sha256)


@contextlib.contextmanager
def _keeping_backend_flags() -> Iterator[None]:
    """The feature networks may switch TF32 off for their own accuracy; training's settings come back after."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@dataclass
class Score:
    """FID(G's score_n samples, reference) in one feature space; calling it scores a generator."""
    space: str  # classifier | inception
    n: int
    z_dim: int
    labels: torch.Tensor | None  # int64 [n]: the classes in turn; None for an unconditional G
    embed: Callable[[torch.Tensor], torch.Tensor]  # uint8 [N, C, H, W] -> features [N, F]
    ref: Reference
    batch_size: int = 250

    @property
    def key(self) -> str:
        return key(self.space, self.n)

    def protocol(self) -> dict[str, str]:
        """What a score means, tagged on the run: only equal protocols compare."""
        return {"score.metric": self.key, "score.space": self.space, "score.n": str(self.n),
                "score.reference": self.ref.what, "score.seed": str(SEED),
                "score.reference_sha256": self.ref.sha256,
                "score.generator": "the EMA generator when train.ema_* is on, else G; eval mode"}

    @torch.no_grad()
    def __call__(self, G: nn.Module) -> float:
        images = draw(G, self.n, self.z_dim, self.labels, self.batch_size)
        with _keeping_backend_flags():
            features = self.embed(images)
        return metrics.frechet_distance_to(features, self.ref.mu, self.ref.sigma)


def describe(rows: list[dict[str, float]], best: dict, share: float) -> str:
    """One line for the stage's output: how many scores, the best, and their cost."""
    key = next(k for k in rows[-1] if k.startswith(PREFIX))
    return (f"{len(rows)} score{'s' * (len(rows) != 1)} during training ({key}): last {rows[-1][key]:.2f}, best "
            f"{best['value']:.2f} at {best['kimg']:g} kimg; scoring took {share:.1%} of the training time")


def classes_in_turn(n: int, num_classes: int | None) -> torch.Tensor | None:
    """Each class n / num_classes times (the held-out split is stratified); None for an unconditional G."""
    return None if num_classes is None else torch.arange(n, dtype=torch.int64) % num_classes


@torch.no_grad()
def draw(G: nn.Module, n: int, z_dim: int, labels: torch.Tensor | None, batch_size: int) -> torch.Tensor:
    """n samples of G in eval mode as uint8 [n, C, H, W] on the CPU, from the fixed latents; G's mode and every
    training random stream are left as they were."""
    device = next(G.parameters()).device
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(SEED))
    was_training = G.training
    G.eval()
    try:
        out = [to_uint8(G(z[i : i + batch_size].to(device),
                          None if labels is None else labels[i : i + batch_size].to(device))).cpu()
               for i in range(0, n, batch_size)]
    finally:
        G.train(was_training)
    return torch.cat(out)


def for_training(cfg: Config, data_sha256: str, holdout: Split, z_dim: int, num_classes: int | None,
                 device: torch.device) -> Score | None:
    """The score train.score names, its reference computed now (once per training); None for train.score: none.
    The networks it needs come from the files the classifier and reference stages wrote."""
    space, ev = score_space(cfg.train.score, cfg.evaluate.features), cfg.evaluate
    if space == "none":
        return None
    labels = classes_in_turn(cfg.train.score_n, num_classes)
    if space == "classifier":
        clf = classifier.load(cfg.paths.classifier)
        embed = lambda images: classifier.features_and_probs(clf, images, CLASSIFIER_BATCH)[0]  # noqa: E731
        held = inception_reference.capped(holdout.images, holdout.labels, ev.reference_n, "holdout")
        ref = reference(embed(held.images), "held-out split", file_sha256(cfg.paths.classifier))
        return Score(space, cfg.train.score_n, z_dim, labels, embed, ref, CLASSIFIER_BATCH)
    train_f, _ = inception_reference.load(cfg.paths.inception_reference, data_sha256, ev.reference_n)
    with _keeping_backend_flags():
        net = inception.load(device)
    batch = INCEPTION_BATCH.get(device.type, INCEPTION_BATCH["cpu"])
    embed = lambda images: inception.features(net, images, batch, progress=False)  # noqa: E731
    return Score(space, cfg.train.score_n, z_dim, labels, embed,
                 reference(train_f, "training split", file_sha256(cfg.paths.inception_reference)), batch)
