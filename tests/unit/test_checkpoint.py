import subprocess
import sys

import pytest
import torch

from ganpipe import checkpoint, errors
from ganpipe.eval import classifier
from ganpipe.gan import sampling
from ganpipe.gan.models import build
from ganpipe.params import config

SAVE_IN_NEW_PROCESS = """
import sys, torch
from ganpipe.params import config
from ganpipe.gan import sampling
from ganpipe.gan.models import build
import yaml
cfg = config.load(sys.argv[1])
G, _ = build(cfg.model, (1, 28, 28), seed=0, num_classes=10)
sampling.save_generator(G, sys.argv[2], cfg.model, (1, 28, 28), 10)
"""


def test_generator_round_trip(tmp_path, default_params):
    cfg = config.from_dict(default_params)
    G, _ = build(cfg.model, (1, 28, 28), seed=0, num_classes=10)
    sampling.save_generator(G, tmp_path / "g.safetensors", cfg.model, (1, 28, 28), 10)
    gen = sampling.load_generator(tmp_path / "g.safetensors")
    assert gen.model == cfg.model and gen.num_classes == 10 and checkpoint.state_equal(G, gen.net)
    z, y = torch.randn(4, cfg.model.z_dim), torch.arange(4)
    G.eval()
    assert torch.equal(G(z, y), gen.net(z, y))


def test_same_weights_give_the_same_bytes_in_separate_processes(tmp_path):
    from helpers import ROOT

    for name in ("a", "b"):
        subprocess.run([sys.executable, "-c", SAVE_IN_NEW_PROCESS, str(ROOT / "params.yaml"),
                        str(tmp_path / f"{name}.safetensors")], check=True)
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_corrupt_missing_and_wrong_kind(tmp_path, default_params):
    with pytest.raises(errors.CheckpointError, match="run `dvc repro train`"):
        sampling.load_generator(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x07" * 100)
    with pytest.raises(errors.CheckpointError, match="corrupt or incompatible"):
        sampling.load_generator(tmp_path / "junk.safetensors")
    clf = classifier.Classifier(1, 28, 10, 16)
    classifier.save(clf, tmp_path / "clf.safetensors", {"classifier.epochs": "1"})
    with pytest.raises(errors.CheckpointError, match="holds 'classifier' data, expected 'generator'"):
        sampling.load_generator(tmp_path / "clf.safetensors")
    assert checkpoint.state_equal(classifier.load(tmp_path / "clf.safetensors"), clf)


def test_code_fingerprints_ignore_comments_and_docstrings_but_not_code():
    from ganpipe.files import code_text

    base = 'def f(x):\n    """Doc."""\n    return x + 1  # one\n'
    assert code_text(base) == code_text('def f(x):\n    """Other words."""\n    # a comment\n    return (x\n            + 1)\n')
    assert code_text(base) == code_text("def f(x):\n    return x + 1\n")
    assert code_text(base) != code_text('def f(x):\n    """Doc."""\n    return x + 2\n')
    assert code_text('"""Module doc."""\nX = 1\n') == code_text("X = 1\n")
