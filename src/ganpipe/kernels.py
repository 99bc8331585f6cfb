"""What the CPU kernels under torch do that a reproducible pipeline must work around.

On CPUs, torch computes tanh, exp, log, sqrt, erf and some more through MKL's vector math library (VML). The
first VML call of a process, made from several threads at once, can give one thread a result slightly off the
steady one: with torch 2.14.1 on a 2-core Intel Xeon with AMX, a generator's final tanh on two threads differed
from the process's second tanh of the same input in 4 of 120 fresh processes, and in none of 120 once VML had
been called from one thread first (`python checks/first_call.py`). In the pipeline the default generator's
tanh was up to 1e-5 off on the first thread's half of the first batch, so samples differed by one grey level
in a few pixels, and so did every score of them: a fresh clone did not rebuild the same bytes.

So the first VML call of each function is made here, from one thread, on one element: `prime_vml()` runs when
ganpipe's `gan` or `eval` package is imported, before any of their networks or metrics compute.
"""
from __future__ import annotations

import torch

# the torch functions ATen's cpu/vml.h may hand to MKL's VML for float and double CPU tensors (one it does not
# costs nothing to prime)
VML_FUNCTIONS = ("acos", "asin", "atan", "cos", "erf", "erfc", "erfinv", "exp", "expm1", "log", "log10", "log1p",
                 "log2", "sin", "sqrt", "tan", "tanh", "trunc")
_primed = False


def prime_vml() -> None:
    """Call each VML function once from this thread (a single element never goes parallel); idempotent."""
    global _primed
    if _primed:
        return
    for dtype in (torch.float32, torch.float64):
        x = torch.full((1,), 0.5, dtype=dtype)
        for name in VML_FUNCTIONS:
            getattr(torch, name)(x)
    _primed = True
