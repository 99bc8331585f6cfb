"""CIFAR-10 / CIFAR-100 training sets from their python-format batch files.

torchvision downloads them (and checks their MD5s) when data.download is on and they are missing. Reading is
done here: torchvision's reader refuses any file whose MD5 differs from the release (a re-packed or test-made
file) and unpickles with the full pickle machinery, which can run any code a file names. This reader accepts
only the classes a CIFAR batch contains (numpy arrays, lists, strings), so a hostile file fails to load instead.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ganpipe.errors import DataError

# dataset -> (torchvision class, folder inside root, training files, label key)
LAYOUT = {
    "cifar10": ("CIFAR10", "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "labels"),
    "cifar100": ("CIFAR100", "cifar-100-python", ["train"], "fine_labels"),
}
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def _download(name: str, root: Path) -> None:
    import torchvision

    cls = getattr(torchvision.datasets, LAYOUT[name][0])
    try:
        cls(str(root), train=True, download=True)
    except Exception as exc:  # noqa: BLE001  torchvision raises URLError, RuntimeError, OSError...
        raise DataError(f"dataset {name!r} is not in {root / LAYOUT[name][1]} and could not be downloaded "
                        f"({type(exc).__name__}: {str(exc)[:200]}). Fix: copy the extracted python-format files "
                        f"into that folder, or set data.root to a folder that holds {LAYOUT[name][1]}/") from None


def read(name: str, root: Path, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [N, 3, 32, 32], int64 labels [N]) of the training set."""
    _, folder, files, label_key = LAYOUT[name]
    paths = [root / folder / f for f in files]
    missing = [p for p in paths if not p.is_file()]
    if missing and download:
        _download(name, root)
        missing = [p for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"dataset {name!r}: {missing[0]} not found (offline, or data.download: false). Fix: copy "
                        f"the python-format CIFAR files into {root / folder}, set data.root to a folder holding "
                        f"{folder}/, or set data.download: true when online")
    images, labels = [], []
    for path in paths:
        try:
            with open(path, "rb") as f:
                entry = _ArraysOnly(f, encoding="latin1").load()
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            target = np.asarray(entry[label_key], dtype=np.int64)
            if len(target) != len(data):
                raise ValueError(f"{len(data)} images but {len(target)} labels")
        except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise DataError(f"{path} is not a CIFAR python-format batch ({type(exc).__name__}: {exc}); replace it "
                            f"with the file from the CIFAR release") from None
        images.append(data)
        labels.append(target)
    return np.concatenate(images), np.concatenate(labels)
