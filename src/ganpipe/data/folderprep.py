"""`prepare` for an image folder of any size: each file is decoded straight into its row of the prepared files on
disk, so memory stays bounded whatever the number of images; the work is resumable after a kill, and a folder
that changes while it is read is refused.

How: the split is decided from the file list (labels only) before anything is decoded, so every file's row in
train.safetensors or holdout.safetensors is known in advance. Both files are created at full size (disk space
reserved up front: a full disk fails at once), then filled block by block. After each block a journal in the
temp folder records how far it got; a re-run with the same folder and params continues from there, and
anything else starts afresh. Files that cannot be decoded leave empty rows, which are squeezed out in place at
the end. Only then is the temp folder renamed to paths.prepared: nothing half-written is ever taken as done.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from ganpipe.console import note
from ganpipe.data import folder, prepared, store
from ganpipe.data.datasets import MAX_UNREADABLE_LISTED, cap_listing, describe_transform
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.split import stratified_indices
from ganpipe.errors import DataError
from ganpipe.files import remove, write_json
from ganpipe.params.config import DataConfig

BLOCK = 4096  # files decoded between two journal records: the most work a kill can cost
JOURNAL = "progress.json"
FORMAT = 1  # bump when the layout of the temp folder changes: an old journal then starts afresh
_READ = 64 << 20  # bytes per read when hashing the written files


def _listed(cfg: DataConfig) -> folder.Listing:
    return cap_listing(folder.list_folder(Path(cfg.root)), cfg)


def _same(a: folder.Listing, b: folder.Listing) -> bool:
    return a.files == b.files and np.array_equal(a.stats, b.stats)


def _describe_change(before: folder.Listing, after: folder.Listing) -> str:
    old = {before.rel(i): tuple(before.stats[i]) for i in range(len(before.files))}
    new = {after.rel(i): tuple(after.stats[i]) for i in range(len(after.files))}
    added, removed = sorted(new.keys() - old.keys()), sorted(old.keys() - new.keys())
    changed = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    parts = [f"{len(v)} {what} (e.g. {v[0]})" for what, v in (("added", added), ("removed", removed),
                                                              ("modified", changed)) if v]
    return ", ".join(parts)


def _plan_key(cfg: DataConfig, listing: folder.Listing, size: int, channels: int) -> str:
    """What a journal must match to be continued: the files (names, sizes, times), their labels, the params."""
    h = hashlib.sha256(json.dumps([FORMAT, cfg.image_size, cfg.channels, cfg.holdout_fraction, cfg.seed,
                                   cfg.max_images, size, channels]).encode())
    for i in range(len(listing.files)):
        h.update(listing.rel(i).encode() + b"\0")
    h.update(listing.stats.tobytes())
    h.update(listing.labels.tobytes())
    return h.hexdigest()


def _resume(tmp: Path, key: str) -> dict | None:
    """The journal of an interrupted run of this same plan, still decoding; None = start afresh."""
    try:
        state = json.loads((tmp / JOURNAL).read_text())
    except (OSError, ValueError):
        return None
    return state if state.get("key") == key and state.get("stage") == "decoding" else None


def _hash(paths: list[Path], plans: list[store.Layout], n: int, shape: tuple[int, ...]) -> str:
    """split.content_hash of the prepared splits, read back from their files in bounded chunks."""
    h = hashlib.sha256(str((n, *shape)).encode())
    for name in ("images", "labels"):
        for path, plan in zip(paths, plans):
            start, left = plan.offsets[name], plan.nbytes(name)
            with open(path, "rb") as f:
                f.seek(start)
                while left:
                    chunk = f.read(min(_READ, left))
                    h.update(chunk)
                    left -= len(chunk)
    return h.hexdigest()


def _rows(path: Path, plan: store.Layout, rows: list[int]) -> torch.Tensor:
    _, shape = plan.specs["images"]
    size = int(np.prod(shape[1:]))  # bytes per uint8 image
    with open(path, "rb") as f:
        data = b"".join(os.pread(f.fileno(), size, plan.offsets["images"] + r * size) for r in rows)
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(len(rows), *shape[1:])


def prepare_folder(cfg: DataConfig, out: Path, grid_rows: int = 10,
                   check: Callable[[int, int, int], None] | None = None, progress: bool = True,
                   block: int = BLOCK, after_block: Callable[[int], None] | None = None) -> dict:
    """Prepare data.root (an image folder) into `out` in bounded memory; see the module's docstring.
    `after_block(files_done)` is called after each journal record (tests stop the process there)."""
    root, out = Path(cfg.root), Path(out)
    listing = _listed(cfg)
    n, channels = len(listing.files), cfg.channels or 3
    size = cfg.image_size or folder.first_size(listing.files)
    if size is None:
        raise DataError(f"none of the {n} image files in {root} could be read; check the files or data.root")
    labels = torch.from_numpy(listing.labels)
    hold, train = stratified_indices(labels, cfg.holdout_fraction, cfg.seed)
    prepared.check_classes(labels[train], labels[hold], listing.classes, cfg)
    if check is not None:
        check(len(train), len(hold), size)
    side = np.zeros(n, dtype=np.int64)  # 0: train, 1: held-out
    side[hold.numpy()] = 1
    row = np.empty(n, dtype=np.int64)  # each file's row in its split
    row[train.numpy()], row[hold.numpy()] = np.arange(len(train)), np.arange(len(hold))
    shape = (channels, size, size)
    specs = [{"images": (np.uint8, (len(idx), *shape)), "labels": (np.int64, (len(idx),))} for idx in (train, hold)]
    plans = [store.layout(s) for s in specs]  # as safetensors' own writer lays them out: the same bytes
    tmp = out.with_name(out.name + ".tmp")
    paths = [tmp / prepared.TRAIN_FILE, tmp / prepared.HOLDOUT_FILE]
    key = _plan_key(cfg, listing, size, channels)
    try:
        state = _resume(tmp, key)
        if state is None:
            state = _start(tmp, paths, plans, [labels[train], labels[hold]], key)
        else:
            note(f"prepare: continuing the interrupted run in {tmp} from file {state['done']:,} of {n:,}")
        _decode_all(listing, state, tmp, paths, plans, side, row, size, channels, progress, block, after_block)
        try:
            now = _listed(cfg)
            if not _same(listing, now):
                raise DataError(f"data.root {root} changed while prepare read it: {_describe_change(listing, now)}; "
                                f"re-run `dvc repro prepare` once the folder stops changing")
            ok = np.ones(n, dtype=bool)
            ok[[entry[0] for entry in state["bad"]]] = False
            if not ok.all():
                plans = _drop_unreadable(cfg, root, state, tmp, paths, plans, ok, train, hold, n)
                split_labels = [labels[idx[ok[idx.numpy()]]] for idx in (train, hold)]
                prepared.check_classes(*split_labels, listing.classes, cfg)
                if check is not None:
                    check(len(split_labels[0]), len(split_labels[1]), size)
            else:
                split_labels = [labels[train], labels[hold]]
        except DataError:  # decoded, but not to be used: nothing of it may be taken up by a later run
            remove(tmp)
            raise
        return _finish(cfg, tmp, out, paths, plans, split_labels, listing, state, shape, grid_rows)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        remove(tmp)
        raise DataError(f"the disk holding {tmp} is full ({exc.strerror}); free space there, or set "
                        f"paths.prepared to a disk with room, and re-run `dvc repro prepare`") from None


def _size(nbytes: int) -> str:
    return f"{nbytes / 2**30:,.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.2f} MiB"


def _start(tmp: Path, paths: list[Path], plans: list[store.Layout], split_labels: list[torch.Tensor],
           key: str) -> dict:
    remove(tmp)
    tmp.mkdir(parents=True)
    need = sum(p.size for p in plans)
    free = shutil.disk_usage(tmp).free
    if need > free:
        remove(tmp)
        raise DataError(f"the prepared images need {_size(need)} and the disk holding {tmp} has {_size(free)} "
                        f"free; free space there, set paths.prepared to a disk with room, or lower data.image_size "
                        f"or data.max_images")
    for path, plan, lab in zip(paths, plans, split_labels):
        store.create(path, plan)
        with open(path, "r+b") as f:
            os.pwrite(f.fileno(), lab.numpy().tobytes(), plan.offsets["labels"])
    state = {"key": key, "stage": "decoding", "done": 0, "bad": []}
    write_json(tmp / JOURNAL, state)
    return state


def _decode_all(listing, state, tmp, paths, plans, side, row, size, channels, progress, block,
                after_block) -> None:
    n = len(listing.files)
    row_bytes = channels * size * size
    fds = [os.open(p, os.O_RDWR) for p in paths]
    try:
        with folder.Decoder(size, channels, n - state["done"]) as decoder, \
                tqdm(total=n, initial=state["done"], desc="decode", unit="img", disable=not progress) as bar:
            for start in range(state["done"], n, block):
                names = listing.files[start : start + block]
                for j, img, err in decoder.run(names):
                    i = start + j
                    if img is None:
                        state["bad"].append([i, listing.rel(i), err])
                    else:
                        k = side[i]
                        os.pwrite(fds[k], img.tobytes(), plans[k].offsets["images"] + int(row[i]) * row_bytes)
                bar.update(len(names))
                for fd in fds:
                    os.fsync(fd)  # the rows are on disk before the journal says they are
                state["done"] = start + len(names)
                write_json(tmp / JOURNAL, state)
                if after_block is not None:
                    after_block(state["done"])
    finally:
        for fd in fds:
            os.close(fd)


def _drop_unreadable(cfg, root, state, tmp, paths, plans, ok, train, hold, n) -> list[store.Layout]:
    bad = sorted(state["bad"])
    names, more = [name for _, name, _ in bad[:5]], ", ..." if len(bad) > 5 else ""
    if len(bad) == n:
        raise DataError(f"none of the {n} image files in {root} could be read (e.g. {bad[0][1]}: {bad[0][2]}); "
                        f"check the files or data.root")
    if cfg.unreadable == "refuse":
        raise DataError(f"{len(bad):,} of the {n:,} image files in {root} cannot be read ({bad[0][1]}: "
                        f"{bad[0][2]}; also {', '.join(names[1:]) or 'no other'}{more}); remove or replace them, "
                        f"or set data.unreadable: skip to leave them out")
    note(f"prepare: skipped {len(bad):,} unreadable file(s) of {n:,}: {', '.join(names)}{more} "
         f"(listed in info.json, up to {MAX_UNREADABLE_LISTED})")
    state["stage"] = "compacting"  # a kill from here on leaves files no journal can vouch for: start afresh
    write_json(tmp / JOURNAL, state)
    return [store.shrink(path, plan, np.flatnonzero(ok[idx.numpy()]))
            for path, plan, idx in zip(paths, plans, (train, hold))]


def _finish(cfg, tmp, out, paths, plans, split_labels, listing, state, shape, grid_rows) -> dict:
    n_kept = sum(len(lab) for lab in split_labels)
    bad = sorted(state["bad"])
    details = {"files": len(listing.files), "unreadable": len(bad),
               "unreadable_files": [f"{name} ({why})" for _, name, why in bad[:MAX_UNREADABLE_LISTED]],
               "transform": describe_transform(cfg, shape[0], shape[-1])}
    sha = _hash(paths, plans, n_kept, shape)
    info = prepared.write_info_of(tmp, cfg.dataset, sha, list(shape), *split_labels, listing.classes, details)
    prepared.write_histogram(tmp, *split_labels, info["num_classes"])
    chosen = prepared.grid_indices(split_labels[0], info["num_classes"], grid_rows).tolist()
    save_png(make_grid(_rows(paths[0], plans[0], chosen), grid_rows), tmp / prepared.GRID_FILE)
    (tmp / JOURNAL).unlink()
    remove(out)
    tmp.rename(out)
    return info
