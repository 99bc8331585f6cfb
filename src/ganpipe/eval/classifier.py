"""The evaluation classifier: a small CNN trained on the real training split.

It is the judge (class probabilities, for IS and coverage) and the feature extractor (its penultimate layer,
for FID) of every classifier-based score, standing in for Inception where no weights can be downloaded.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganpipe.checkpoint import header, load_module, read_header, save_module
from ganpipe.data.images import to_float
from ganpipe.data.split import Split
from ganpipe.errors import CheckpointError, DivergenceError
from ganpipe.files import atomic
from ganpipe.params.config import ClassifierConfig
from ganpipe.params.sizes import check_batch_fits


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]


def arch_for(in_channels: int, size: int) -> str:
    """`small` for grey images up to 32x32 (digits: 98% held-out accuracy); `wide`, a deeper VGG-style net, for
    colour or larger images, where the small one underfits (natural images need more than two conv stages)."""
    return "small" if in_channels == 1 and size <= 32 else "wide"


class Classifier(nn.Module):
    def __init__(self, in_channels: int, size: int, num_classes: int, feature_dim: int, arch: str = "small"):
        super().__init__()
        self.hparams = dict(in_channels=in_channels, size=size, num_classes=num_classes, feature_dim=feature_dim,
                            arch=arch)
        self.trained_with: dict[str, str] = {}  # classifier.* params, as logged (set by `load`)
        if arch == "small":
            self.conv = nn.Sequential(
                *_conv(in_channels, 32), *_conv(32, 32), nn.MaxPool2d(2), *_conv(32, 64), nn.MaxPool2d(2))
            flat = 64 * (size // 4) ** 2
        else:  # stages of two convs and a 2x2 pool down to 4x4 or less, widths 32, 64, 128, 128...; global pool
            layers: list[nn.Module] = []
            c, s, width = in_channels, size, 32
            while s > 4:
                layers += [*_conv(c, width), *_conv(width, width), nn.MaxPool2d(2)]
                c, s, width = width, s // 2, min(2 * width, 128)
            self.conv = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1))
            flat = c
        self.features = nn.Sequential(nn.Flatten(), nn.Linear(flat, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, H, W] in [-1, 1] -> (features [B, feature_dim], logits [B, classes])."""
        feats = self.features(self.conv(x))
        return feats, self.head(feats)


def _shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_shift pixels (background -1 fills the gap): cheap augmentation."""
    if max_shift == 0:
        return x
    pad = F.pad(x, [max_shift] * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2,), generator=g).tolist()
    return pad[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def _flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each image mirrored left-right with probability 1/2 (natural images; never digits or text)."""
    mask = torch.rand(len(x), generator=g) < 0.5
    return torch.where(mask[:, None, None, None], x.flip(3), x)


def train_classifier(train: Split, cfg: ClassifierConfig, num_classes: int, progress: bool = True) -> Classifier:
    check_batch_fits("classifier.batch_size", cfg.batch_size, len(train.labels))
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    c, h, _ = train.images.shape[1:]
    model = Classifier(c, h, num_classes, cfg.feature_dim, arch_for(c, h))
    x_all, y_all = train.images, train.labels  # uint8; each batch is converted when drawn
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps_per_epoch = -(-len(x_all) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for _ in tqdm(range(cfg.epochs), desc="classifier", unit="epoch", disable=not progress):
        perm = torch.randperm(len(x_all), generator=g)
        for i in range(steps_per_epoch):
            idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size]
            x = _shift(to_float(x_all[idx]), cfg.augment_shift, g)
            if cfg.augment_flip:
                x = _flip(x, g)
            _, logits = model(x)
            loss = F.cross_entropy(logits, y_all[idx])
            if not torch.isfinite(loss):  # its features would be NaN and every score undefined
                raise DivergenceError(f"the evaluation classifier diverged (loss {loss.item()}); lower classifier.lr "
                                      f"({cfg.lr})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def features_and_probs(model: Classifier, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, C, H, W] -> (features [N, F] float64, class probabilities [N, K] float64), in eval mode.

    Channels-last and batches of a few hundred keep oneDNN's conv kernels in cache (3x faster here than
    NCHW batches of 1000); each image's outputs do not depend on the batch it is in beyond float round-off.
    """
    model.eval().to(memory_format=torch.channels_last)
    feats, probs = [], []
    for i in range(0, len(images), batch_size):
        x = to_float(images[i : i + batch_size]).contiguous(memory_format=torch.channels_last)
        f, logits = model(x)
        feats.append(f.double())
        probs.append(torch.softmax(logits.double(), dim=1))
    return torch.cat(feats), torch.cat(probs)


def accuracy(model: Classifier, data: Split, batch_size: int = 500) -> float:
    _, probs = features_and_probs(model, data.images, batch_size)
    return (probs.argmax(1) == data.labels).double().mean().item()


def save(model: Classifier, path: Path, params: dict[str, str]) -> None:
    """The weights, what rebuilds the network, and the classifier.* params it was trained with (as MLflow logs
    them): an evaluation reads its classifier's params from this file, not from params.yaml."""
    save_module(model, path, "classifier", {"hparams": model.hparams, "params": params})


NOT_TRAINED = "classifier-not-trained"  # the file train_classifier writes when evaluate.features = inception


def save_not_trained(path: Path, features: str) -> None:
    """Record that no classifier was trained because no score needs one (evaluate.features = inception)."""
    from safetensors.torch import save_file

    with atomic(path) as tmp:
        save_file({}, str(tmp), metadata=header(NOT_TRAINED, {"evaluate.features": features}))


def _not_trained(path: Path) -> bool:
    try:
        read_header(path, NOT_TRAINED)
        return True
    except Exception:  # noqa: BLE001 - any other file, or none, is load_module's to judge and explain
        return False


def load(path: Path) -> Classifier:
    """The classifier in eval mode; `.trained_with` holds the classifier.* params it was trained with."""
    if _not_trained(path):
        raise CheckpointError(f"{path} records that no classifier was trained (evaluate.features was inception): "
                              f"run `dvc repro train_classifier` with the current params")
    model, meta = load_module(path, "classifier", lambda meta: Classifier(**meta["hparams"]), stage="train_classifier")
    model.trained_with = dict(meta["params"])
    return model
