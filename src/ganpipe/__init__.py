"""ganpipe: reproducible GAN experiments with DVC stages, a PyTorch GAN core and MLflow tracking."""

__version__ = "0.1.0"
