"""`ganpipe score` as a user runs it: two image sets outside any project (no dvc, no params.yaml), the real set's
features cached across calls, one-line errors; and in the project, a training run as the fake set gives the
same scores as the PNG files `ganpipe generate` writes from it."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from helpers.e2e import ganpipe


def _score(cwd, env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ganpipe.cli", "score", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def test_two_sets_outside_a_project_with_the_real_features_cached(env, tmp_path):
    work = tmp_path / "anywhere"
    (work / "real" / "cats").mkdir(parents=True)
    (work / "real" / "dogs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):  # photos of two sizes, one in three grey, in class folders
        image = Image.fromarray(rng.integers(0, 256, (40 if i % 2 else 32, 32, 3), dtype=np.uint8))
        image.convert("L" if i % 3 == 0 else "RGB").save(work / "real" / ("cats", "dogs")[i % 2] / f"{i}.png")
    fakes = rng.uniform(-1, 1, (24, 3, 16, 16)).astype(np.float32)  # a generator's raw [-1, 1] output
    np.savez(work / "fake.npz", images=fakes)
    np.savez(work / "other.npz", images=fakes[:, :, ::-1].copy())
    env = {**env, "GANPIPE_CACHE": str(tmp_path / "cache")}

    first = _score(work, env, "real", "fake.npz", "--json", "scores.json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "features computed and cached" in first.stderr and "FID" in first.stdout
    result = json.loads((work / "scores.json").read_text())
    assert {"fid", "fid_infinity", "kid", "precision", "recall", "density", "coverage", "copy_share"} <= \
        set(result["scores"])
    p = result["protocol"]
    assert (p["n_real"], p["n_fake"]) == (30, 24) and "7ff4a85c" in p["weights"] and "299" in p["resize"]
    assert p["copy_split"] == {"reference": 27, "held_out": 3, "seed": 0, "why": p["copy_split"]["why"]}
    assert not (work / "params.yaml").exists() and not (work / "mlflow.db").exists()  # nothing of a project

    second = _score(work, env, "real", "other.npz", "--json", "other.json")
    assert second.returncode == 0 and "features from the cache" in second.stderr, second.stderr[-2000:]
    assert json.loads((work / "other.json").read_text())["scores"] != result["scores"]
    again = _score(work, env, "real", "fake.npz", "--json", "again.json")
    assert again.returncode == 0 and json.loads((work / "again.json").read_text())["scores"] == result["scores"]

    (work / "empty").mkdir()
    for args, message in ((["empty", "fake.npz"], "folder empty holds no images"),
                          (["real", "missing.npz"], "missing.npz: no such folder or file")):
        bad = _score(work, env, *args)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr


def test_a_training_run_as_the_fake_set_scores_as_its_generated_pngs_from_the_same_seed(repo, env, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    (run,) = [r for r in client.search_runs([client.get_experiment_by_name("ganpipe").experiment_id])
              if r.data.tags.get("ganpipe.run_kind") == "training" and r.info.status == "FINISHED"][:1]
    env = {**env, "GANPIPE_CACHE": str(tmp_path / "cache")}
    for seed, out in (("7", "real"), ("3", "pngs")):
        made = ganpipe(repo, env, "generate", run.info.run_id, "--n", "20", "--seed", seed, "--out",
                       str(tmp_path / out))
        assert made.returncode == 0, made.stderr
    scores = {}
    for fake in (run.info.run_id, str(tmp_path / "pngs")):
        done = _score(repo, env, str(tmp_path / "real"), fake, "--n", "20", "--seed", "3", "--json",
                      str(tmp_path / "s.json"))
        assert done.returncode == 0, done.stderr[-2000:]
        scores[fake] = json.loads((tmp_path / "s.json").read_text())["scores"]
    assert scores[run.info.run_id] == scores[str(tmp_path / "pngs")]
