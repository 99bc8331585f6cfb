"""Scoring images: the evaluation classifier, metric math, the protocol, and what identifies an evaluation."""
from ganpipe.kernels import prime_vml

prime_vml()  # before anything here computes: the first VML call from several threads can be off (kernels.py)
