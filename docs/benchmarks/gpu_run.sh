#!/usr/bin/env bash
# The commands behind docs/benchmarks/gpu.md, run from the repository root on a machine
# with an NVIDIA GPU, torch, torchvision, onnx2torch and nvidia-ml-py (pip install
# '.[gpu]'), or with `setup` first on a machine that has only torch: it installs the
# wheels in WHEELS (onnx2torch, pydantic and its three, paho-mqtt, pooch, platformdirs,
# and approxrt's own, from `pip wheel --no-deps -w out/wheels .`) into /tmp/site.
# Stages (any of, in order): setup, tests (the GPU tests; TESTS chooses), bench
# (the benchmark parts; PARTS, ROUTES and ACCURACY_KERNELS choose), runs (approxrt run
# --device cuda + eval for BRANCHES, then the GPU latency profile).
#   DATA=../shared/data OUT=gpu_out docs/benchmarks/gpu_run.sh tests bench runs
set -uo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-gpu_out}
PETS=$DATA/video/pets09_s2l1
PARTS=${PARTS:-conversion,inference,frame,breakdown,frcnn,frcnn_detector,contention,accuracy}
ROUTES=${ROUTES:-onnxruntime_cpu,torch_cuda_tf32,torch_cuda_fp32,torch_cuda_fp16}
ACCURACY_KERNELS=${ACCURACY_KERNELS:-}  # e.g. fastestdet/416; empty = every setting
TESTS=${TESTS:-tests/branches/test_onnx_gpu.py tests/profiler/test_gpu_contention_levels.py \
  tests/branches/test_onnx_torch_route.py tests/branches/test_onnx_without_torch.py \
  tests/branches/test_detector_batching.py tests/serve/test_batched_streams.py \
  tests/scheduler/test_gpu_signals.py tests/branches/test_frcnn_cuda.py \
  tests/branches/test_frcnn_graphs_cuda.py}
BRANCHES=${BRANCHES:-yolox_nano/s416/si1 nanodet_m/s320/si1 fastestdet/s352/si1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 APPROXRT_SHARED_DATA=$DATA
LOG=$OUT/log.txt

for stage in "$@"; do
  case $stage in
  setup)
    . "$(dirname "$0")/gpu_setup.sh" || exit 1
    ;;
  tests)
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee -a "$LOG"
    python3 -c 'import torch, torchvision, onnxruntime as o; print("torch", torch.__version__, "torchvision", torchvision.__version__, "onnxruntime", o.__version__, o.get_available_providers())' | tee -a "$LOG"
    # shellcheck disable=SC2086 # TESTS is a list of paths
    timeout "${TESTS_S:-200}" python3 -m pytest -q -rfs -p no:cacheprovider \
      -W ignore::DeprecationWarning -W ignore::UserWarning $TESTS 2>&1 | tail -40 \
      | tee -a "$LOG"
    ;;
  bench)
    timeout "${BENCH_S:-380}" python3 -W ignore -m approxrt.branches.detectors.gpu_benchmark \
      --models "$DATA/models" --video "$PETS/video.avi" --gt "$PETS/gt/gt.txt" \
      --out "$OUT/gpu_results.json" --parts "$PARTS" --accuracy-routes "$ROUTES" \
      --accuracy-kernels "$ACCURACY_KERNELS" 2>&1 \
      | grep -v -i "warn\|pos_axes_slices" | tee -a "$LOG"
    ;;
  runs)
    for branch in $BRANCHES; do
      name=${branch//\//_}
      timeout 60 approxrt run "$PETS/video.avi" --branch "$branch" --device cuda \
        --classes person --models "$DATA/models" --out "$OUT/runs/$name" --no-progress 2>&1 \
        | tail -3 | tee -a "$LOG"
      approxrt eval "$PETS" "$OUT/runs/$name" 2>&1 | grep -E "^person" | sed "s|^|$name |" \
        | tee -a "$LOG"
    done
    python3 - "$OUT" <<'PY' | tee -a "$LOG"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
runs = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("runs/*/summary.json"))}
(out / "cli_runs.json").write_text(json.dumps(runs, indent=1))
for name, s in runs.items():
    print(name, s["detector_routes"], "latency_ms", s["latency_ms"], "stages", s["stage_mean_ms"])
PY
    timeout "${PROFILE_S:-300}" approxrt profile latency --config docs/benchmarks/gpu_profile.yaml \
      --video "$PETS/video.avi" --models "$DATA/models" --out "$OUT/profile" --no-progress 2>&1 \
      | grep -v -i "warn\|pos_axes_slices" | tail -20 | tee -a "$LOG"
    approxrt profile show "$OUT/profile" 2>&1 | tee "$OUT/profile_show.txt" | tail -40
    tar czf "$OUT/profile.tgz" -C "$OUT" profile
    ;;
  *) echo "unknown stage $stage (setup, tests, bench, runs)"; exit 2 ;;
  esac
done
