"""`ganpipe reproduce`'s judgement: one check per logged hash and number, each compared the way its kind of
number allows, and the verdict table.

Exact mode (same machine kind): everything must be identical. Tolerance R (another machine kind, or asked):
- counts (classes covered) must still be equal: one class lost is a different result;
- shares and accuracies (precision, recall, coverage, confident share, class agreement) within R/5 absolute
  (2 points at R = 0.1), so nine points of class agreement never pass;
- IS within R/4 relative (2.5%: losing one class of ten costs IS about 10%);
- FID, KID, density within R relative (KID also within 0.01 absolute, its noise at a few hundred images);
- KL to uniform within R/10 nats (losing one class of ten adds about 0.1);
- spreads (IS over splits, KID over subsets), file hashes and losses are shown but do not decide.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from ganpipe.keys import PRECISION_TAG, SCORE_PREFIXES
from ganpipe.results import scores

DEFAULT_TOLERANCE = 0.1  # across machine kinds; see docs/reproducing.md
KID_FLOOR = 0.01  # absolute slack of KID, whose estimate is that noisy at a few hundred images


@dataclasses.dataclass
class Check:
    name: str
    logged: Any
    reproduced: Any
    result: str  # identical | within ... | differs | missing | differs (not required)
    ok: bool
    gating: bool  # does it decide the verdict?


def allowed(name: str, tolerance: float) -> tuple[str, Any]:
    """(how a score named `name` may differ, as words; test(logged, new) -> bool), or test None: not gating."""
    kind = scores.kind(name)
    relative = lambda r, floor=0.0: lambda a, b: abs(b - a) <= r * max(abs(a), abs(b)) + floor  # noqa: E731
    if kind == "count":
        return "equal (a count)", lambda a, b: a == b
    if kind == "share":
        return f"within {tolerance / 5 * 100:.3g} points", lambda a, b: abs(b - a) <= tolerance / 5 + 1e-12
    if kind == "inception":
        return f"within {tolerance / 4:.3g} relative", relative(tolerance / 4)
    if kind == "nats":
        return f"within {tolerance / 10:.3g} nats", lambda a, b: abs(b - a) <= tolerance / 10 + 1e-12
    if kind == "spread":
        return "not required (a spread)", None
    floor = KID_FLOOR if name.endswith("/kid") else 0.0
    return f"within {tolerance:.0%}" + (f" + {floor}" if floor else ""), relative(tolerance, floor)


def compare(target: Any, hashes: dict[str, str], metrics: dict[str, float], tolerance: float | None) -> list[Check]:
    """One Check per expected hash (target.hashes) and number (target.metrics). tolerance None: everything
    must be identical. Otherwise each eval score must agree as its kind allows (see the module docstring);
    hashes and losses are shown but do not gate."""
    checks = []
    for name, logged in target.hashes.items():
        new = hashes.get(name)
        same = new == logged
        result = "identical" if same else "missing" if new is None else "differs"
        gating = tolerance is None or new is None
        checks.append(Check(name, logged, new, result if same or gating else "differs (not required)",
                            same or not gating, gating))
    for name, logged in sorted(target.metrics.items()):
        new = metrics.get(name)
        if new is None:
            checks.append(Check(name, logged, None, "missing", False, True))
        elif new == logged:
            checks.append(Check(name, logged, new, "identical", True, True))
        elif tolerance is None:
            checks.append(Check(name, logged, new, "differs", False, True))
        elif not name.startswith(SCORE_PREFIXES):
            checks.append(Check(name, logged, new, "differs (not required)", True, False))
        else:
            words, test = allowed(name, tolerance)
            if test is None:
                checks.append(Check(name, logged, new, f"differs ({words})", True, False))
            else:
                close = bool(test(logged, new))
                checks.append(Check(name, logged, new, words if close else f"differs (allowed: {words})", close,
                                    True))
    return checks


def precision_row(target: Any, local: dict[str, str]) -> Check:
    """What the target trained in and what the reproduction trains in here (train.precision: auto picks per
    machine): shown, never gating; a difference already makes the mode a tolerance (expected_mode)."""
    logged = (target.machine or {}).get(PRECISION_TAG)
    here = local.get(PRECISION_TAG)
    result = "identical" if logged == here else "not recorded" if logged is None else "differs (another machine kind)"
    return Check("precision (train, resolved)", logged, here, result, True, False)


def expected_mode(target: Any, local: dict[str, str], tolerance: float | None) -> tuple[float | None, str]:
    """(tolerance to use, why): exact when the logged machine matches this one or was not recorded."""
    if tolerance is not None:
        return tolerance, f"tolerance {tolerance:.0%} as asked (each score by its kind)"
    if target.machine is None:
        return None, "exact (the machine that made it was not recorded; pass --tolerance if it was another kind)"
    # only what the run recorded: a run from before a tag existed (env.bf16, the resolved precision) is judged
    # by the tags it has
    differ = [f"{k}: {target.machine[k]} -> {v}" for k, v in local.items()
              if k in target.machine and target.machine[k] != v]
    if differ:
        return DEFAULT_TOLERANCE, (f"tolerance {DEFAULT_TOLERANCE:.0%} (each score by its kind): another machine "
                                   f"kind ({'; '.join(differ)})")
    if target.machine.get("train.device") == "cuda" and (target.params or {}).get("train", {}).get(
            "deterministic") is False:
        return DEFAULT_TOLERANCE, (f"tolerance {DEFAULT_TOLERANCE:.0%} (each score by its kind): it trained on a GPU "
                                   f"with train.deterministic: false, whose kernels do not repeat bitwise")
    return None, "exact: same torch build, processor, device and precision, same params (thread count included)"


def verdict_table(checks: list, label: str, mode: str) -> tuple[str, bool]:
    """`ganpipe reproduce`'s report: one row per check (hashes shortened, numbers to 10 digits) and a verdict
    line; True when every gating check passed."""
    def show(value: object) -> str:
        if value is None:
            return "-"
        return f"{value:.10g}" if isinstance(value, float) else str(value)[:16]

    rows = pd.DataFrame([(c.name, show(c.logged), show(c.reproduced), c.result) for c in checks],
                        columns=["check", "logged", "reproduced", "result"])
    gating = [c for c in checks if c.gating]
    failed = [c for c in gating if not c.ok]
    ok = bool(gating) and not failed
    verdict = (f"REPRODUCED: {len(gating)} checks pass" if ok else
               f"NOT REPRODUCED: {len(failed)} of {len(gating)} checks fail ({', '.join(c.name for c in failed[:5])})"
               if gating else "NOT REPRODUCED: nothing was recorded to compare with")
    return f"{label}\nexpected: {mode}\n\n{rows.to_markdown(index=False)}\n\n{verdict}", ok
