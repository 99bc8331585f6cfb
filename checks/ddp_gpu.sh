#!/usr/bin/env bash
# Distributed-training check for a machine with one NVIDIA GPU and a python3 with torch (CUDA), pytest, numpy,
# pyyaml, safetensors and tqdm (no mlflow or dvc needed): the GPU-marked tests of the training loop and of the
# distributed path (NCCL with 1 process; 2 gloo ranks sharing the GPU), then images/s of the default model on
# the default data (data/prepared) in 1 plain process vs 1 process under torchrun + NCCL + DDP.
# Usage: bash checks/ddp_gpu.sh
set -uo pipefail
export PYTHONPATH="$(pwd)/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'nccl', torch.cuda.nccl.version())"
python3 -m pytest -q -p no:cacheprovider -m gpu -rA tests/stages/test_train.py tests/stages/test_distributed.py 2>&1 | tail -12
python3 benchmarks/ddp_speed.py --device cuda --arms 1x2 1x2d --epochs 6 2>&1 | grep -v Warning
