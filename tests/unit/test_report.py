import pandas as pd
import pytest

from ganpipe.results import report


def runs_frame():
    return pd.DataFrame({
        "tags.dvc.exp_name": ["a", "b", "a", "c"],
        "status": ["FINISHED", "FINISHED", "FINISHED", "FAILED"],
        "start_time": pd.to_datetime(["2026-01-02", "2026-01-01", "2026-01-01", "2026-01-03"]),
        "metrics.eval/is": [9.0, 5.0, 8.0, 7.0],
        "metrics.eval_real/is": [9.5, 9.5, 9.5, 9.5],
        "metrics.eval/fid": [20.0, 150.0, 30.0, 10.0],
        "metrics.eval/classes_covered": [10, 9, 10, 10],
        "metrics.eval/kl_uniform": [0.001, 0.2, 0.01, 0.0],
        "metrics.eval/class_agreement": [0.98, None, 0.9, 0.9],
        "metrics.time/train_s": [200.0, 100.0, 210.0, 5.0],
    })


def test_latest_finished_run_per_name_in_the_requested_order():
    picked = report.latest_per_name(runs_frame(), ["b", "a", "c", "missing"])
    assert list(picked["tags.dvc.exp_name"]) == ["b", "a"]  # c failed, missing has no run
    assert picked.iloc[1]["metrics.eval/is"] == 9.0  # the newer of a's two runs


def test_markdown_table_has_every_score_and_the_ceiling_share():
    picked = report.latest_per_name(runs_frame(), ["a", "b"])
    table = report.results_markdown(picked, {"a": "the best"}).splitlines()
    assert table[0].startswith("| run | what | IS | IS / ceiling | FID |")
    assert table[2].startswith("| `a` | the best | 9.00 | 95% | 20.0 | 10 | 0.001 | 98.0% | 200 |")
    assert "| – |" in table[3]  # b has no class agreement (unconditional): a dash, not 'nan'
    assert report.best_by(picked, "metrics.eval/fid") == "a"


def test_replace_between_markers_keeps_the_rest():
    text = "intro\n<!-- b -->\nold\n<!-- e -->\noutro\n"
    assert report.replace_between(text, "<!-- b -->", "<!-- e -->", "new\n") == \
        "intro\n<!-- b -->\nnew\n<!-- e -->\noutro\n"
    with pytest.raises(ValueError):
        report.replace_between("no markers", "<!-- b -->", "<!-- e -->", "x")


def test_comparison_keeps_only_params_that_differ_and_sorts():
    runs = runs_frame().assign(**{
        "tags.mlflow.runName": ["a", "b", "a-old", "c"],
        "run_id": ["1" * 32, "2" * 32, "3" * 32, "4" * 32],
        "params.train.loss": ["hinge", "bce", "hinge", "hinge"],
        "params.train.epochs": ["40"] * 4,  # the same everywhere: left out
    })
    table = report.comparison(runs, "eval/fid", ascending=True)
    assert list(table.columns[:3]) == ["run", "id", "train.loss"] and "train.epochs" not in table.columns
    assert list(table["run"]) == ["c", "a", "a-old", "b"] and table["id"][0] == "44444444"
    with pytest.raises(KeyError, match="cannot sort by 'eval/nope'"):
        report.comparison(runs, "eval/nope", ascending=True)


def test_comparison_plot_is_a_png(tmp_path):
    runs = runs_frame().assign(**{"tags.mlflow.runName": list("abcd"), "run_id": ["x" * 32] * 4})
    table = report.comparison(runs, "eval/fid", ascending=True)
    curves = {"a": {"loss/d": [(1, 1.0), (2, 0.5)], "loss/g": [(1, 2.0), (2, 1.0)]}, "b": {"loss/d": []}}
    report.plot_comparison(table, ["eval/is", "eval/fid"], curves, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
