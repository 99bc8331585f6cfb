"""`ganpipe report`'s page as text: self-contained, escaped, every score beside its ceiling, mean ± std over a
config's runs. (The page as a browser shows it: tests/e2e/test_pipeline_e2e.py.)"""
from __future__ import annotations

import io
import re

import numpy as np
from PIL import Image

from ganpipe.results import html
from ganpipe.track.reportdata import RunReport, _spread
from ganpipe.track.tracking import RunRecord


def _png() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _report(name: str, fid: float, **params) -> RunReport:
    run = RunRecord("a" * 32, name, "FINISHED", {"train.loss": "hinge", **params},
                    {"git.commit": "0123456789abcdef", "ganpipe.config": "colour", "data.sha256": "d" * 64}, {})
    return RunReport(run, {"eval/fid": fid, "eval_real/fid": 8.0, "eval/inception_fid": 2 * fid},
                     {"loss/d": [(1, 1.0), (2, 0.5)], "loss/g": [(1, 2.0), (2, 1.5)]}, [(0, _png()), (2, _png())],
                     _png())


def test_a_run_page_is_self_contained_escaped_and_shows_each_score_beside_its_ceiling():
    page = html.page("run x", [_report("x", 20.0, note="<script>alert(1)</script>")])
    assert "<script>" not in page and "&lt;script&gt;" in page  # a param value cannot inject markup
    assert not re.findall(r'src="(?!data:image/png;base64,)', page)  # every picture inlined, nothing fetched
    assert page.count("<img") == 4  # two grids, the losses, the closest pairs
    assert "<td>FID</td><td class=n>20.0</td><td class=n>8.0</td>" in page
    assert "<td>FID (Inception)</td><td class=n>40.0</td><td class=n>–</td>" in page
    assert "0123456789abcdef" in page and "d" * 64 in page


def test_a_config_page_gives_mean_std_and_n_then_every_run():
    page = html.page("config colour (3 runs)", [_report(n, f) for n, f in (("a", 10.0), ("b", 12.0), ("c", 14.0))])
    assert "<td>FID</td><td class=n>12.0 ± 2.0</td><td class=n>3</td>" in page
    assert page.count("<section>") == 3


def test_grids_are_spread_over_training_with_the_first_and_the_last():
    assert _spread(list(range(41)), 8) == [0, 6, 11, 17, 23, 29, 34, 40]
    assert _spread([0, 1], 8) == [0, 1]
