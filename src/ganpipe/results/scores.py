"""The score registry: every score an evaluation writes, once, with the words and number format people see and
the kind of number it is. The `ganpipe evaluate` table, the results report and `ganpipe reproduce --tolerance`
read it; tests/unit/test_scores.py checks that every score the protocol writes is registered.

A score's metric name is eval/<key> for the samples and eval_real/<key> for the real-data ceiling, with
inception_<key> for the same score in Inception-V3 space (eval/inception_fid)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ganpipe.keys import INCEPTION_PREFIX, SCORE_PREFIXES

# How `ganpipe reproduce --tolerance R` compares a kind of number (results/verdict.py): counts exactly, shares in
# absolute points, Inception scores and distances relatively, nats absolutely, spreads not at all.
KINDS = ("count", "share", "inception", "distance", "nats", "spread")


@dataclass(frozen=True)
class Score:
    key: str    # the metric name without its eval/ or eval_real/ prefix
    label: str  # how tables name it
    kind: str   # one of KINDS
    fmt: str    # how tables show it ("%" formats show a share as a percentage)


SCORES = (
    Score("is", "IS", "inception", "{:.2f}"),
    Score("is_split_mean", "IS split mean", "inception", "{:.2f}"),
    Score("is_split_std", "IS split std", "spread", "{:.3f}"),
    Score("fid", "FID", "distance", "{:.1f}"),
    Score("fid_infinity", "FID∞", "distance", "{:.1f}"),  # FID extrapolated to infinitely many samples
    Score("kid", "KID", "distance", "{:.4f}"),
    Score("kid_std", "KID std", "spread", "{:.4f}"),
    Score("precision", "precision", "share", "{:.3f}"),
    Score("recall", "recall", "share", "{:.3f}"),
    Score("density", "density", "distance", "{:.3f}"),
    Score("coverage", "coverage", "share", "{:.3f}"),
    Score("classes_covered", "classes covered", "count", "{:.0f}"),
    Score("kl_uniform", "KL(hist ‖ uniform)", "nats", "{:.3f}"),
    Score("confident_share", "confident share", "share", "{:.1%}"),
    Score("class_agreement", "class agreement", "share", "{:.1%}"),
    Score("copy_share", "copy share", "share", "{:.1%}"),
    Score("copy_threshold", "copy threshold", "distance", "{:.3f}"),
    Score("copy_ct", "copying C_T", "distance", "{:.2f}"),
    Score("copy_ct_cells", "copying C_T cells", "count", "{:.0f}"),
)
BY_KEY = {s.key: s for s in SCORES}
assert all(s.kind in KINDS for s in SCORES)

# what the `ganpipe evaluate` table shows in each feature space (the rest stays in the JSON and on the run)
CLASSIFIER_TABLE = ("is", "is_split_mean", "fid", "kid", "precision", "recall", "density", "coverage",
                    "classes_covered", "kl_uniform", "confident_share", "class_agreement", "copy_share", "copy_ct")
INCEPTION_TABLE = ("fid", "kid", "precision", "recall", "density", "coverage", "copy_share", "copy_ct")


def lookup(name: str) -> Score | None:
    """The score of a metric name (eval/fid, eval_real/inception_kid, fid), or None for one not registered."""
    for prefix in SCORE_PREFIXES:
        name = name.removeprefix(prefix)
    return BY_KEY.get(name.removeprefix(INCEPTION_PREFIX))


def kind(name: str) -> str:
    """The kind of a metric; an unregistered one is compared as a distance (relatively), the cautious default."""
    score = lookup(name)
    return score.kind if score else "distance"


def shown(name: str, value: object) -> str:
    """A value as tables show it: the registry's format, "–" for a missing one."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    score = lookup(name)
    return score.fmt.format(value) if score else f"{value:.4g}"
