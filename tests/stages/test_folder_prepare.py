"""`prepare` of an image folder straight to disk (data/folderprep.py): the same bytes as the in-memory way, blocks
of bounded size, a kill and a re-run that continues, unreadable files skipped or refused, a folder that changes
while it is read, and a full disk. Every image is made here."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from ganpipe.data import datasets, folder, folderprep, prepared, store
from ganpipe.data.split import stratified_indices
from ganpipe.errors import DataError
from ganpipe.params.config import DataConfig

N = 300  # enough files for the worker pool (one starts above 64 files per core)


def cfg(root, **changes) -> DataConfig:
    base = dict(dataset="imagefolder", root=str(root), download=False, image_size=8, channels=3,
                holdout_fraction=0.2, max_images=None, unreadable="skip", seed=0)
    return DataConfig(**{**base, **changes})


def make(root, n=N, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        path = root / f"k{i % 3}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (9, 13, 3), dtype=np.uint8)).save(path)
    return root


def same_folder(a, b):
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_the_streamed_way_writes_the_bytes_the_in_memory_way_writes(tmp_path):
    root = make(tmp_path / "img")
    seen = []
    info = folderprep.prepare_folder(cfg(root), tmp_path / "disk", progress=False, block=64,
                                     after_block=seen.append)
    memory = prepared.prepare(datasets.load(cfg(root), progress=False), cfg(root), tmp_path / "memory")
    assert info == memory and info["n_train"] + info["n_holdout"] == N and info["classes"] == ["k0", "k1", "k2"]
    same_folder(tmp_path / "disk", tmp_path / "memory")
    assert seen == [64, 128, 192, 256, 300]  # one journal record per block of at most 64 files
    assert not (tmp_path / "disk.tmp").exists()


def test_blocks_bound_what_is_decoded_at_once(tmp_path, monkeypatch):
    root = make(tmp_path / "img", n=100)
    sizes = []
    run = folder.Decoder.run
    monkeypatch.setattr(folder.Decoder, "run", lambda self, paths: sizes.append(len(paths)) or run(self, paths))
    folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=16)
    assert max(sizes) == 16 and sum(sizes) == 100


KILLER = """
import os, signal, sys
from ganpipe.data import folderprep
from ganpipe.params.config import DataConfig
cfg = DataConfig(dataset="imagefolder", root=sys.argv[1], download=False, image_size=8, channels=3,
                 holdout_fraction=0.2, max_images=None, unreadable="skip", seed=0)
def stop(done):
    if done >= 96:
        os.kill(os.getpid(), signal.SIGKILL)
folderprep.prepare_folder(cfg, sys.argv[2], progress=False, block=32, after_block=stop)
"""


def killed(root, out):
    done = subprocess.run([sys.executable, "-c", KILLER, str(root), str(out)], capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_a_killed_prepare_is_never_taken_as_done_and_a_re_run_continues_where_it_stopped(tmp_path, capsys):
    root = make(tmp_path / "img")
    (root / "k0" / "000_bad.png").write_text("not a PNG")  # skipped before the kill: still counted after it
    killed(root, tmp_path / "p")
    assert not (tmp_path / "p").exists()
    journal = json.loads((tmp_path / "p.tmp" / folderprep.JOURNAL).read_text())
    assert journal["done"] == 96 and journal["stage"] == "decoding"
    seen = []
    info = folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=32, after_block=seen.append)
    assert seen[0] == 128  # continued after the 96 files already on disk
    assert "continuing the interrupted run" in capsys.readouterr().out
    clean = folderprep.prepare_folder(cfg(root), tmp_path / "clean", progress=False)
    assert info == clean and info["unreadable"] == 1
    same_folder(tmp_path / "p", tmp_path / "clean")


def test_a_re_run_after_a_kill_starts_afresh_when_the_folder_or_params_changed(tmp_path):
    root = make(tmp_path / "img")
    killed(root, tmp_path / "p")
    Image.fromarray(np.zeros((9, 13, 3), np.uint8)).save(root / "k0" / "000.png")  # one file replaced
    seen = []
    info = folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=32, after_block=seen.append)
    assert seen[0] == 32
    clean = folderprep.prepare_folder(cfg(root), tmp_path / "clean", progress=False)
    assert info == clean
    same_folder(tmp_path / "p", tmp_path / "clean")


def test_unreadable_files_are_skipped_counted_and_named_and_the_rows_squeezed_out(tmp_path, capsys):
    root = make(tmp_path / "img", n=120)
    good = (root / "k0" / "000.png").read_bytes()
    (root / "k0" / "000.png").write_bytes(good[: len(good) // 2])  # truncated
    (root / "k2" / "050.png").write_text("not a PNG")
    info = folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=16)
    assert info["unreadable"] == 2 and info["files"] == 120
    assert [s.split(" ")[0] for s in info["unreadable_files"]] == ["k0/000.png", "k2/050.png"]
    assert "skipped 2 unreadable file(s) of 120: k0/000.png, k2/050.png" in capsys.readouterr().out
    # the squeezed files are whole safetensors files, holding the readable images in split order
    listing = folder.list_folder(root)
    hold, train = stratified_indices(torch.from_numpy(listing.labels), 0.2, 0)
    bad = {listing.files.index(str(root / "k0" / "000.png")), listing.files.index(str(root / "k2" / "050.png"))}
    for name, idx in ((prepared.TRAIN_FILE, train), (prepared.HOLDOUT_FILE, hold)):
        arrays = load_file(tmp_path / "p" / name)
        rows = [i for i in idx.tolist() if i not in bad]
        expect = np.stack([folder.fit(Image.open(listing.files[i]), 8, 3) for i in rows])
        assert np.array_equal(arrays["images"], expect) and arrays["labels"].tolist() == listing.labels[rows].tolist()
    assert info["n_train"] + info["n_holdout"] == 118


def test_data_unreadable_refuse_stops_with_the_count_and_the_names_and_writes_nothing(tmp_path):
    root = make(tmp_path / "img", n=40)
    (root / "k1" / "x.png").write_text("not a PNG")
    with pytest.raises(DataError, match=r"1 of the 41 image files .* cannot be read \(k1/x.png: .*set data.unreadable"):
        folderprep.prepare_folder(cfg(root, unreadable="refuse"), tmp_path / "p", progress=False)
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.tmp").exists()


def test_a_folder_that_changes_while_it_is_read_is_refused(tmp_path):
    root = make(tmp_path / "img", n=100)

    def add(done):
        if done == 32:
            Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "k1" / "new.png")
    with pytest.raises(DataError, match=r"changed while prepare read it: 1 added \(e.g. k1/new.png\)"):
        folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=32, after_block=add)
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.tmp").exists()


def test_a_full_disk_gives_one_line_and_leaves_nothing_a_later_run_would_trust(tmp_path, monkeypatch):
    root = make(tmp_path / "img", n=80)
    folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False)  # an earlier, good result
    before = {f.name: f.read_bytes() for f in (tmp_path / "p").iterdir()}
    (root / "k0" / "new.png").write_bytes((root / "k0" / "000.png").read_bytes())
    writes, real = [], os.pwrite

    def pwrite(fd, data, offset):
        writes.append(1)
        if len(writes) > 20:  # the disk fills up part-way through the decoding
            raise OSError(28, "No space left on device")
        return real(fd, data, offset)
    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(DataError, match=r"the disk holding .*p.tmp is full .*paths.prepared"):
        folderprep.prepare_folder(cfg(root), tmp_path / "p", progress=False, block=16)
    assert not (tmp_path / "p.tmp").exists()
    assert {f.name: f.read_bytes() for f in (tmp_path / "p").iterdir()} == before  # the old result untouched
    monkeypatch.setattr(os, "pwrite", real)
    monkeypatch.setattr(folderprep.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1000})())
    with pytest.raises(DataError, match=r"need 0.02 MiB and the disk holding .* has 0.00 MiB free"):
        folderprep.prepare_folder(cfg(root), tmp_path / "q", progress=False)
    assert not (tmp_path / "q.tmp").exists()


def test_store_layout_is_safetensors_own_and_shrink_keeps_the_chosen_rows(tmp_path):
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    arrays = {"images": rng.integers(0, 256, (50, 3, 4, 4), dtype=np.uint8), "labels": np.arange(50, dtype=np.int64)}
    save_file(arrays, tmp_path / "theirs.safetensors")
    plan = store.layout({k: (a.dtype, a.shape) for k, a in arrays.items()})
    store.create(tmp_path / "ours.safetensors", plan)
    with open(tmp_path / "ours.safetensors", "r+b") as f:
        for k, a in arrays.items():
            os.pwrite(f.fileno(), a.tobytes(), plan.offsets[k])
    assert (tmp_path / "ours.safetensors").read_bytes() == (tmp_path / "theirs.safetensors").read_bytes()
    keep = np.array([0, 3, 4, 5, 17, 49])
    new = store.shrink(tmp_path / "ours.safetensors", plan, keep, rows_per_copy=2)
    back = load_file(tmp_path / "ours.safetensors")
    assert np.array_equal(back["images"], arrays["images"][keep]) and back["labels"].tolist() == keep.tolist()
    assert (tmp_path / "ours.safetensors").stat().st_size == new.size and len(new.header) == len(plan.header)
