"""benchmarks/cpu_profile.py's bookkeeping: which family a profiler event belongs to, and the framework's share
as the wall time no op holds (the profile itself runs only as a benchmark)."""
from __future__ import annotations

import sys

import pytest

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import cpu_profile  # noqa: E402


@pytest.mark.parametrize("op, family", [
    ("aten::convolution_backward", "conv backward"),
    ("autograd::engine::evaluate_function: ConvolutionBackward0", "conv backward"),
    ("aten::mkldnn_convolution", "conv forward"),
    ("aten::addmv_", "matmul"), ("AddmmBackward0", "matmul"), ("aten::mm", "matmul"),
    ("aten::native_batch_norm_backward", "batch norm"),
    ("aten::leaky_relu_backward", "activations"),
    ("aten::_fused_adam_", "optimiser"),
    ("aten::index_select", "copies and indexing"), ("aten::copy_", "copies and indexing"),
    ("aten::mul", "other elementwise"), ("MulBackward0", "other elementwise"),
    ("aten::empty", "other ops"),
])
def test_each_op_lands_in_its_family(op, family):
    assert cpu_profile.family(op) == family


def test_shares_sum_ops_per_family_and_leave_the_rest_to_the_framework():
    got = cpu_profile.shares({"aten::convolution_backward": 30.0, "ConvolutionBackward0": 2.0, "aten::mm": 5.0,
                              "aten::empty": 1.0}, wall_us=50.0)
    assert got == {"conv backward": 32.0, "matmul": 5.0, "other ops": 1.0, cpu_profile.FRAMEWORK: 12.0}
    assert cpu_profile.shares({"aten::mm": 60.0}, wall_us=50.0)[cpu_profile.FRAMEWORK] == 0.0  # never negative
