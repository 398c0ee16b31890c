#!/usr/bin/env bash
# Step 2 of the GPU check, on a machine with one or more NVIDIA GPUs, PyTorch
# with CUDA, CMake, ninja and a compiler, but no network and no Debian
# development packages (collect.sh brought those in .gpu-check/root):
#   1. builds flare-cpp against the CUDA LibTorch of python3's torch,
#   2. runs the seed job, 2 sites x 1 rank on cuda:0 (NCCL), 4 rounds,
#   3. runs the DDP-equivalence test on CUDA,
#   4. runs the plain-PyTorch reference on the same GPU, same settings,
# and prints images/s side by side. Logs go to $OUT (or build-gpu/out).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
deps="$root/.gpu-check/root"
build="$root/build-gpu"
out="${OUT:-$build/out}"
work="$(mktemp -d /tmp/flare-gpu-check.XXXXXX)"
python="${FLARE_PYTHON:-python3}"
mkdir -p "$out"
started=$SECONDS
say() { echo "[gpu-check +$((SECONDS - started))s] $*"; }
fail() { say "FAILED: $*"; exit 1; }

[ -f "$root/.gpu-check/symlinks.tsv" ] || fail ".gpu-check is missing: run scripts/gpu-check.sh collect first"
# Only our processes see the collected libraries (protoc, gRPC); Python keeps its own.
with_deps() { LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$@"; }

eval "$("$python" - <<'PY'
import os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
print(f"torch_prefix='{torch.utils.cmake_prefix_path}'")
print(f"site='{site}'")
print(f"torch_version='{torch.__version__}'")
print(f"gpus={torch.cuda.device_count() if torch.cuda.is_available() else 0}")
PY
)" || fail "$python has no torch"
say "torch $torch_version, $gpus GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
[ "$gpus" -ge 1 ] || fail "torch sees no GPU"
nccl_h="$(find "$site/nvidia" -name nccl.h 2>/dev/null | head -1)"
[ -n "$nccl_h" ] || fail "no nccl.h under $site/nvidia (the nvidia-nccl wheel)"
export NCCL_ROOT="$(dirname "$(dirname "$nccl_h")")"
cudnn_h="$(find "$site/nvidia" -name cudnn.h 2>/dev/null | head -1)"
cudnn_args=()
[ -n "$cudnn_h" ] && cudnn_args=(-DCUDNN_INCLUDE_PATH="$(dirname "$cudnn_h")"
  -DCUDNN_LIBRARY_PATH="$(find "$(dirname "$(dirname "$cudnn_h")")" -name 'libcudnn.so*' | head -1)")

say "configure and build (LibTorch: $torch_prefix, NCCL: $NCCL_ROOT)"
"$root/scripts/gpu-check/build.sh" "$build" "$torch_prefix" "$out" "${cudnn_args[@]}" ||
  fail "build (logs: configure.log, build.log)"
bin="$build/bin"

say "data: 10,000 generated training images"
"$bin/flare-make-cifar" --out "$work/data" --train 10000 --test 2000 --seed 0 > /dev/null ||
  fail "flare-make-cifar"

status=0
say "seed job: 2 sites x 1 rank on cuda:0, NCCL, 4 rounds"
run_start=$SECONDS
with_deps "$bin/flare-run" "$root/jobs/cifar10.toml" --n_clients 2 --num_rounds 4 \
  --workspace "$work/ws" --set data.dir="$work/data" --set 'clients.devices=[0]' \
  --set clients.accelerator=cuda --set clients.backend=nccl > "$out/seed_job.log" 2>&1 ||
  { status=1; say "seed job FAILED"; }
flare_s=$((SECONDS - run_start))
tail -12 "$out/seed_job.log"
cp "$work"/ws/latest/metrics.jsonl "$out/metrics.jsonl" 2>/dev/null
for f in "$work"/ws/latest/logs/*.log; do
  [ -f "$f" ] && { echo "== $(basename "$f")"; tail -30 "$f"; } >> "$out/site_logs.txt"
done

say "DDP equivalence on CUDA"
with_deps "$bin/test_torch_sdk_data_parallel" -tc='on CUDA*' -s > "$out/ddp_test.log" 2>&1 ||
  { status=1; tail -30 "$out/ddp_test.log"; say "DDP test FAILED"; }
grep -E "test cases|assertions|skipped" "$out/ddp_test.log"

say "plain-PyTorch reference on the same GPU"
"$python" "$root/scripts/gpu-check/torch_reference_cuda.py" --data "$work/data" --n_clients 2 \
  --num_rounds 4 > "$out/reference.json" 2> "$out/reference.log" ||
  { status=1; tail -20 "$out/reference.log"; say "reference FAILED"; }

"$python" - "$out/metrics.jsonl" "$out/reference.json" "$flare_s" <<'PY'
import json, statistics, sys
try:
    flare = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    glob = [l for l in flare if l["kind"] == "global" and l["round"] > 0]
    ref = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
except Exception as e:  # a failed step above already said why
    print(f"no side-by-side figures: {e}")
    sys.exit(0)
f_ips = statistics.median(l["images_per_s"] for l in glob)
r_ips = statistics.median(ref["images_per_s_per_round"])
print(f"GPU: {ref['device']}")
print(f"{'':28}{'flare-run':>12}{'reference':>12}{'ratio':>8}")
print(f"{'train images/s (median)':28}{f_ips:12.0f}{r_ips:12.0f}{f_ips / r_ips:8.2f}")
print(f"{'whole run s':28}{float(sys.argv[3]):12.1f}{ref['whole_run_s']:12.1f}")
print(f"{'final test accuracy':28}{glob[-1]['test_acc']:12.4f}{ref['test_acc_per_round'][-1]:12.4f}")
PY
say "done (exit $status)"
exit $status
