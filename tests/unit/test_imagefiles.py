import re

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from ganpipe.data.imagefiles import SamplesError, read_samples

U8 = torch.randint(0, 256, (6, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
LABELS = torch.arange(6)


def as_float(x):  # uint8 -> the GAN convention [-1, 1]
    return x.double() / 127.5 - 1


def write(tmp_path, kind):
    if kind == "npz":
        np.savez(tmp_path / "s.npz", images=as_float(U8).numpy(), labels=LABELS.numpy())
        return tmp_path / "s.npz"
    if kind == "npy":
        np.save(tmp_path / "s.npy", U8[:, 0].numpy())  # N, H, W
        return tmp_path / "s.npy"
    if kind == "pt":
        torch.save({"samples": as_float(U8).float(), "y": LABELS}, tmp_path / "s.pt")
        return tmp_path / "s.pt"
    if kind == "safetensors":
        save_file({"images": U8.permute(0, 2, 3, 1).contiguous()}, str(tmp_path / "s.safetensors"))  # N,H,W,C
        return tmp_path / "s.safetensors"
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(U8):
        Image.fromarray(img[0].numpy(), mode="L").save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.parametrize("kind", ["npz", "npy", "pt", "safetensors", "png"])
def test_every_format_reads_back_the_same_uint8_images(tmp_path, kind):
    images, labels = read_samples(write(tmp_path, kind), channels=1, size=28)
    assert images.dtype == torch.uint8 and torch.equal(images, U8)
    assert (labels is not None) == (kind in ("npz", "pt"))
    if labels is not None:
        assert torch.equal(labels, LABELS)


@pytest.mark.parametrize("array,message", [
    (np.zeros((4, 3, 28, 28), np.uint8), "images have 3 channels, the evaluation classifier takes 1"),
    (np.zeros((4, 1, 32, 32), np.uint8), "images are 32x32, the evaluation classifier takes 28x28"),
    (np.zeros((4, 28), np.uint8), "images must be N,H,W or N,C,H,W"),
    (np.full((4, 1, 28, 28), np.nan, np.float32), "pixels are NaN or inf"),
    (np.full((4, 1, 28, 28), 200.0, np.float32), "do not say their range (this looks like 0,255)"),
    (np.full((4, 1, 28, 28), 0.5, np.float32), "do not say their range (this looks like 0,1 or -1,1)"),
    (np.zeros((0, 1, 28, 28), np.uint8), "holds no images"),
])
def test_malformed_samples_get_a_clear_error(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(SamplesError, match=re.escape(message)):
        read_samples(tmp_path / "bad.npy", channels=1, size=28)


def test_missing_empty_and_unknown_inputs(tmp_path):
    with pytest.raises(SamplesError, match="not found"):
        read_samples(tmp_path / "nope.npz", 1, 28)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SamplesError, match="holds no .png files"):
        read_samples(tmp_path / "empty", 1, 28)
    (tmp_path / "s.txt").write_text("hello")
    with pytest.raises(SamplesError, match="unknown format '.txt'"):
        read_samples(tmp_path / "s.txt", 1, 28)
    (tmp_path / "torn.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SamplesError, match="cannot read"):
        read_samples(tmp_path / "torn.npz", 1, 28)
    np.savez(tmp_path / "two.npz", a=np.zeros((2, 28, 28)), b=np.zeros((2, 28, 28)))
    with pytest.raises(SamplesError, match="name the images one of"):
        read_samples(tmp_path / "two.npz", 1, 28)
    np.savez(tmp_path / "lab.npz", images=U8.numpy(), labels=np.arange(3))
    with pytest.raises(SamplesError, match="labels must be one per image"):
        read_samples(tmp_path / "lab.npz", 1, 28)


def test_float_pixels_are_read_in_their_declared_range_and_never_guessed(tmp_path):
    unit = (U8.double() / 255).numpy()  # [0, 1] images: the same digits as U8
    np.save(tmp_path / "unit.npy", unit)
    with pytest.raises(SamplesError, match="do not say their range"):
        read_samples(tmp_path / "unit.npy", 1, 28)  # read as [-1, 1] they would be wrong: refused
    images, _ = read_samples(tmp_path / "unit.npy", 1, 28, "0,1")
    assert torch.equal(images, U8)
    np.savez(tmp_path / "declared.npz", images=unit, value_range="0,1")  # the file says it itself
    assert torch.equal(read_samples(tmp_path / "declared.npz", 1, 28)[0], U8)
    with pytest.raises(SamplesError, match="declares value range 0,1, but -1,1 was given"):
        read_samples(tmp_path / "declared.npz", 1, 28, "-1,1")
    save_file({"images": torch.from_numpy(unit * 255)}, str(tmp_path / "s.safetensors"), metadata={"value_range": "0,255"})
    assert torch.equal(read_samples(tmp_path / "s.safetensors", 1, 28)[0], U8)
    np.save(tmp_path / "signed.npy", as_float(U8).numpy())  # negative values: only [-1, 1] has them
    assert torch.equal(read_samples(tmp_path / "signed.npy", 1, 28)[0], U8)
    with pytest.raises(SamplesError, match=r"lie outside the declared value range \[0, 1\]"):
        read_samples(tmp_path / "signed.npy", 1, 28, "0,1")
    np.save(tmp_path / "u8.npy", U8.numpy())
    with pytest.raises(SamplesError, match="integer pixels are \\[0, 255\\], but the value range 0,1 was declared"):
        read_samples(tmp_path / "u8.npy", 1, 28, "0,1")
