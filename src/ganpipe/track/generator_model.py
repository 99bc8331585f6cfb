"""A trained generator as an MLflow pyfunc model, logged as code (MLflow's "models from code").

Loading it unpickles nothing: MLflow runs this file, and `load_context` reads the run's safetensors weights with
ganpipe's own loader (the package travels with the model as code). So a model from a shared store cannot run
code hidden in a pickle, and `mlflow.pyfunc.load_model(<the run's ganpipe.model_uri tag>)` gives a working generator:

    import mlflow, pandas as pd
    G = mlflow.pyfunc.load_model(mlflow.get_run(run_id).data.tags["ganpipe.model_uri"])  # models:/<model id>
    images = G.predict(pd.DataFrame({"seed": range(16), "label": [3] * 16}))  # uint8 [16, C, H, W]

Input: one row per sample, `seed` (its z is drawn from this seed alone, so a sample does not depend on the
rows beside it) and, for a class-conditional generator, `label`. Output: uint8 images [N, C, H, W].
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

WEIGHTS = "generator"  # the artifact key of the safetensors file


class GeneratorModel(PythonModel):
    def load_context(self, context: Any) -> None:
        from ganpipe.gan.sampling import load_generator

        self.generator = load_generator(Path(context.artifacts[WEIGHTS]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> Any:
        import torch

        from ganpipe.errors import ConfigError
        from ganpipe.gan.sampling import render

        rows = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        gen = self.generator
        if "seed" not in rows:
            raise ConfigError("the generator model needs a `seed` column (one row per sample)")
        z = torch.cat([torch.randn(1, gen.model.z_dim, generator=torch.Generator().manual_seed(int(s)))
                       for s in rows["seed"]]) if len(rows) else torch.zeros(0, gen.model.z_dim)
        labels = None
        if gen.model.conditional:
            if "label" not in rows or rows["label"].isna().any():
                raise ConfigError(f"this generator is class-conditional: give every row a `label` in "
                                  f"[0, {gen.num_classes})")
            labels = torch.tensor(rows["label"].astype("int64").to_numpy())
            if len(labels) and (labels.min() < 0 or labels.max() >= gen.num_classes):
                raise ConfigError(f"labels must be in [0, {gen.num_classes}), got {labels.tolist()[:10]}")
        return render(gen.net, z, labels).numpy()


mlflow.models.set_model(GeneratorModel())
