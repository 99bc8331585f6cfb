"""params.yaml -> frozen dataclasses, one per section, loaded strictly.

Every user-facing mistake (unknown key, missing key, wrong type, value out of range, unknown name) raises
ConfigError naming the full key path and what is allowed, before any work starts.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from ganpipe.errors import ConfigError
from ganpipe.params.rules import (  # noqa: F401  (the names and limits are part of config's interface)
    ACTIVATIONS,
    ARCHS,
    AUGMENTS,
    BACKENDS,
    COMPILE_MODES,
    DATASETS,
    DEVICES,
    FEATURES,
    LOSSES,
    MAX_EPOCHS,
    MAX_INTERVAL_S,
    MAX_LR,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_THREADS,
    MAX_WIDTH,
    PRECISIONS,
    SAMPLE_FROM,
    UNREADABLE,
    check_combinations,
)
from ganpipe.params.rules import positive as _positive
from ganpipe.params.rules import require as _require
from ganpipe.params.rules import within as _within
from ganpipe.params.train import TrainConfig
from ganpipe.params.typed import as_tree, build_dataclass, check_names, flatten

CONFIG_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # a configs/ file's stem, as tracking.config lists it


@dataclass(frozen=True)
class PathsConfig:
    """Every file the pipeline reads or writes, written once; dvc.yaml uses them through ${paths.*}."""

    prepared: Path
    classifier: Path
    classifier_metrics: Path
    generator: Path
    generator_best: Path  # the best-scored generator during training (sample.from: best)
    train_metrics: Path
    train_losses: Path
    train_scores: Path  # the scores during training by images shown
    samples: Path
    sample_grid: Path
    eval_metrics: Path
    eval_hist: Path  # predicted-class counts of samples and real held-out images (a DVC plot)
    inception_reference: Path  # Inception-V3 features of the real splits (stage `reference`)
    copy_grid: Path  # the samples closest to a training image, beside it (copy detection)
    checkpoint: Path  # train's resume state; deliberately not a DVC output (see dvc.yaml)

    def __post_init__(self) -> None:
        """Each path is a distinct file or folder inside the repository: DVC tracks only what is inside, and
        `ganpipe reproduce` writes these paths into a temporary worktree, which they must not leave."""
        seen: dict[str, str] = {}
        for key, value in dataclasses.asdict(self).items():
            value = str(value)
            norm = posixpath.normpath(value.replace("\\", "/")) if value.strip() else ""
            _require(norm not in ("", ".") and not norm.startswith(("/", "../")) and norm != ".." and
                     not re.match(r"^[A-Za-z]:", norm), f"paths.{key}",
                     "must be a relative path inside the repository (not empty, not absolute, no leading ..)", value)
            clash = next((k for k, v in seen.items() if v == norm or norm.startswith(v + "/") or
                          v.startswith(norm + "/")), None)
            _require(clash is None, f"paths.{key}", f"must not be or contain paths.{clash} ({seen.get(clash)})",
                     value)
            seen[key] = norm


@dataclass(frozen=True)
class DataConfig:
    dataset: str
    root: str  # imagefolder: the image folder; torchvision datasets: the folder holding their files
    download: bool  # torchvision datasets only: try to download when the files are missing
    image_size: Optional[int]  # resize the shorter side (antialiased) and centre-crop to this; None = as stored
    channels: Optional[int]  # 1 (grey) or 3 (RGB); None = as stored (image folders: 3)
    holdout_fraction: float
    max_images: Optional[int]  # cap on images taken from the source (stratified); None = all
    unreadable: str  # imagefolder: skip a file that cannot be decoded (counted and named) or refuse the folder
    seed: int

    def __post_init__(self) -> None:
        _require(self.dataset in DATASETS, "data.dataset", f"must be one of {list(DATASETS)}", self.dataset)
        _require(bool(self.root.strip()), "data.root", "must be a folder path", self.root)
        _require(self.image_size is None or 8 <= self.image_size <= 1024, "data.image_size",
                 "must be null or in [8, 1024]", self.image_size)
        _require(self.channels in (None, 1, 3), "data.channels", "must be null, 1 or 3", self.channels)
        _require(0 < self.holdout_fraction < 1, "data.holdout_fraction", "must be in (0, 1)", self.holdout_fraction)
        _require(self.max_images is None or self.max_images >= 20, "data.max_images", "must be >= 20 or null",
                 self.max_images)
        _require(self.unreadable in UNREADABLE, "data.unreadable", f"must be one of {list(UNREADABLE)}",
                 self.unreadable)
        _within(self, "data", ("seed",), 0, MAX_SEED)


@dataclass(frozen=True)
class ClassifierConfig:
    epochs: int
    batch_size: int
    lr: float
    feature_dim: int  # width of the penultimate layer: the feature space FID is computed in
    augment_shift: int  # max random translation in pixels during training
    augment_flip: bool  # random left-right mirroring during training (natural images, not digits)
    seed: int
    threads: int

    def __post_init__(self) -> None:
        _positive(self, "classifier", ("batch_size", "lr"))
        _require(self.lr <= MAX_LR, "classifier.lr", f"must be at most {MAX_LR}", self.lr)
        _within(self, "classifier", ("epochs",), 1, MAX_EPOCHS)
        _within(self, "classifier", ("feature_dim",), 1, MAX_WIDTH)
        _within(self, "classifier", ("augment_shift",), 0, MAX_WIDTH)
        _within(self, "classifier", ("threads",), 1, MAX_THREADS)
        _within(self, "classifier", ("seed",), 0, MAX_SEED)


@dataclass(frozen=True)
class ModelConfig:
    arch: str
    z_dim: int
    g_hidden: tuple[int, ...]  # mlp: hidden widths of G; dcgan/resnet: channels per upsampling block
    d_hidden: tuple[int, ...]  # mlp: hidden widths of D; dcgan/resnet: channels per downsampling block
    g_activation: str
    d_activation: str
    g_batchnorm: bool
    g_spectral_norm: bool
    d_spectral_norm: bool
    d_dropout: float
    conditional: bool  # class-conditional G (label embedding) and D (projection discriminator)
    embed_dim: int  # width of G's label embedding, concatenated to z (conditional only)
    blocks: tuple[int, ...]  # r3gan: residual blocks per stage (G's stages from 4x4 up; D mirrors them)
    cardinality: tuple[int, ...]  # r3gan: groups of each stage's grouped conv (G's order; D mirrors them)
    expansion: int  # r3gan: a block's inner width is the stage's width times this

    def __post_init__(self) -> None:
        _require(self.arch in ARCHS, "model.arch", f"must be one of {list(ARCHS)}", self.arch)
        for key in ("g_activation", "d_activation"):
            value = getattr(self, key)
            _require(value in ACTIVATIONS, f"model.{key}", f"must be one of {list(ACTIVATIONS)}", value)
        _within(self, "model", ("z_dim", "embed_dim"), 1, MAX_WIDTH)
        for key in ("g_hidden", "d_hidden"):
            widths = getattr(self, key)
            _require(0 < len(widths) <= 16 and all(0 < w <= MAX_WIDTH for w in widths), f"model.{key}",
                     f"must be a list of 1 to 16 widths in [1, {MAX_WIDTH}]", list(widths))
        _require(0 <= self.d_dropout < 1, "model.d_dropout", "must be in [0, 1)", self.d_dropout)
        for key in ("blocks", "cardinality"):
            values = getattr(self, key)
            _require(0 < len(values) <= 16 and all(1 <= v <= 1024 for v in values), f"model.{key}",
                     "must be a list of 1 to 16 integers in [1, 1024]", list(values))
        _within(self, "model", ("expansion",), 1, 64)


@dataclass(frozen=True)
class SampleConfig:
    n: int
    batch_size: int
    grid_rows: int  # the PNG grid is grid_rows x grid_rows samples
    classes: Optional[tuple[int, ...]]  # conditional models: the classes to sample, in turn; null = every class
    seed: int
    from_: str  # `from` in params: last (the generator at the end of training) | best (the best-scored one)
    threads: int  # torch CPU results change with the thread count: a fixed count repeats on any machine

    def __post_init__(self) -> None:
        _positive(self, "sample", ("batch_size",))
        _within(self, "sample", ("n",), 1, MAX_SAMPLES)
        _within(self, "sample", ("grid_rows",), 1, 64)  # a grid of up to 64 x 64 samples, drawn every epoch
        _within(self, "sample", ("seed",), 0, MAX_SEED)
        _within(self, "sample", ("threads",), 1, MAX_THREADS)
        _require(self.from_ in SAMPLE_FROM, "sample.from", f"must be one of {list(SAMPLE_FROM)}", self.from_)
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
    features: str  # classifier | inception (standard Inception-V3, comparable with papers) | both
    inception_n: int  # samples scored in Inception space (the first n); FID depends on n
    inception_batch: int  # images per Inception forward pass
    copy_quantile: float  # a sample is a likely copy when closer to a training image than this share of held-out
    copy_cells: int  # k-means cells of the data-copying test C_T (Meehan et al. 2020)
    fid_infinity_points: int  # Inception FID extrapolated to infinite n from this many subset sizes; 0 = off
    reference_n: Optional[int]  # at most this many images of each real split are the reference; None = all
    threads: int  # of evaluate and reference: the scores repeat bitwise for a fixed count, not across counts

    def __post_init__(self) -> None:
        _positive(self, "evaluate", ("batch_size", "is_splits", "pr_k", "dc_k", "inception_batch"))
        _require(self.features in FEATURES, "evaluate.features", f"must be one of {list(FEATURES)}", self.features)
        _within(self, "evaluate", ("inception_n",), 2, MAX_SAMPLES)
        _within(self, "evaluate", ("copy_cells",), 1, 1000)
        _require(self.fid_infinity_points == 0 or 3 <= self.fid_infinity_points <= 100,
                 "evaluate.fid_infinity_points", "must be 0 (off) or in [3, 100]", self.fid_infinity_points)
        _require(0 < self.copy_quantile < 1, "evaluate.copy_quantile", "must be in (0, 1)", self.copy_quantile)
        _require(self.reference_n is None or 10 <= self.reference_n <= MAX_SAMPLES, "evaluate.reference_n",
                 f"must be null (every image) or in [10, {MAX_SAMPLES:,}]", self.reference_n)
        _within(self, "evaluate", ("kid_subsets",), 1, 10_000)
        _within(self, "evaluate", ("threads",), 1, MAX_THREADS)
        _within(self, "evaluate", ("kid_subset_size",), 2, MAX_SAMPLES)  # unbiased MMD^2 needs pairs
        _require(0 < self.confidence < 1, "evaluate.confidence", "must be in (0, 1)", self.confidence)
        _require(0 < self.cover_share <= 1, "evaluate.cover_share", "must be in (0, 1]", self.cover_share)

    def uses(self, space: str) -> bool:
        """Whether evaluate scores in the feature space `space` (classifier | inception)."""
        return self.features in (space, "both")


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool
    experiment: str
    # the configs/ overlays this run applied, in order (`ganpipe run` sets it; runs are tagged ganpipe.config)
    config: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require(bool(self.experiment.strip()), "tracking.experiment", "must be a non-empty name", self.experiment)
        for name in self.config:
            _require(bool(CONFIG_NAME.fullmatch(name)), "tracking.config",
                     "entries must be config names such as colour (letters, digits, _ - .)", list(self.config))


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
    source: str = field(repr=False, compare=False, default="params.yaml")  # the file it was read from

    def __post_init__(self) -> None:
        check_combinations(self)

    def flat(self) -> dict[str, Any]:
        """All params as {'train.g_lr': 0.0002, ...}, the form MLflow logs."""
        return flatten({name: as_tree(getattr(self, name)) for name in SECTIONS})

    def logged(self, *sections: str) -> dict[str, str]:
        """The params of `sections` (all when none are named) exactly as MLflow stores them: strings."""
        names = sections or tuple(SECTIONS)
        return as_logged(flatten({name: as_tree(getattr(self, name)) for name in names}))


def as_logged(flat: dict[str, Any]) -> dict[str, str]:
    """Flat params as MLflow stores them (str of the value, cut at its 6000-character limit); the one form in
    which a run's params are compared with anything."""
    return {k: str(v)[:6000] for k, v in flat.items()}


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config) if f.name not in ("raw", "source")}


def from_dict(tree: Any) -> Config:
    """Build a Config from a parsed params tree; raise ConfigError on the first problem."""
    sections = {name: typing.get_type_hints(Config)[name] for name in SECTIONS}
    if not isinstance(tree, dict):
        raise ConfigError(f"params.yaml must be a mapping of sections, got {tree!r}")
    check_names(tree, list(sections), "params.yaml",
                lambda k: f"unknown section {k!r} in params.yaml; allowed sections: {list(sections)}",
                lambda k: f"missing section {k!r} in params.yaml; needed: {list(sections)}")
    built = {name: build_dataclass(cls, tree[name], name) for name, cls in sections.items()}
    return Config(**built, raw=tree)


def load(path: str | Path = "params.yaml") -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} not found; run from the repository root or pass --params PATH")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r}); "
                          f"save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return dataclasses.replace(from_dict(tree), source=str(path))
