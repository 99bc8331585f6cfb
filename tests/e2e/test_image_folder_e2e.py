"""Your own images end to end: a colour image folder (made here, in the repository's ignored data/raw) through
the real `dvc repro` with R3GAN and its rpgan loss, with colour grids in MLflow and DVC, the folder's hash, file count and transform on the
run, `dvc exp show` and `ganpipe compare` columns, `ganpipe reproduce` bitwise, and a changed image re-running
prepare."""
from __future__ import annotations

import json
import shutil

import numpy as np
import yaml
from PIL import Image

from helpers import R3GAN_TINY
from helpers.e2e import ROOT, dvc, ganpipe, project_files, sh

COLOUR = {
    "data": {"dataset": "imagefolder", "root": "data/raw", "image_size": 16, "channels": 3, "max_images": None,
             "holdout_fraction": 0.25},
    "classifier": {"epochs": 3, "batch_size": 32, "feature_dim": 16, "augment_flip": True},
    # R3GAN (the architecture the small CPU config trains) at 16 px: 3 stages, 4x4 -> 16x16
    "model": {**R3GAN_TINY, "g_hidden": [16, 16, 8], "d_hidden": [8, 16, 16], "blocks": [1, 1, 1],
              "cardinality": [4, 4, 4]},
    "train": {"epochs": 2, "batch_size": 32, "augment": ["translation"], "grid_every_s": 0,  # a grid every epoch
              "loss": "rpgan", "gamma": 0.05},
    "sample": {"n": 200, "batch_size": 100, "grid_rows": 4},
    "evaluate": {"batch_size": 100, "is_splits": 2},
}


def make_images(root, n_per_class=30):
    """Four classes, each its own colour and shape, as PNG, JPEG and RGBA PNG files of 20x18 pixels."""
    rng = np.random.default_rng(0)
    colours = [(220, 40, 40), (40, 200, 60), (50, 60, 220), (230, 200, 40)]
    for k, colour in enumerate(colours):
        for i in range(n_per_class):
            a = rng.integers(0, 40, (18, 20, 3), dtype=np.uint8)
            a[4 + k : 14, 3 + 2 * k : 12 + k] = colour
            path = root / f"class_{k}" / f"{i:03d}.{('png', 'jpg', 'PNG')[i % 3]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            img = Image.fromarray(a)
            if i % 3 == 2:
                img = img.convert("RGBA")
            img.save(path, format="JPEG" if path.suffix == ".jpg" else "PNG")


def test_an_image_folder_runs_tracks_and_reproduces_in_colour(env, tmp_path):
    from mlflow.tracking import MlflowClient

    repo = tmp_path / "repo"
    for f in project_files():
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, repo / f)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in COLOUR.items():
        params[section].update(values)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    make_images(repo / "data" / "raw")
    sh("git", "init", "-q", "-b", "main", cwd=repo, env=env)
    sh("git", "add", "-A", cwd=repo, env=env)
    sh("git", "commit", "-q", "-m", "colour", cwd=repo, env=env)
    assert "data/raw/class_0" not in sh("git", "ls-files", cwd=repo, env=env)  # the images are not in git
    dvc(repo, env, "repro")

    info = json.loads((repo / "data" / "prepared" / "info.json").read_text())
    assert info["image_shape"] == [3, 16, 16] and info["classes"] == [f"class_{k}" for k in range(4)]
    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
    tags = run.data.tags
    assert tags["data.sha256"] == info["sha256"] and tags["data.files"] == "120" and tags["data.unreadable"] == "0"
    assert "centre-cropped to 16x16" in tags["data.transform"] and tags["data.image_shape"] == "3x16x16"
    assert "eval/fid" in run.data.metrics and run.data.params["data.dataset"] == "imagefolder"
    grids = {int(a.path.split("+step+")[1].split("+")[0]): a.path for a in client.list_artifacts(run.info.run_id, "images")
             if "samples" in a.path and a.path.endswith(".png") and "compressed" not in a.path}
    assert sorted(grids) == [0, 1, 2]
    assert colourful(Image.open(client.download_artifacts(run.info.run_id, grids[2], str(tmp_path))))
    assert colourful(Image.open(repo / "plots" / "sample_grid.png"))
    assert colourful(Image.open(repo / "data" / "prepared" / "real_grid.png"))

    shown = dvc(repo, env, "exp", "show", "--csv")
    header = shown.splitlines()[0].split(",")
    assert {"data.dataset", "data.image_size", "data.root", "fake.fid", "holdout_accuracy"} <= set(header)
    table = ganpipe(repo, env, "compare", "--format", "csv")
    assert table.returncode == 0 and run.info.run_id[:8] in table.stdout, table.stderr

    out = ganpipe(repo, env, "reproduce", run.info.run_id)
    assert out.returncode == 0 and "REPRODUCED" in out.stdout and "NOT" not in out.stdout, out.stderr[-3000:]

    # one changed image: prepare is out of date, and re-running it gives another content hash
    Image.fromarray(np.zeros((18, 20, 3), dtype=np.uint8)).save(repo / "data" / "raw" / "class_1" / "000.png")
    assert "prepare" in dvc(repo, env, "status")
    dvc(repo, env, "repro", "prepare")
    assert json.loads((repo / "data" / "prepared" / "info.json").read_text())["sha256"] != info["sha256"]


def colourful(img: Image.Image) -> bool:
    a = np.asarray(img.convert("RGB")).astype(int)
    return img.mode in ("RGB", "RGBA") and np.abs(a[..., 0] - a[..., 1]).max() > 60


def test_reproduce_lends_the_worktree_the_source_folder(tmp_path):
    from ganpipe.results.reproduce import lend_data

    root, tree = tmp_path / "root", tmp_path / "tree"
    sh("git", "init", "-q", str(root), cwd=tmp_path, env=None)
    (root / ".gitignore").write_text("/data/raw/*\n")
    (root / "data" / "raw").mkdir(parents=True)
    (root / "data" / "raw" / "x.png").write_bytes(b"x")
    (tree / "data" / "raw").mkdir(parents=True)
    params = {"data": {"root": "data/raw"}}
    assert lend_data(root, tree, params) is params
    assert (tree / "data" / "raw").resolve() == (root / "data" / "raw").resolve()  # linked: untracked files
    outside = {"data": {"root": "../images"}}
    assert lend_data(root, tree, outside)["data"]["root"] == str((tmp_path / "images").resolve())
    absolute = {"data": {"root": "/srv/images"}}
    assert lend_data(root, tree, absolute) is absolute
