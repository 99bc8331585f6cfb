"""An open MLflow run as a stage logs to it. Every call is timed (the overhead of tracking is reported),
retried through short outages of the store (failures.py), and idempotent, so that neither a retry nor a
resumed training logs an epoch's metrics or images twice:
- metrics carry the timestamp of their first attempt: the store drops an identical row sent again;
- images go up under names fixed at their first attempt, so a second upload overwrites the first; one larger
  than the UI shows well (a grid of 128 or 256 px samples) goes up downsampled, its original in images_full/;
- a continued run first reads which (metric, step) and (image, step) it has and skips those;
- the generator model is found by (run, name) before one is made, so it is one entry (logged_model.py).
"""
from __future__ import annotations

import contextlib
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from ganpipe.console import note
from ganpipe.keys import MODEL_URI_TAG
from ganpipe.track import logged_model
from ganpipe.track.failures import retry_budget, retrying

T = TypeVar("T")
IMAGES = "images"  # MLflow's folder of stepped images; the UI reads key and step from the file names
FULL_IMAGES = "images_full"  # the full-size originals of stepped images shown downsampled
UI_SIDE = 1024  # the largest side of a stepped image as the UI shows it: a 10x10 grid of 256 px images is 2,580
IMAGE_NAME = re.compile(r"(?P<key>.+)\+step\+(?P<step>\d+)\+timestamp\+\d+\+[0-9a-f-]+")


def fit_for_ui(image):
    """A PIL image whose larger side is at most UI_SIDE (box-filtered, so grids of many samples stay legible);
    the image itself when it already fits."""
    from PIL import Image

    side = max(image.size)
    if side <= UI_SIDE:
        return image
    scale = UI_SIDE / side
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.BOX)


class NullRun:
    """Tracking switched off: every call is accepted and dropped."""

    run_id: str | None = None
    seconds = 0.0  # time spent inside tracking calls

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None: ...
    def log_image(self, step: int, key: str, image: np.ndarray) -> None: ...
    def log_artifact(self, path: Path, folder: str | None = None) -> None: ...
    def log_generator(self, weights: Path, shape: tuple[int, ...]) -> str | None: ...  # its models:/ URI
    def set_tags(self, tags: dict[str, str]) -> None: ...


def image_files(names: list[str]) -> dict[tuple[str, int], tuple[str, bool]]:
    """(key, step) -> (base name, complete) of the stepped images in a run's images/ folder. Complete: both the
    .png and MLflow's +compressed.webp thumbnail are there (an upload can stop between the two)."""
    found: dict[tuple[str, int], set[str]] = {}
    bases: dict[tuple[str, int], str] = {}
    for name in names:
        base, _, ext = name.rpartition(".")
        base = base.removesuffix("+compressed")
        match = IMAGE_NAME.fullmatch(base)
        if match:
            at = (match["key"].replace("~", "/"), int(match["step"]))
            found.setdefault(at, set()).add(name.removeprefix(base))
            bases.setdefault(at, base)
    return {at: (bases[at], {".png", "+compressed.webp"} <= found[at]) for at in found}


class MlflowRun(NullRun):
    """An active MLflow run (the fluent run that tracking.start_run opened)."""

    def __init__(self, run_id: str, continued: bool = False):
        from mlflow.tracking import MlflowClient

        self.run_id = run_id
        self.seconds = 0.0
        self.budget = retry_budget()
        self.client = MlflowClient()
        self.has_metric: set[tuple[str, int]] = set()
        self.image_names: dict[tuple[str, int], tuple[str, bool]] = {}
        if continued:
            self._call("what the run already has", self._read_logged)

    def _read_logged(self) -> None:
        run = self.client.get_run(self.run_id)
        self.has_metric = {(key, m.step) for key in run.data.metrics
                           for m in self.client.get_metric_history(self.run_id, key)}
        self.image_names = image_files([f.path.rpartition("/")[2] for f in self.client.list_artifacts(self.run_id, IMAGES)])

    def _call(self, what: str, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            return retrying(what, call, self.budget)
        finally:
            self.seconds += time.perf_counter() - start

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        rows = [Metric(k, float(v), now, step) for k, v in metrics.items() if (k, step) not in self.has_metric]
        if rows:
            self._call(f"the metrics of step {step}", lambda: self.client.log_batch(self.run_id, metrics=rows))
            self.has_metric.update((k, step) for k in metrics)

    def log_image(self, step: int, key: str, image: np.ndarray) -> None:
        """A keyed, stepped image (the UI compares them across runs), as MLflow's log_image names it, with the
        name fixed before the first attempt (MLflow draws a new uuid per call, so its retry would add one)."""
        from mlflow.tracking.multimedia import compress_image_size, convert_to_pil_image
        from mlflow.utils.mlflow_tags import MLFLOW_LOGGED_IMAGES

        base, complete = self.image_names.get((key, step), ("", False))
        if complete:
            return
        if not base:  # a partly uploaded image (found when continuing) is completed under its own name
            base = f"{key.replace('/', '~')}+step+{step}+timestamp+{int(time.time() * 1000)}+{uuid.uuid4()}"
        full = convert_to_pil_image(image)
        pil = fit_for_ui(full)
        with tempfile.TemporaryDirectory() as tmp:
            if pil is not full:  # the full-size grid is kept beside, under a fixed name (a retry overwrites it)
                full.save(Path(tmp) / f"{key.replace('/', '~')}_step{step:06d}.png")
                self._call(f"full-size image {key} of step {step}",
                           lambda: self.client.log_artifacts(self.run_id, tmp, FULL_IMAGES))
                (Path(tmp) / f"{key.replace('/', '~')}_step{step:06d}.png").unlink()
            pil.save(Path(tmp) / f"{base}.png")
            compress_image_size(pil).save(Path(tmp) / f"{base}+compressed.webp")
            self._call(f"image {key} of step {step}", lambda: self.client.log_artifacts(self.run_id, tmp, IMAGES))
        if not self.image_names:  # the first image of the run: the tag the UI looks for
            self._call("a tag", lambda: self.client.set_tag(self.run_id, MLFLOW_LOGGED_IMAGES, "True"))
        self.image_names[(key, step)] = (base, True)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self._call(f"{path.name}", lambda: self.client.log_artifact(self.run_id, str(path), folder))

    def log_generator(self, weights: Path, shape: tuple[int, ...]) -> str:
        """The generator as an MLflow model, once per run however often retried or resumed (logged_model.py).
        Returns its models:/ URI, also tagged on the run, so a user can load the generator from the run alone."""
        uri = logged_model.log_generator(self.client, self._call, self.run_id, weights, shape)
        self.set_tags({MODEL_URI_TAG: uri})
        return uri

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._call("tags", lambda: self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()]))

    def end(self, status: str) -> None:
        """FINISHED, waiting for the store like any call."""
        import mlflow

        self._call("the run's end", lambda: self.client.set_terminated(self.run_id, status))
        with contextlib.suppress(Exception):  # leaves mlflow's fluent run (re-sends the same status)
            mlflow.end_run(status)

    @staticmethod
    def end_by_id(run_id: str, status: str, uri: str | None = None) -> None:
        """FAILED or KILLED: one try, noted if it fails. The error that ended the run is what the user must see,
        not a second one about the store."""
        import mlflow
        from mlflow.tracking import MlflowClient

        try:
            MlflowClient(uri).set_terminated(run_id, status)
        except Exception as exc:  # noqa: BLE001
            note(f"note: could not mark MLflow run {run_id} {status} ({type(exc).__name__})")
        if (active := mlflow.active_run()) is not None and active.info.run_id == run_id:
            with contextlib.suppress(Exception):
                mlflow.end_run(status)
