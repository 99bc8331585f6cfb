#!/usr/bin/env bash
# The GPU check: everything issues 21 and 31 measure on a lent GPU, in two device calls of under 10 minutes each
# (`speed`, then `quality`; a call's parts are its arguments). Each part
# runs under its own time limit, so one that hangs or overruns costs only its share, and all text goes to
# OUT/check.log (the quality part's samples to OUT/quality/, one file per arm: at most the 8 files a device
# call brings back).
#
#   here, first:  python benchmarks/gpu_carry.py --data ../shared/data/cifar10-train-4660    (writes .gpu/)
#   on the GPU:   bash benchmarks/gpu_check.sh "$OUT" speed                 (device run with carry [".gpu"])
#                 bash benchmarks/gpu_check.sh "$OUT" quality stream        (a second device run, the same carry)
#   here, after:  python benchmarks/gpu_quality.py score --root ../shared/data/cifar10-train-4660 \
#                   --out FETCHED/quality --n 3000
# PARTs (default: speed; speed = environment tests pipeline loop_speed r3gan_speed inception repeatability):
# speed:   the GPU-marked tests (no host syncs in a step, compile, mixed precision, bitwise repeats, DDP); the
#          colour config's prepare and train stages (tracking off); the loop benchmark with its profile (ganpipe
#          vs pytorch/examples, batch 64 and 256, eager and CUDA graphs); R3GAN's CIFAR-10 preset in fp32 and bf16,
#          eager and CUDA graphs; Inception-V3 features (speed, and the GPU's features against the CPU's); what
#          repeats bitwise.
# quality: the colour DCGAN, the ResNet, the small R3GAN and the peer, 30 and 60 s each of training on the GPU,
#          3,000 samples each.
# stream:  training streamed from a memory-mapped split against the split in GPU memory, 128 px
#          (benchmarks/stream_speed.py).
# The GPU machine has torch, numpy, pillow, safetensors, tqdm, pyyaml and pytest, but no mlflow, dvc or mlxtend.
# Try it on a CPU first: GPU_CHECK_TINY=1 bash benchmarks/gpu_check.sh /tmp/gc   (tiny sizes, those three
# packages hidden; the GPU tests skip).
set -uo pipefail
root=$(pwd)
out=$(mkdir -p "${1:?OUT_DIR}" && cd "$1" && pwd)
shift
parts=" ${*:-speed} "
parts=${parts/ speed / environment tests pipeline loop_speed r3gan_speed inception repeatability }
want() { [[ "$parts" == *" $1 "* ]]; }
carry=${GPU_CARRY:-$root/.gpu}
tiny=${GPU_CHECK_TINY:-0}
log=$out/check.log
export PYTHONPATH="$root/src:$root/tests${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TQDM_DISABLE=1
[ -f "$carry/inception-fp16.pt" ] || { echo "no $carry: run python benchmarks/gpu_carry.py first"; exit 2; }
data=$carry/data
if [ "$tiny" = 1 ]; then  # a few images per class, and the packages the GPU machine lacks made unimportable
  data=$(mktemp -d)
  for c in "$carry"/data/*/; do mkdir -p "$data/$(basename "$c")"; ls "$c" | head -30 | sed "s#^#$c#" | xargs cp -t "$data/$(basename "$c")"; done
  hide=$(mktemp -d)
  for m in mlflow dvc mlxtend; do mkdir -p "$hide/$m"; echo "raise ImportError('$m is not on the GPU machine')" > "$hide/$m/__init__.py"; done
  export PYTHONPATH="$hide:$PYTHONPATH"
fi

part() {  # part NAME LIMIT_S COMMAND...: run under the limit (doubled for a tiny run on a CPU), output into the log
  local name=$1 limit=$(( $2 * (tiny + 1) )) t0 rc
  shift 2
  t0=$(date +%s)
  echo "== $name (limit ${limit} s)" | tee -a "$log"
  timeout -k 10 "$limit" "$@" 2>&1 | grep --line-buffered -v -e Warning -e "^USDT" -e "warnings.warn" | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc$([ "$rc" = 124 ] && echo ' (time limit)'), $(( $(date +%s) - t0 )) s" | tee -a "$log"
}

pipeline() {  # the colour config's prepare and train stages on the carried folder, tracking off
  local work
  work=$(mktemp -d)
  cp -r stages configs params.yaml "$work"/
  (cd "$work" && python3 - "$data" "$tiny" <<'PY'
import sys, yaml
from pathlib import Path
from ganpipe.params import overlays, overrides
tree = overlays.merge(yaml.safe_load(open("params.yaml")), overlays.read(Path("configs/colour.yaml")))
sets = [f"data.root={sys.argv[1]}", "tracking.enabled=false"] + (["train.epochs=1", "data.holdout_fraction=0.5"] if sys.argv[2] == "1" else [])
open("params.yaml", "w").write(yaml.safe_dump(overrides.apply_overrides(tree, sets), sort_keys=False))
PY
  ) || return 1
  for s in prepare train; do
    (cd "$work" && python3 "stages/$s.py") || return 1
  done
}

if [ "$tiny" = 1 ]; then steps=3; warm=1; batches=64; modes=none; n=64; per=64; rsteps=3; rmodes=none
else steps=200; warm=25; batches="64 256"; modes="none reduce-overhead"; n=50000; per=2048; rsteps=30
  rmodes="none reduce-overhead"; fi
export -f pipeline && export data tiny
want environment && part environment 20 bash -c 'nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; nproc
  python3 -c "import torch; print(\"torch\", torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else \"no GPU\")"'
want tests && part tests 75 python3 -m pytest -p no:cacheprovider -m gpu -v -rA --continue-on-collection-errors \
  tests/unit/test_step.py tests/stages/test_train.py tests/stages/test_distributed.py
want pipeline && part pipeline 50 bash -c pipeline
want loop_speed && part loop_speed 110 python3 benchmarks/loop_speed.py --data "$data" --steps $steps --warm $warm \
  --batch $batches --compile $modes --top 6
# R3GAN's CIFAR-10 preset (20M weights per network, its schedules and ADA from p = 0) at both batch sizes
# (tiny: batch 8 and one profiled step: the preset's activations at batch 64 outgrow a small CPU machine's memory,
# and a step of it takes seconds there)
want r3gan_speed && part r3gan_speed 120 python3 benchmarks/loop_speed.py --data "$data" --arms ganpipe-r3gan-cifar \
  --steps $(( steps / 4 + 1 )) --warm $(( warm / 2 + 1 )) --batch $([ "$tiny" = 1 ] && echo 8 || echo $batches) \
  --profile $([ "$tiny" = 1 ] && echo 1 || echo 10) --precision fp32 bf16 --compile $modes --top 3
want inception && part inception 60 python3 benchmarks/inception_speed.py \
  --device "$([ "$tiny" = 1 ] && echo cpu || echo cuda)" --n $n --per-rate $per --batches 64 256 \
  --net "$carry/inception-fp16.pt" --check "$carry/inception-check.safetensors"
want repeatability && part repeatability 50 python3 benchmarks/gpu_repeat.py --steps $rsteps --compile $rmodes
if want quality; then
  if [ "$tiny" = 1 ]; then secs="2 4"; qn=50; else secs="30 60"; qn=2500; fi  # 2 x 2,500 images: < 16 MiB a file
  part quality 290 python3 benchmarks/gpu_quality.py train --root "$data" --out "$out/quality" --seconds $secs --n $qn \
    --arms ganpipe-dcgan ganpipe-resnet ganpipe-r3gan-small peer-dcgan
fi
# training streamed from disk against in memory at 128 px (issue 32), on the GPU: the feed has least time to hide
want stream && part stream 90 python3 benchmarks/stream_speed.py --device "$([ "$tiny" = 1 ] && echo cpu || echo cuda)" \
  $([ "$tiny" = 1 ] && echo "--n 300 --steps 3 --warm 1 --repeat 1" || echo "--n 20000 --steps 200 --warm 20 --repeat 3") \
  --file "$(mktemp -d)/train.safetensors"
echo "files: $(cd "$out" && find . -type f | sort | tr '\n' ' ')"
