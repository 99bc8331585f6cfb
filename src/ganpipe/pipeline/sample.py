"""Stage `sample`: sample.n images from the trained generator (sample.from: last or best) with a fixed seed, and a
grid of the first ones.
The samples file records the generator's hash and the sample params, so `evaluate` knows what it scores."""
from __future__ import annotations

import torch

from ganpipe.checkpoint import file_sha256
from ganpipe.data.images import make_grid, save_png
from ganpipe.data.samples import save_samples
from ganpipe.gan import sampling
from ganpipe.params import sizes
from ganpipe.params.config import Config


def run(cfg: Config) -> int:
    torch.set_num_threads(cfg.sample.threads)  # not the machine's count: the bytes must repeat on another machine
    # sample.from: the generator at the end of training, or the best-scored one (train writes both)
    path = cfg.paths.generator_best if cfg.sample.from_ == "best" else cfg.paths.generator
    gen = sampling.load_generator(path)
    c, h, w = gen.shape
    sizes.check_memory("sample.n", cfg.sample.n, c * h * w + 4 * gen.model.z_dim, "the samples and their noise")
    labels = sampling.requested_labels(cfg.sample.n, cfg.sample.classes, gen)
    images = sampling.generate(gen.net, cfg.sample.n, gen.model.z_dim, cfg.sample.seed, cfg.sample.batch_size,
                               labels)
    meta = {"generator_sha256": file_sha256(path), "params": cfg.logged("sample")}
    save_samples(images, cfg.paths.samples, labels, meta)
    save_png(make_grid(images[: cfg.sample.grid_rows**2], cfg.sample.grid_rows), cfg.paths.sample_grid)
    return len(images)
