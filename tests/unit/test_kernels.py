"""MKL's VML is primed from one thread before anything of ganpipe computes (src/ganpipe/kernels.py): importing
the `gan` or the `eval` package calls every VML function once, on one element, from the importing thread.
(Whether that removes the first-call difference is counted by `python checks/first_call.py`; a fresh clone
rebuilding the same bytes is tests/e2e/test_pipeline_e2e.py.)"""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import torch

from ganpipe import kernels


@pytest.mark.parametrize("module", ["ganpipe.gan.sampling", "ganpipe.eval.classifier", "ganpipe.eval.metrics"])
def test_importing_a_computing_package_primes_vml_first(module):
    code = f"import {module}, ganpipe.kernels as k; print(k._primed)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


def test_every_vml_function_is_called_once_per_dtype_on_one_element_from_this_thread(monkeypatch):
    calls = []
    for name in kernels.VML_FUNCTIONS:
        real = getattr(torch, name)
        monkeypatch.setattr(torch, name, lambda x, name=name, real=real: calls.append(
            (name, x.dtype, x.numel(), threading.get_ident())) or real(x))
    monkeypatch.setattr(kernels, "_primed", False)
    kernels.prime_vml()
    kernels.prime_vml()  # idempotent
    me = threading.get_ident()
    assert sorted(calls, key=str) == sorted(((n, d, 1, me) for n in kernels.VML_FUNCTIONS
                                             for d in (torch.float32, torch.float64)), key=str)
