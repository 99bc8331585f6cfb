"""Augmentation of every image D sees: DiffAugment (diffaugment.py), or ADA's pipeline (ada.py) with its strength
p fixed, scheduled or adapted to D's overfitting (strength.py)."""
from ganpipe.gan.augment.diffaugment import cutout, diff_augment, translation  # noqa: F401
