"""The validation tier's shared fixtures: the Inception network and the features of real and degraded digits,
computed once per session and used by every file of the tier."""
from __future__ import annotations

import pytest
import torch

from ganpipe.eval import inception
from helpers.digits import blurred, digits, noisy


@pytest.fixture(autouse=True)
def _fixed_threads():
    """Overrides the suite's one thread: this tier checks scores within tolerances, not bytes, and its cost is
    Inception on a few thousand images, which two threads nearly halve."""
    torch.set_num_threads(2)
    yield


@pytest.fixture(scope="session")
def net() -> inception.FeatureNet:
    return inception.FeatureNet()


@pytest.fixture(scope="session")
def feats(net):
    """Inception features of real digits and of degraded versions, computed once (2 threads: ~2 minutes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    images, labels = digits()
    ref, pool = images[:200], images[200:700]  # the reference ("training") set and other real digits
    sets = {"ref": ref, "pool": pool, "ref_noisy": noisy(ref[:100], 2.0, seed=1)}
    for name, degrade in (("noise", lambda x, s: noisy(x, s)), ("blur", lambda x, s: blurred(x, s))):
        for level, strength in enumerate({"noise": (24.0, 64.0), "blur": (3, 5)}[name], 1):
            sets[f"{name}{level}"] = degrade(pool[:200], strength)
    out = {name: inception.features(net, x, 16, progress=False) for name, x in sets.items()}
    torch.set_num_threads(threads)
    return out, labels[200:700]
