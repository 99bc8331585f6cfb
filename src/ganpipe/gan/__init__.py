"""The GAN: G and D families, losses, augmentation, EMA, the training loop, resume state, sampling, devices."""
