"""Scoring images: the evaluation classifier, metric math, the protocol, and what identifies an evaluation."""
