"""Your own images (data.dataset: imagefolder): layouts, file formats and odd modes, the transform, unreadable
files, the folders that cannot serve, and parallel decoding equal to serial decoding. Every image is made here."""
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganpipe.data import datasets, folder, folderprep, prepared
from ganpipe.errors import DataError
from ganpipe.params.config import DataConfig


def cfg(root, **changes) -> DataConfig:
    base = dict(dataset="imagefolder", root=str(root), download=False, image_size=8, channels=3,
                holdout_fraction=0.25, max_images=None, unreadable="skip", seed=0)
    return DataConfig(**{**base, **changes})


def save(path, array, fmt=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt, **kwargs)


def rgb(value, size=(12, 10)):
    return np.full((size[1], size[0], 3), value, dtype=np.uint8)


def class_folders(root, n=4):
    """cats/ (PNG, one in a nested folder, one upper-case .PNG) and dogs/ (JPEG, .JPG and .jpeg)."""
    for i in range(n):
        save(root / "cats" / (f"sub/c{i}.png" if i == 0 else f"c{i}.PNG" if i == 1 else f"c{i}.png"), rgb(10 * i))
        save(root / "dogs" / f"d{i}.{'JPG' if i == 0 else 'jpeg'}", rgb(200 - 10 * i), fmt="JPEG", quality=95)
    (root / "cats" / "notes.txt").write_text("not an image")
    (root / "dogs" / ".hidden.png").write_bytes(b"ignored")


def test_class_folders_give_labels_from_sorted_names_and_a_stable_hash(tmp_path):
    class_folders(tmp_path / "img")
    source = datasets.load(cfg(tmp_path / "img"), progress=False)
    assert source.classes == ["cats", "dogs"] and source.split.labels.tolist() == [0] * 4 + [1] * 4
    assert source.split.images.shape == (8, 3, 8, 8) and source.details["files"] == 8
    info = prepared.prepare(source, cfg(tmp_path / "img"), tmp_path / "a")
    again = prepared.prepare(datasets.load(cfg(tmp_path / "img"), progress=False), cfg(tmp_path / "img"),
                             tmp_path / "b")
    assert info["sha256"] == again["sha256"] and info["classes"] == ["cats", "dogs"] and info["labelled"]
    assert "centre-cropped to 8x8" in info["transform"] and info["unreadable"] == 0
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes(), f.name
    save(tmp_path / "img" / "cats" / "c3.png", rgb(99))  # one changed file: another hash
    changed = prepared.prepare(datasets.load(cfg(tmp_path / "img"), progress=False), cfg(tmp_path / "img"),
                               tmp_path / "c")
    assert changed["sha256"] != info["sha256"]


def test_a_flat_folder_is_unlabelled(tmp_path):
    for i in range(6):
        save(tmp_path / "flat" / f"{i}.webp", rgb(40 * i), fmt="WEBP", lossless=True)
    source = datasets.load(cfg(tmp_path / "flat"), progress=False)
    assert source.classes == [] and source.split.labels.tolist() == [0] * 6
    info = prepared.prepare(source, cfg(tmp_path / "flat"), tmp_path / "p")
    assert info["labelled"] is False and info["num_classes"] == 1


def decode_one(img: Image.Image, size=4, channels=3) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, format="PNG" if img.mode != "CMYK" else "JPEG")
    return folder.fit(Image.open(buf), size, channels)


def test_odd_modes_are_converted():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)  # fully transparent black: composited onto white
    assert (decode_one(Image.fromarray(rgba, "RGBA")) == 255).all()
    grey16 = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert (decode_one(grey16, channels=1) == 255).all()  # 16 bits scaled, not clipped
    half = decode_one(Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)), channels=1)
    assert (half == 128).all()
    palette = Image.fromarray(rgb(0, (4, 4))).convert("P")
    assert decode_one(palette).shape == (3, 4, 4)
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    red = decode_one(cmyk)
    assert red[0].min() > 200 and red[1].max() < 60
    assert decode_one(Image.fromarray(rgb(100, (4, 4))), channels=1).shape == (1, 4, 4)
    bilevel = Image.new("1", (4, 4), 1)
    assert (decode_one(bilevel) == 255).all()


def test_exif_rotation_is_applied(tmp_path):
    a = np.zeros((10, 20, 3), dtype=np.uint8)  # 20 wide, 10 high: left half white
    a[:, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": the displayed image is 10 wide, 20 high, white on top
    Image.fromarray(a).save(tmp_path / "r.jpg", exif=exif, quality=100)
    out = folder.fit(Image.open(tmp_path / "r.jpg"), 10, 1)[0]  # centre 10x10 of the upright 10x20 image
    assert out[:4].mean() > 200 and out[6:].mean() < 50  # white on top: rotated (unrotated: white on the left)
    assert out[:, :4].mean() < 200


def test_resize_is_antialiased_and_centre_cropped():
    a = np.zeros((20, 40, 3), dtype=np.uint8)
    a[:, 10:30] = (0, 255, 0)  # green in the middle half, black left and right quarters
    out = folder.fit(Image.fromarray(a), 10, 3)  # 40x20 -> 20x10 -> centre 10x10: all green
    assert out.shape == (3, 10, 10) and out[1].min() > 200 and out[0].max() < 30
    stripes = np.zeros((64, 64), dtype=np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: antialiasing averages them to grey instead of aliasing
    small = folder.fit(Image.fromarray(stripes), 8, 1)
    assert 100 < small.mean() < 155 and small.std() < 20


def test_unreadable_files_are_skipped_and_listed(tmp_path, capsys):
    class_folders(tmp_path / "img")
    good = (tmp_path / "img" / "cats" / "c2.png").read_bytes()
    (tmp_path / "img" / "cats" / "truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "img" / "dogs" / "fake.jpg").write_text("this is not a JPEG")
    source = datasets.load(cfg(tmp_path / "img"), progress=False)
    assert len(source.split.labels) == 8 and source.details["unreadable"] == 2
    assert "skipped 2 unreadable file(s) of 10" in capsys.readouterr().out
    info = prepared.prepare(source, cfg(tmp_path / "img"), tmp_path / "p")
    listed = json.loads((tmp_path / "p" / "info.json").read_text())["unreadable_files"]
    assert info["unreadable"] == 2 and [s.split(" ")[0] for s in listed] == ["cats/truncated.png", "dogs/fake.jpg"]


CANNOT_SERVE = [
    (lambda root: root.mkdir(), "holds no image files"),
    (lambda root: None, "is not a folder"),
    (lambda root: [(root / "a").mkdir(parents=True), (root / "a" / "x.png").write_text("junk"),
                   (root / "a" / "y.png").write_text("junk")], "none of the 2 image files"),
    (lambda root: [save(root / "c" / "1.png", rgb(1)), save(root / "loose.png", rgb(2))], "both image files"),
    (lambda root: [save(root / "big" / f"{i}.png", rgb(i)) for i in range(8)] + [save(root / "tiny" / "1.png",
                                                                                      rgb(9))],
     "class(es) tiny (1) have too few images"),
]


@pytest.mark.parametrize("way", ["in memory", "straight to disk (the stage's way)"])
@pytest.mark.parametrize("make,message", CANNOT_SERVE)
def test_folders_that_cannot_serve_stop_with_one_message_and_write_nothing(tmp_path, make, message, way):
    root = tmp_path / "img"
    make(root)
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        if way == "in memory":
            prepared.prepare(datasets.load(cfg(root), progress=False), cfg(root), tmp_path / "p")
        else:
            folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False)
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.tmp").exists()


def test_parallel_decoding_equals_serial_decoding(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(300):  # enough files for a worker pool (folder.decode starts one above 64 files per core)
        save(tmp_path / "img" / f"k{i % 3}" / f"{i:03d}.png", rng.integers(0, 256, (9, 13, 3), dtype=np.uint8))
    listing = folder.list_folder(tmp_path / "img")
    decoded = folder.decode(listing, 6, 3)
    serial = np.stack([folder.fit(Image.open(p), 6, 3) for p in listing.files])
    assert np.array_equal(decoded.images, serial) and decoded.labels.tolist() == listing.labels.tolist()


def test_max_images_caps_before_decoding_stratified(tmp_path):
    for k in range(2):
        for i in range(20):
            save(tmp_path / "img" / f"k{k}" / f"{i}.png", rgb(i + 100 * k))
    source = datasets.load(cfg(tmp_path / "img", max_images=20), progress=False)
    assert torch.bincount(source.split.labels).tolist() == [10, 10] and source.details["files"] == 20


def test_without_image_size_the_first_readable_image_sets_it(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "0.png").write_text("corrupt, and first in order")
    save(tmp_path / "img" / "1.png", rgb(5, (12, 10)))
    save(tmp_path / "img" / "2.png", rgb(9, (30, 30)))
    source = datasets.load(cfg(tmp_path / "img", image_size=None), progress=False)
    assert source.split.images.shape == (2, 3, 10, 10) and source.details["unreadable"] == 1
    assert "shorter side resized to 10 (the first image’s)" in source.details["transform"]


def test_the_prepare_stage_decodes_in_worker_processes_without_noise(tmp_path):
    """Enough files for a worker pool: the stage ends cleanly, and the workers (forked from a process whose
    SIGTERM handler raises) are stopped without a traceback."""
    import subprocess
    import sys

    import yaml

    from helpers import ROOT, TINY_OVERRIDES, merged

    rng = np.random.default_rng(1)
    for i in range(300):
        save(tmp_path / "img" / f"k{i % 3}" / f"{i:03d}.png", rng.integers(0, 256, (9, 9, 3), dtype=np.uint8))
    params = merged(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY_OVERRIDES)
    params["data"].update(dataset="imagefolder", root=str(tmp_path / "img"), image_size=8, max_images=None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, str(ROOT / "stages" / "prepare.py")], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "Terminated" not in done.stderr
    assert json.loads((tmp_path / "data" / "prepared" / "info.json").read_text())["files"] == 300
