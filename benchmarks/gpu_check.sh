#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and a python3 that has torch (CUDA), pytest, numpy, pillow,
# pyyaml, safetensors, tqdm and mlxtend. Runs the GPU-marked tests, the whole pipeline on the GPU (tracking
# off, so mlflow is not needed there) and the speed benchmark on the GPU.
# Usage: bash benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
root=$(pwd)
out=$(mkdir -p "${1:?OUT_DIR}" && cd "$1" && pwd)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest -q -p no:cacheprovider -m gpu -rA tests/test_train.py 2>&1 | tail -6
work=$(mktemp -d)
cp -r stages configs params.yaml "$work"/
(
  cd "$work"
  sed -i 's/^  enabled: true/  enabled: false/; s/^  device: auto /  device: cuda /' params.yaml
  grep -n "device:\|enabled:" params.yaml
  for s in prepare train_classifier train sample evaluate; do
    t0=$(date +%s%N)
    python3 stages/$s.py > "$out/$s.log" 2>&1 || { echo "stage $s FAILED"; tail -20 "$out/$s.log"; }
    echo "stage $s: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  done
  cp metrics/eval.json "$out/eval.json"; cp plots/sample_grid.png "$out/sample_grid.png"
  python3 -c "import json; e = json.load(open('metrics/eval.json')); f = e['fake']; \
print({k: round(f[k], 3) for k in ('is', 'fid', 'classes_covered', 'kl_uniform', 'class_agreement')})"
)
python3 benchmarks/arch_speed.py --device cuda --steps 300 2>&1
