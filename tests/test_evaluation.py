import dataclasses

import pytest
import torch

from ganpipe import config, evaluation


def test_split_is_does_not_depend_on_the_order_of_the_set(default_params):
    cfg = dataclasses.replace(config.from_dict(default_params).evaluate, is_splits=10)
    probs = torch.eye(10, dtype=torch.float64).repeat_interleave(50, dim=0)  # stored in class order
    feats = torch.randn(500, 4, dtype=torch.float64)
    scores = evaluation.scores(probs, feats, feats, cfg)
    assert scores["is"] == pytest.approx(10.0)
    assert scores["is_split_mean"] == pytest.approx(10.0, rel=0.1)
    assert scores["classes_covered"] == 10 and scores["kl_uniform"] == pytest.approx(0.0)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-8)
