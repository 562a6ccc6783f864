#!/usr/bin/env bash
# LesionGAN on one GPU, in under 5 minutes, without network or pip: environment report; on synthetic
# data, the DCGAN training step against the PyTorch DCGAN example recipe on the same card, the real
# training loop, sampling throughput, each as a fraction of the card's peak; a 2-process DDP smoke
# test on the one GPU (gloo). Run from anywhere; it uses this checkout (no install needed).
#
#   bash bench/gpu.sh               # on the GPU machine
#   bash bench/gpu.sh --cpu-smoke   # everything shrunk, on the CPU, under a minute (tests run this)
#
# PYTHON picks the interpreter (default python3). Each part runs under a time limit; the last line
# says how many parts passed, and the exit code is 0 only when all did.
set -u
cd "$(dirname "$0")/.." || exit 2
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
SMOKE=""
LIMIT=100
case "${1:-}" in
  "") ;;
  --cpu-smoke) SMOKE="--smoke"; LIMIT=60; export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1 ;;
  *) echo "usage: bash bench/gpu.sh [--cpu-smoke]" >&2; exit 2 ;;
esac
mode=${SMOKE:+cpu-smoke}
echo "# bench/gpu.sh ${mode:-gpu}, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"

echo "== nvidia-smi"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,power.limit,temperature.gpu \
    --format=csv 2>&1 || echo "nvidia-smi failed"
else
  echo "nvidia-smi: not on PATH"
fi

passed=0
failed=()
run_part() {  # name, command...
  local name=$1
  shift
  if timeout "$LIMIT" "$@"; then
    passed=$((passed + 1))
  else
    echo "FAILED: $name (exit $?)"
    failed+=("$name")
  fi
}
run_part env "$PY" bench/bench_gpu.py env $SMOKE
run_part train "$PY" bench/bench_gpu.py train $SMOKE
run_part loop "$PY" bench/bench_gpu.py loop $SMOKE
run_part sample "$PY" bench/bench_gpu.py sample $SMOKE
run_part ddp "$PY" -m torch.distributed.run --standalone --nproc_per_node=2 bench/bench_gpu.py ddp $SMOKE
total=$((passed + ${#failed[@]}))
if [ ${#failed[@]} -eq 0 ]; then
  echo "gpu.sh: all $total parts passed (${mode:-gpu})"
else
  echo "gpu.sh: $passed of $total parts passed (${mode:-gpu}); failed: ${failed[*]}"
  exit 1
fi
