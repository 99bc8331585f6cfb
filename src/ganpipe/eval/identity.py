"""What identifies an evaluation: every input its scores depend on. Scores are attached to a run only when the
inputs that run logged are exactly these, so a number in MLflow always belongs to the params shown beside it.

The inputs: the generator (its file hash) or, for samples made elsewhere, the samples file; the sample params
that drew the samples; the evaluate params; the classifier (its file hash and the params it was trained with);
the data (content hash); the feature network; the scoring code. Two evaluations with the same key compute the
same numbers on the same machine kind.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

from ganpipe.files import source_sha256
from ganpipe.keys import (BEST_GENERATOR_TAG, CLASSIFIER_TAG, DATA_TAG, GENERATOR_TAG, PROVENANCE_TAG, SAMPLES_TAG,
                          SCORE_PREFIXES)

FEATURES = "classifier"  # the feature network the scores are computed in
SCORING_CODE = ("eval", "data/images.py")  # the code between a samples file and its scores


@dataclasses.dataclass(frozen=True)
class Provenance:
    generator_sha256: str | None  # None for samples made elsewhere
    samples_sha256: str | None  # only for samples made elsewhere (pipeline samples are generator + params)
    data_sha256: str
    classifier_sha256: str
    params: dict[str, str]  # sample.*, evaluate.* and classifier.* exactly as MLflow logs params
    features: str = FEATURES
    code_sha256: str = dataclasses.field(default_factory=lambda: scoring_code_sha256())  # this checkout's code

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True).encode()).hexdigest()

    def tags(self) -> dict[str, str]:
        """What a run holding these scores is tagged with."""
        tags = {PROVENANCE_TAG: self.key, CLASSIFIER_TAG: self.classifier_sha256, DATA_TAG: self.data_sha256,
                "eval.features": self.features, "eval.code_sha256": self.code_sha256}
        if self.generator_sha256:
            tags[GENERATOR_TAG] = self.generator_sha256
        if self.samples_sha256:
            tags[SAMPLES_TAG] = self.samples_sha256
        return tags


def scoring_code_sha256() -> str:
    return source_sha256(*SCORING_CODE)


def scores_of(metrics: dict[str, float]) -> dict[str, float]:
    """The eval/* and eval_real/* metrics of a run."""
    return {k: v for k, v in metrics.items() if k.startswith(SCORE_PREFIXES)}


def mismatch(prov: Provenance, params: dict[str, str], tags: dict[str, str], metrics: dict[str, float]) -> str | None:
    """Why these scores may not land on a run that logged `params`, `tags`, `metrics` (None: they may). They
    may only on a run that trained this generator on this data under these very sample, evaluate and
    classifier params, and that holds no scores yet."""
    if prov.generator_sha256 is None or prov.generator_sha256 not in (tags.get(GENERATOR_TAG),
                                                                      tags.get(BEST_GENERATOR_TAG)):
        return "it did not train this generator"
    if tags.get(DATA_TAG) != prov.data_sha256:
        return "it trained on other data"
    for key, value in sorted(prov.params.items()):
        if params.get(key) != value:
            return f"it logged {key}={params.get(key)}, these scores used {key}={value}"
    if tags.get(PROVENANCE_TAG) not in (None, prov.key):
        return "it already holds the scores of another evaluation"
    if scores_of(metrics):
        return "it already holds scores"
    return None
