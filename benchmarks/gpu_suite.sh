#!/usr/bin/env bash
# Every GPU measurement of the project in one run of under 8 minutes, for a session that is
# lent a GPU machine: run it once from the repository root and paste its output into the
# issue notes. Each step has its own time limit, so one slow step cannot eat the others.
#
#     bash benchmarks/gpu_suite.sh            # writes benchmarks/results/gpu_suite.log too
#
# Steps (rough budget on an H100/H200):
#   1. the CUDA tests (pytest -m gpu)                                         ~1 min
#   2. child training: Lightning ChildModule vs a plain loop, DARTS_V2 C=36    ~1.5 min
#   3. concurrent children on one GPU: aggregate images/s with 1, 2, 4         ~2 min
#   4. DARTS search speed (paper setting, first and second order, one epoch)   ~2 min
#   5. worker command: one trial per GPU, 1 vs all GPUs of the machine         ~1 min
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
exec > >(tee benchmarks/results/gpu_suite.log) 2>&1

python - <<'EOF'
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
EOF
n_gpus=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$n_gpus" -lt 1 ]; then echo "no CUDA device: nothing to measure"; exit 1; fi

status=0
step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2; shift 2
    echo; echo "=== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" || { echo "=== $name: exit $?"; status=1; }
    echo "=== $name: $((SECONDS - start)) s"
}

step "CUDA tests" 80 python -m pytest -q -m gpu -p no:cacheprovider
step "child training" 100 python benchmarks/child_training.py --device cuda --repeats 2 \
    --precision bf16 --loaders device
step "concurrent children" 120 python benchmarks/concurrent_children.py --device cuda \
    --children 1 2 4 --batch-size 256
step "DARTS search speed" 110 python benchmarks/darts_search.py --device cuda
# One trial per GPU through the worker command, on the embedded demo job at CIFAR-like size.
worker_job=(--dataset mnist --image-size 28 --epochs 2 --channels 16 --cells-per-stage 5
            --batch-size 256 --accelerator gpu --no-progress-bar)
rm -f /tmp/gpu_suite_*.db
step "worker, 1 GPU" 60 optuna-nas worker --devices 0 --n-trials 4 \
    --storage sqlite:////tmp/gpu_suite_1.db "${worker_job[@]}"
if [ "$n_gpus" -gt 1 ]; then
    step "worker, all $n_gpus GPUs" 60 optuna-nas worker --devices all --n-trials $((4 * n_gpus)) \
        --storage sqlite:////tmp/gpu_suite_all.db "${worker_job[@]}"
else
    echo "=== worker, all GPUs: skipped (this machine has one GPU)"
fi
exit $status
