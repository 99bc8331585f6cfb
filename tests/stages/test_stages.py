"""Stages called in-process, as DVC calls them: bad input fails cleanly, before work, leaving nothing behind."""
import pytest

from helpers import ROOT, runs, stage, write_params


@pytest.mark.parametrize("section,values,message", [
    ("train", {"g_lr": "fast"}, "train.g_lr must be a number"),
    ("train", {"optimiser": "sgd"}, "unknown key train.optimiser"),
    ("train", {"batch_size": -4}, "train.batch_size must be > 0"),
    ("model", {"arch": "stylegan"}, "model.arch must be one of ['mlp', 'dcgan', 'resnet', 'r3gan']"),
    ("data", {"dataset": "imagenet"}, "data.dataset must be one of"),
])
def test_bad_params_exit_non_zero_with_the_key(workdir, capsys, section, values, message):
    write_params(workdir, **{section: values})
    assert stage("prepare")([]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (workdir / "data").exists()


def test_batch_larger_than_dataset_stops_before_any_run(workdir, capsys):
    assert stage("prepare")([]) == 0
    write_params(workdir, train={"batch_size": 5000})
    assert stage("train")([]) == 1
    assert "train.batch_size must be at most the 270 training images, got 5000" in capsys.readouterr().err
    assert not (workdir / "models").exists()
    assert runs(workdir) == []


def test_unreachable_tracking_server_fails_fast(workdir, capsys, monkeypatch):
    assert stage("prepare")([]) == 0
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert stage("train")([]) == 1
    err = capsys.readouterr().err
    assert "cannot use the MLflow tracking store http://127.0.0.1:9" in err and "tracking.enabled: false" in err
    assert not (workdir / "models").exists()


def test_divergence_marks_the_run_failed_and_writes_nothing(workdir, capsys, monkeypatch):
    from ganpipe.errors import DivergenceError
    from ganpipe.pipeline import train as train_stage

    def diverge(*args, hooks, **kwargs):
        hooks.log(1, {"loss/d": 1.0, "loss/g": 1.0})
        raise DivergenceError("training diverged at epoch 2: loss/d is nan")

    assert stage("prepare")([]) == 0
    monkeypatch.setattr(train_stage, "train", diverge)
    assert stage("train")([]) == 1
    assert "training diverged at epoch 2" in capsys.readouterr().err
    assert [r.info.status for r in runs(workdir)] == ["FAILED"]
    assert not (workdir / "models").exists()


def test_corrupt_generator_is_reported(workdir, capsys):
    (workdir / "models").mkdir()
    (workdir / "models" / "generator.safetensors").write_bytes(b"\x00" * 64)
    assert stage("sample")([]) == 1
    assert "re-create them with `dvc repro -f train`" in capsys.readouterr().err
    assert not (workdir / "samples").exists()


def test_tracking_disabled_runs_without_a_store(workdir):
    write_params(workdir, tracking={"enabled": False})
    for name in ("prepare", "train_classifier", "train", "sample", "evaluate"):
        assert stage(name)([]) == 0, name
    assert not (workdir / "mlflow.db").exists()
    assert (workdir / "metrics" / "eval.json").is_file()


def test_train_counted_in_kimg_logs_ticks_and_writes_the_images_shown(workdir):
    import csv
    import json

    from mlflow.tracking import MlflowClient

    assert stage("prepare")([]) == 0
    # 270 training images in batches of 32: 8 steps a pass; 0.4 kimg = 13 steps (416 images), ticks of 5 steps
    write_params(workdir, train={"epochs": None, "kimg": 0.4, "tick_kimg": 0.16})
    assert stage("train")([]) == 0
    summary = json.loads((workdir / "metrics" / "train.json").read_text())
    assert (summary["steps"], summary["kimg"], summary["epochs"]) == (13, 0.416, 1.625)
    rows = list(csv.DictReader((workdir / "plots" / "train_losses.csv").open()))
    assert [(r["tick"], r["progress/kimg"]) for r in rows] == [("1", "0.16"), ("2", "0.32"), ("3", "0.416")]
    (run,) = runs(workdir)
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "progress/kimg")] == \
        [(1, 0.16), (2, 0.32), (3, 0.416)]
    assert run.data.params["train.kimg"] == "0.4" and run.data.params["train.epochs"] == "None"


def test_train_streamed_from_a_memory_mapped_split_writes_the_same_generator(workdir, monkeypatch, capsys):
    assert stage("prepare")([]) == 0
    write_params(workdir, tracking={"enabled": False})
    generator = workdir / "models" / "generator.safetensors"
    assert stage("train")([]) == 0
    in_memory = generator.read_bytes()
    assert "streaming" not in capsys.readouterr().out
    monkeypatch.setenv("GANPIPE_DATA_BUDGET_MB", "0")  # the split is bigger than the budget: mapped and streamed
    assert stage("train")([]) == 0
    assert "streaming the training images from data/prepared/train.safetensors" in capsys.readouterr().out
    assert generator.read_bytes() == in_memory


def test_divergence_keeps_the_last_good_checkpoint(workdir, capsys, monkeypatch):
    import torch

    from ganpipe.gan import resume, step
    from ganpipe.gan.losses import hinge_d_loss, hinge_g_loss

    calls = []

    def d_loss_nan_from_epoch_3(real, fake):  # 270 images / batch 32 = 8 D steps per epoch
        calls.append(1)
        return hinge_d_loss(real, fake) * (float("nan") if len(calls) > 16 else 1.0)

    assert stage("prepare")([]) == 0
    write_params(workdir, train={"epochs": 4})
    monkeypatch.setitem(step.LOSSES, "hinge", (d_loss_nan_from_epoch_3, hinge_g_loss))
    assert stage("train")([]) == 1
    err = capsys.readouterr().err
    assert "training diverged at epoch 3" in err and "last good state is kept in checkpoints/train.pt" in err
    assert [r.info.status for r in runs(workdir)] == ["FAILED"]
    state = torch.load(workdir / "checkpoints" / "train.pt", weights_only=True)
    assert state["tick"] == 2 and all(torch.isfinite(t).all() for t in state["G"].values())
    assert not (workdir / "models").exists()
    assert resume.FORMAT == state["format"]


def test_killed_train_resumes_to_the_same_generator_bytes(workdir):
    """SIGKILL mid-training (no chance to clean up), then re-run: the same bytes as a run never interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    assert stage("prepare")([]) == 0
    write_params(workdir, train={"epochs": 30})
    cmd = [sys.executable, str(ROOT / "stages" / "train.py")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    generator = workdir / "models" / "generator.safetensors"
    uninterrupted = generator.read_bytes()
    checkpoint = workdir / "checkpoints" / "train.pt"
    assert not checkpoint.exists()  # removed once training finished
    generator.unlink()

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not checkpoint.exists() and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not generator.exists(), "training finished before it could be killed"
    out = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True).stdout
    assert "resuming from checkpoints/train.pt at epoch" in out
    assert generator.read_bytes() == uninterrupted
    assert not checkpoint.exists()
    # the killed run is continued, not duplicated: one run per trained generator, each FINISHED
    finished = runs(workdir)
    assert sorted(r.info.status for r in finished) == ["FINISHED", "FINISHED"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    resumed = [r for r in finished if r.data.tags.get("train.resumed_from_epoch", "0") != "0"]
    assert len(resumed) == 1
    steps = [m.step for m in client.get_metric_history(resumed[0].info.run_id, "loss/d")]
    assert sorted(set(steps)) == list(range(1, 31))  # an epoch logged just before the kill may repeat


def test_ganpipe_evaluate_scores_outside_samples_and_logs_a_run(workdir, capsys):
    import json

    import numpy as np

    from ganpipe import cli
    from ganpipe.data import prepared

    assert stage("prepare")([]) == 0 and stage("train_classifier")([]) == 0
    real = prepared.load_split(workdir / "data" / "prepared" / "train.safetensors")
    np.savez(workdir / "outside.npz", images=real.images.numpy() / 127.5 - 1, labels=real.labels.numpy())
    capsys.readouterr()
    assert cli.main(["evaluate", "--samples", "outside.npz", "--mlflow", "outside-gan"]) == 0
    out = capsys.readouterr().out
    assert "IS" in out and "real ceiling" in out and "wrote outside.eval.json" in out
    result = json.loads((workdir / "outside.eval.json").read_text())
    assert result["protocol"]["n_fake"] == len(real.labels) and len(result["fake"]["class_agreement_per_class"]) == 10
    [run] = runs(workdir)
    assert run.info.run_name == "outside-gan" and run.data.tags["ganpipe.source"] == "external"
    assert run.data.metrics["eval/fid"] == pytest.approx(result["fake"]["fid"])


def test_ganpipe_evaluate_refuses_bad_samples_and_writes_nothing(workdir, capsys):
    import numpy as np

    from ganpipe import cli

    assert cli.main(["evaluate", "--samples", "nothing.npz"]) == 1  # no prepared data yet: names the stage
    assert "dvc repro" in capsys.readouterr().err
    assert stage("prepare")([]) == 0 and stage("train_classifier")([]) == 0
    np.save(workdir / "rgb.npy", np.zeros((8, 3, 28, 28), np.uint8))
    capsys.readouterr()
    assert cli.main(["evaluate", "--samples", "rgb.npy"]) == 1
    err = capsys.readouterr().err
    assert "images have 3 channels, the evaluation classifier takes 1" in err and "Traceback" not in err
    assert not (workdir / "rgb.eval.json").exists() and runs(workdir) == []


def test_sigterm_marks_the_run_killed_keeps_the_checkpoint_and_a_code_change_voids_it(workdir, tmp_path):
    """Plain `kill` (SIGTERM, as a stopped queue job gets): the run ends KILLED, the checkpoint stays and resumes
    into the same run; after a change to the training code the same checkpoint is not resumed."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "src"  # a copy of the code that this test can change
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(src)}
    assert stage("prepare")([]) == 0
    write_params(workdir, train={"epochs": 30})
    cmd, checkpoint = [sys.executable, str(ROOT / "stages" / "train.py")], workdir / "checkpoints" / "train.pt"

    def terminate_after_first_checkpoint() -> tuple[int, str]:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while not checkpoint.exists() and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=120), proc.stderr.read()

    code, err = terminate_after_first_checkpoint()
    assert code == 143 and "terminated (SIGTERM)" in err and "Traceback" not in err, err
    [killed] = runs(workdir)
    assert killed.info.status == "KILLED" and checkpoint.is_file()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert "resuming from checkpoints/train.pt" in done.stdout
    [finished] = runs(workdir)  # continued, not duplicated
    assert finished.info.run_id == killed.info.run_id and finished.info.status == "FINISHED"

    code, _ = terminate_after_first_checkpoint()
    assert code == 143 and checkpoint.is_file()
    losses = src / "ganpipe" / "gan" / "losses.py"
    losses.write_text(losses.read_text() + "\nCHANGED = True  # a change to the training code (a comment alone is not)\n")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert "belongs to other params, data or training code; training from scratch" in done.stdout
    assert "resuming" not in done.stdout



@pytest.mark.parametrize("sections,message", [
    ({"data": {"max_images": 100}}, "the held-out split has 10 images, but FID in the classifier's 16-d feature space "
                                    "needs more than 16: raise data.max_images (100) or data.holdout_fraction (0.1)"),
    ({"classifier": {"batch_size": 5000}}, "classifier.batch_size must be at most the 270 training images, got 5000"),
    ({"train": {"batch_size": 5000}}, "train.batch_size must be at most the 270 training images, got 5000"),
    ({"evaluate": {"dc_k": 40}}, "the held-out split has 30 images, but evaluate.pr_k / evaluate.dc_k need more than 40"),
])
def test_sizes_the_data_cannot_serve_stop_in_prepare_before_anything_is_written(workdir, capsys, sections, message):
    write_params(workdir, **sections)
    assert stage("prepare")([]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (workdir / "data").exists()


def test_ganpipe_evaluate_refuses_fewer_samples_than_the_feature_dimension(workdir, capsys):
    import numpy as np

    from ganpipe import cli

    assert stage("prepare")([]) == 0 and stage("train_classifier")([]) == 0
    np.save(workdir / "few.npy", np.zeros((10, 1, 28, 28), np.uint8))
    capsys.readouterr()
    assert cli.main(["evaluate", "--samples", "few.npy"]) == 1
    err = capsys.readouterr().err
    assert "--samples few.npy gives 10 images, but FID in the classifier's 16-d feature space needs more than 16" in err
    assert "Traceback" not in err and not (workdir / "few.eval.json").exists()
