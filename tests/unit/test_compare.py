"""`ganpipe compare` over a real (temporary) MLflow store."""
import csv
import io

import pytest

from ganpipe import cli
from ganpipe.keys import CONFIG_TAG, EVALUATES_TAG, PRECISION_TAG
from ganpipe.params import config
from ganpipe.track import tracking

from helpers import ROOT


def _project(tmp_path, monkeypatch) -> config.TrackingConfig:
    """A project folder with its own MLflow store, as the working directory; its tracking params."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    return config.load(tmp_path / "params.yaml").tracking


@pytest.fixture
def store(tmp_path, monkeypatch):
    cfg = _project(tmp_path, monkeypatch)
    ids = {}
    for name, loss, fid, sweep in (("hinge-run", "hinge", 20.0, "s1"), ("bce-run", "bce", 90.0, "s1"),
                                   ("other", "lsgan", 50.0, "s2"), ("quoted", "hinge", 30.0, "it's")):
        params = {"train.loss": loss, "train.epochs": "2"}
        tags = {"sweep": sweep, **({EVALUATES_TAG: ids["hinge-run"]} if name == "quoted" else {}),
                PRECISION_TAG: "fp32" if loss == "bce" else "bf16"}  # as train.precision: auto resolved it
        with tracking.start_run(cfg, run_name=name, params=params, tags=tags) as run:
            for epoch in (1, 2):
                run.log_metrics(epoch, {"loss/d": 1.0 / epoch, "loss/g": 2.0 / epoch})
            run.log_metrics(0, {"eval/fid": fid, "eval/is": 100 / fid})
        ids[name] = run.run_id
    return tmp_path, ids


def test_compare_filters_by_tag_sorts_and_plots(store, capsys):
    tmp_path, _ = store
    assert cli.main(["compare", "--tag", "sweep=s1", "--format", "csv", "--plot", "cmp.png"]) == 0
    text = capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(text.split("\nwrote")[0])))
    assert [r["run"] for r in rows] == ["hinge-run", "bce-run"]  # sorted by eval/fid, lowest first
    assert "train.loss" in rows[0] and "train.epochs" not in rows[0]  # only the params that differ
    assert [r["precision"] for r in rows] == ["bf16", "fp32"]  # what each run trained in, on its machine
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_by_run_ids_to_a_markdown_file(store, capsys):
    tmp_path, ids = store
    assert cli.main(["compare", "--runs", ids["other"], ids["bce-run"], "--sort", "eval/is", "--descending",
                     "--out", "cmp.md"]) == 0
    lines = (tmp_path / "cmp.md").read_text().splitlines()
    assert lines[0].startswith("| run ") and "other" in lines[2] and "bce-run" in lines[3]


@pytest.mark.parametrize("args,message", [
    (["--experiment", "nope"], "no MLflow experiment named 'nope'"),
    (["--runs", "0" * 32], "no run '00000000000000000000000000000000'"),
    (["--tag", "sweep=s9"], "no runs in experiment 'ganpipe' match tags {'sweep': 's9'}"),
    (["--sort", "eval/kid"], "cannot sort by 'eval/kid'"),
    (["--tag", "oops"], "--tag must look like KEY=VALUE"),
    (["--tag", "sweep=a'b\"c"], "MLflow's filter language cannot hold a value with both ' and \""),
    (["--tag", "sw`eep=x"], "a tag name must not be empty or hold a backtick"),
    (["--runs", "x' OR '1'='1"], "\"x' OR '1'='1\" is not an MLflow run id (32 hex digits)"),
])
def test_compare_bad_input_is_one_clear_error(store, capsys, args, message):
    assert cli.main(["compare", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_filters_on_values_with_quotes_and_shows_which_run_an_evaluation_scored(store, capsys):
    _, ids = store
    assert cli.main(["compare", "--tag", "sweep=it's", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["run"] for r in rows] == ["quoted"] and rows[0]["evaluates"] == ids["hinge-run"][:8]


@pytest.fixture
def seeded(tmp_path, monkeypatch):
    """Two configs over three and two seeds, a re-run of one name (counted once), and an old untagged run."""
    cfg = _project(tmp_path, monkeypatch)
    runs = [("a-s0", "a", 10.0), ("a-s1", "a", 12.0), ("a-s2", "a", 14.0), ("b-s0", "b", 30.0),
            ("b-s1", "b", 99.0), ("b-s1", "b", 40.0), ("old", None, 50.0)]
    for name, group, fid in runs:
        tags = {CONFIG_TAG: group} if group else {}
        with tracking.start_run(cfg, run_name=name, params={"train.seed": name[-1]}, tags=tags) as run:
            run.log_metrics(0, {"eval/fid": fid, "eval/is": fid / 10})
    return tmp_path


def test_group_by_config_gives_mean_std_and_n_per_group_and_error_bars(seeded, capsys):
    assert cli.main(["compare", "--group-by", "config", "--format", "csv", "--plot", "groups.png"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.split("\nwrote")[0])))
    assert [(r["group"], r["n"]) for r in rows] == [("a", "3"), ("b", "2"), ("(none)", "1")]  # by mean FID
    assert float(rows[0]["eval/fid_mean"]) == pytest.approx(12.0) and float(rows[0]["eval/fid_std"]) == \
        pytest.approx(2.0)
    assert float(rows[1]["eval/fid_mean"]) == pytest.approx(35.0)  # the newest b-s1 (40), not the replaced 99
    assert rows[2]["eval/fid_std"] == ""  # one run: no spread to report
    assert (seeded / "groups.png").read_bytes()[:4] == b"\x89PNG"
    assert cli.main(["compare", "--group-by", "train.seed", "--sort", "eval/is", "--descending"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| train.seed | n | eval/fid | eval/is")
    assert "| `1` | 2 | 26.0 ± 19.8 | 2.60 ± 1.98 |" in table  # a-s1 (12) and the newest b-s1 (40)


@pytest.mark.parametrize("args,message", [
    (["--group-by", "train.nope"], "--group-by 'train.nope': no such param or tag"),
    (["--group-by", "config", "--sort", "eval/kid"], "--sort: no score 'eval/kid'"),
    (["--group-by", "config", "--plot", "x.png", "--metrics", "eval/kid"], "--metrics: no score 'eval/kid'"),
])
def test_group_by_mistakes_are_one_clear_error(seeded, capsys, args, message):
    assert cli.main(["compare", *args]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_shows_a_studys_trials_their_state_and_best_score(tmp_path, monkeypatch, capsys):
    cfg = _project(tmp_path, monkeypatch)
    for trial, state, fid in ((0, "complete", 40.0), (1, "pruned", None), (2, "complete", 25.0)):
        tags = {"tune.study": "lr", "tune.trial": str(trial), "tune.state": state}
        with tracking.start_run(cfg, run_name=f"lr-t{trial}", params={"train.g_lr": str(trial)}, tags=tags) as run:
            run.log_metrics(1, {"score/best": 100.0 + trial, **({"eval/fid": fid} if fid else {})})
    with tracking.start_run(cfg, run_name="plain", params={"train.g_lr": "9"}) as run:
        run.log_metrics(0, {"eval/fid": 60.0})
    assert cli.main(["compare", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["run"], r["trial"], r["tune.state"]) for r in rows] == [
        ("lr-t2", "lr#2", "complete"), ("lr-t0", "lr#0", "complete"), ("plain", "", ""), ("lr-t1", "lr#1", "pruned")]
    assert [r["score/best"] for r in rows] == ["102.0", "100.0", "", "101.0"]
    assert cli.main(["compare", "--tag", "tune.study=lr", "--tag", "tune.state=complete", "--format", "csv"]) == 0
    assert [r["run"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["lr-t2", "lr-t0"]
