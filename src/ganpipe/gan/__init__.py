"""The GAN: G and D families, losses, augmentation, EMA, the training loop, resume state, sampling, devices."""
from ganpipe.kernels import prime_vml

prime_vml()  # before anything here computes: the first VML call from several threads can be off (kernels.py)
