"""The score registry (results/scores.py) knows every score the protocol writes, and the tables read it."""
from __future__ import annotations

import json

import pandas as pd

from ganpipe.keys import SCORE_PREFIXES
from ganpipe.results import report, scores, verdict

from helpers import ROOT


def test_every_registered_kind_has_a_tolerance_rule():
    for score in scores.SCORES:
        words, _ = verdict.allowed(f"eval/{score.key}", 0.1)
        assert words, score.key


def test_lookup_reads_both_prefixes_and_both_feature_spaces():
    assert scores.lookup("eval/fid").label == "FID"
    assert scores.lookup("eval_real/inception_kid").key == "kid"
    assert scores.lookup("eval/classes_covered").kind == "count"
    assert scores.lookup("eval/not_a_score") is None
    assert scores.kind("eval/not_a_score") == "distance"  # the cautious default: compared relatively


def test_values_are_shown_in_the_registry_format():
    assert scores.shown("eval/class_agreement", 0.98213) == "98.2%"
    assert scores.shown("eval/fid", 18.6789) == "18.7"
    assert scores.shown("eval/fid", float("nan")) == "–"
    assert scores.shown("eval/unregistered", 1.234567) == "1.235"


def test_the_report_takes_its_headings_and_formats_from_the_registry():
    runs = pd.DataFrame({"tags.dvc.exp_name": ["a"], "metrics.eval/is": [9.4], "metrics.eval_real/is": [9.46],
                         "metrics.eval/fid": [18.71], "metrics.eval/classes_covered": [10.0],
                         "metrics.eval/kl_uniform": [0.0002], "metrics.eval/class_agreement": [0.982],
                         "metrics.time/train_s": [206.0]})
    table = report.results_markdown(runs, {"a": "the default"})
    assert "| run | what | IS | IS / ceiling | FID | classes covered |" in table
    assert "| `a` | the default | 9.40 | 99% | 18.7 | 10 | 0.000 | 98.2% | 206 |" in table


def test_every_score_of_the_committed_default_run_is_registered():
    """The classifier-space scores of the real default run (metrics/eval.json); the Inception-space ones are
    checked on a real run by tests/stages/test_inception_stages.py."""
    from ganpipe.eval import protocol

    names = protocol.flat_scores(json.loads((ROOT / "metrics" / "eval.json").read_text()))
    assert len(names) > 20 and all(n.startswith(SCORE_PREFIXES) for n in names)
    unknown = sorted(n for n in names if scores.lookup(n) is None)
    assert not unknown, f"scores written but not in results/scores.py: {unknown}"
