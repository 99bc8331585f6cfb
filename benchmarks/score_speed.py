"""`ganpipe score` end to end on two folders of image files, and what the real-set cache saves: the first call
embeds both sets, the second (another fake set against the same real folder) embeds only the fake one.

  python benchmarks/score_speed.py --real ../shared/data/cifar10-train-4660 --n 500

The fake set is --n real images with noise added (a stand-in for a generator's output, written as PNG files).
Prints the seconds of each call, images/s, and the machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from ganpipe.data.imagesets import open_set  # noqa: E402
from ganpipe.eval import twosets  # noqa: E402
from ganpipe.pipeline import score  # noqa: E402
from tables import machine  # noqa: E402


def noisy_copies(real: Path, n: int, out: Path, sigma: float) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    out.mkdir()
    for i, f in enumerate(open_set(real).subset(n).files):
        with Image.open(f) as im:
            x = np.asarray(im.convert("RGB")).astype(np.float32)
        Image.fromarray(np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)).save(out / f"{i}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, required=True, help="a folder of real images")
    parser.add_argument("--n", type=int, default=500, help="images of each set (a fixed subset of --real)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GANPIPE_CACHE"] = str(Path(tmp) / "cache")  # a cold cache: the first call embeds both sets
        for sigma in (8, 24):
            noisy_copies(args.real, args.n, Path(tmp) / f"fake{sigma}", sigma)
        print(f"machine: {machine()}; {args.n} real vs {args.n} fake images")
        scoring, plain = [0.0], twosets.score

        def timed(*a):  # the score math alone (FID-infinity's 15 FIDs, KID's 100 subsets, k-NN, copies)
            start = time.perf_counter()
            out = plain(*a)
            scoring[0] = time.perf_counter() - start
            return out

        twosets.score = timed
        for call, sigma in (("first (real set embedded and cached)", 8), ("second (real set from the cache)", 24)):
            start = time.perf_counter()
            result = score.run(score.Request(str(args.real), str(Path(tmp) / f"fake{sigma}"), n=args.n),
                               score.default_evaluate(), None)
            seconds = time.perf_counter() - start
            embedded = 2 * args.n if sigma == 8 else args.n
            print(f"{call}: {seconds:.1f} s in all, of which {scoring[0]:.1f} s the scores and "
                  f"{seconds - scoring[0]:.1f} s reading and embedding {embedded} images; FID "
                  f"{result['scores']['fid']:.1f} (noise sigma {sigma})")


if __name__ == "__main__":
    main()
