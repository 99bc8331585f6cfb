"""CIFAR-format files written here, the prepared-split file format (streamed, memory-mapped past a budget,
bitwise the same training), the classifier for colour images, and unlabelled data through the stages."""
import pickle

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from ganpipe.data import datasets, prepared, store
from ganpipe.errors import DataError
from ganpipe.params.config import DataConfig

from helpers import runs, stage, write_params


def cfg(**changes) -> DataConfig:
    base = dict(dataset="cifar10", root="data/raw", download=False, image_size=None, channels=None,
                holdout_fraction=0.2, max_images=None, unreadable="skip", seed=0)
    return DataConfig(**{**base, **changes})


def write_cifar(root, name="cifar10", n_per_file=20):
    """CIFAR's python format: pickled dicts of uint8 rows [N, 3072] (R, G, B planes) and a label list."""
    folder, files, key = {"cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels"),
                          "cifar100": ("cifar-100-python", ["train"], "fine_labels")}[name]
    (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for f in files:
        data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
        target = [int(v) for v in rng.integers(0, 10, n_per_file)]
        with open(root / folder / f, "wb") as out:
            pickle.dump({"data": data, key: target, "batch_label": f}, out, protocol=2)
        images.append(data.reshape(-1, 3, 32, 32))
        labels += target
    return np.concatenate(images), np.array(labels)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_files_are_read_from_data_root(tmp_path, name):
    images, labels = write_cifar(tmp_path, name)
    split = datasets.load_source(cfg(dataset=name, root=str(tmp_path)))
    assert torch.equal(split.images, torch.from_numpy(images)) and split.labels.tolist() == labels.tolist()
    small = datasets.load_source(cfg(dataset=name, root=str(tmp_path), image_size=16, channels=1))
    assert small.images.shape == (len(labels), 1, 16, 16)


def test_cifar_missing_offline_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py.*data.download: true"):
        datasets.load_source(cfg(root=str(tmp_path)))


class Evil:
    def __reduce__(self):
        return (print, ("ran code from a data file",))


def test_a_cifar_file_that_would_run_code_is_refused(tmp_path, capsys):
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({"data": Evil(), "labels": []}))
    with pytest.raises(DataError, match="data_batch_3 is not a CIFAR python-format batch"):
        datasets.load_source(cfg(root=str(tmp_path)))
    assert "ran code" not in capsys.readouterr().out


def test_streamed_split_files_are_byte_identical_to_safetensors(tmp_path):
    split = datasets.synthetic(37, size=8, channels=3)
    save_file({"images": split.images, "labels": split.labels}, str(tmp_path / "a.safetensors"))
    prepared.save_split(split, tmp_path / "b.safetensors")
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    assert torch.equal(load_file(str(tmp_path / "b.safetensors"))["images"], split.images)
    (tmp_path / "c.safetensors").write_bytes((tmp_path / "b.safetensors").read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        store.map_arrays(tmp_path / "c.safetensors")


def test_a_split_over_the_budget_is_memory_mapped_and_trains_bitwise_the_same(tmp_path, monkeypatch, tiny_params):
    import dataclasses

    from ganpipe.gan.models import build
    from ganpipe.gan.train import train
    from ganpipe.params import config

    split = datasets.synthetic(96)
    prepared.save_split(split, tmp_path / "s.safetensors")
    loaded = prepared.load_split(tmp_path / "s.safetensors")
    monkeypatch.setenv(prepared.BUDGET_ENV, "0")
    mapped = prepared.load_split(tmp_path / "s.safetensors")
    assert isinstance(store.map_arrays(tmp_path / "s.safetensors")["images"], np.memmap)
    assert mapped.images.data_ptr() != loaded.images.data_ptr() and torch.equal(mapped.images, loaded.images)
    c = config.from_dict(tiny_params)
    train_cfg = dataclasses.replace(c.train, threads=1)
    results = []
    for data in (loaded, mapped):
        G, D = build(c.model, (1, 28, 28), 0, 10)
        results.append(train(G, D, data.images, train_cfg, c.model.z_dim, labels=data.labels))
    assert results[0].history == results[1].history
    assert all(torch.equal(a, b) for a, b in zip(results[0].generator.state_dict().values(),
                                                  results[1].generator.state_dict().values()))
    monkeypatch.setenv(prepared.BUDGET_ENV, "lots")
    with pytest.raises(DataError, match="must be a number of MiB"):
        prepared.load_split(tmp_path / "s.safetensors")


def test_the_classifier_for_colour_images_is_the_wide_one_and_learns(tiny_params):
    import dataclasses

    from ganpipe.data.split import split_holdout
    from ganpipe.eval import classifier
    from ganpipe.params import config

    train, hold = split_holdout(datasets.synthetic(400, size=32, channels=3), 0.25, 0)
    c = dataclasses.replace(config.from_dict(tiny_params).classifier, threads=1, augment_flip=True, epochs=4)
    model = classifier.train_classifier(train, c, 10, progress=False)
    assert model.hparams["arch"] == "wide" and classifier.accuracy(model, hold) > 0.6
    assert classifier.arch_for(1, 28) == "small" and classifier.arch_for(1, 64) == "wide"


def test_unlabelled_data_trains_unconditionally_and_the_classifier_says_what_it_needs(workdir, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    (workdir / "flat").mkdir()
    for i in range(120):
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(workdir / "flat" / f"{i}.png")
    write_params(workdir, data={"dataset": "imagefolder", "root": "flat", "image_size": 8, "max_images": None},
                 model={"conditional": False, "g_hidden": [16, 8], "d_hidden": [8, 16]},
                 classifier={"feature_dim": 4}, evaluate={"pr_k": 2, "dc_k": 2})
    assert stage("prepare")([]) == 0
    assert stage("train_classifier")([]) == 1
    err = capsys.readouterr().err
    assert "has no labels" in err and "one subfolder per class" in err and "Traceback" not in err
    assert "evaluate.features: inception" in err  # the way to score unlabelled data (tests/stages/test_inception_stages.py)
    assert stage("train")([]) == 0
    tags = runs(workdir)[0].data.tags
    assert tags["data.classes"] == "unlabelled" and tags["data.files"] == "120" and "8x8" in tags["data.transform"]
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["model"]["conditional"] = True
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    assert stage("train")([]) == 1
    assert "set model.conditional: false" in capsys.readouterr().err


def test_a_diverging_classifier_stops_with_the_param_to_change(tiny_params, monkeypatch):
    import dataclasses

    from ganpipe.errors import DivergenceError
    from ganpipe.eval import classifier
    from ganpipe.params import config

    monkeypatch.setattr(classifier.F, "cross_entropy", lambda logits, y: logits.sum() * float("nan"))
    c = dataclasses.replace(config.from_dict(tiny_params).classifier, threads=1, epochs=1)
    with pytest.raises(DivergenceError, match="lower classifier.lr"):
        classifier.train_classifier(datasets.synthetic(64), c, 10, progress=False)
