#!/usr/bin/env bash
# The commands behind gpu.md's "The adaptive runtime on the GPU", run from the repository
# root on the GPU machine (see gpu_run.sh for what `setup` installs and why).
# Stages (any of, in order):
#   setup    the wheels in WHEELS into /tmp/site (as gpu_run.sh), and ../shared/data -> DATA
#            when missing, so that the scenarios' relative paths resolve;
#   latency, accuracy, fit (or `profile` for all three): the profile's steps over CONFIG's
#            branch space into PROFILE: latency at the GPU levels, accuracy on PETS and the
#            synthetic scenes; `fit` packs PROFILE, without its detection cache, into
#            OUT/profile.tgz;
#   bench    `approxrt bench adaptive` on each scenario in SCENARIOS with PROFILE, into
#            OUT/bench_<name>.tgz (results.csv, adaptive.md, the plots).
#   DATA=.gpu_data OUT=gpu_out docs/benchmarks/adaptive_gpu_run.sh setup profile bench
set -uo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-gpu_out}
CONFIG=${CONFIG:-docs/benchmarks/adaptive_gpu_config.yaml}
SCENARIOS=${SCENARIOS:-docs/benchmarks/adaptive_gpu.yaml}
PROFILE=${PROFILE:-out/adaptive_gpu_profile}
BENCH_DIR=${BENCH_DIR:-out/adaptive_gpu_bench}
PETS=$DATA/video/pets09_s2l1
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 APPROXRT_SHARED_DATA=$DATA
LOG=$OUT/log.txt
APPROXRT=(python3 -m approxrt.cli)  # pip --target leaves no console script on PATH
quiet() { grep -v -i "warn\|pos_axes_slices" | tail -"${1:-30}"; }

for stage in "$@"; do
  case $stage in
  setup)
    . "$(dirname "$0")/gpu_setup.sh" || exit 1
    if [ ! -e ../shared/data ]; then
      mkdir -p ../shared && ln -sfn "$(realpath "$DATA")" ../shared/data || exit 1
    fi
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee -a "$LOG"
    ;;
  profile) bash "$0" latency accuracy fit || exit 1 ;;
  latency)
    SECONDS=0
    timeout "${LATENCY_S:-180}" "${APPROXRT[@]}" profile latency --config "$CONFIG" \
      --video "$PETS/video.avi" --models "$DATA/models" --out "$PROFILE" --no-progress 2>&1 \
      | quiet | tee -a "$LOG"
    echo "latency step: ${SECONDS} s" | tee -a "$LOG"
    ;;
  accuracy)
    SECONDS=0
    timeout "${ACCURACY_S:-300}" "${APPROXRT[@]}" profile accuracy "$PETS/video.avi" --synthetic \
      --config "$CONFIG" --models "$DATA/models" --out "$PROFILE" --no-progress 2>&1 \
      | quiet | tee -a "$LOG"
    echo "accuracy step: ${SECONDS} s" | tee -a "$LOG"
    ;;
  fit)
    timeout "${FIT_S:-120}" "${APPROXRT[@]}" profile fit "$PROFILE" 2>&1 | quiet 60 \
      | tee "$OUT/profile_show.txt"
    tar czf "$OUT/profile.tgz" --exclude=detections -C "$(dirname "$PROFILE")" \
      "$(basename "$PROFILE")"
    ;;
  bench)
    for scenario in $SCENARIOS; do
      name=$(basename "$scenario" .yaml)
      SECONDS=0
      timeout "${BENCH_S:-540}" "${APPROXRT[@]}" bench adaptive "$scenario" --config "$CONFIG" \
        --profile "$PROFILE" --models "$DATA/models" --out "$BENCH_DIR/$name" \
        >"$OUT/bench_$name.md" 2>"$OUT/bench_${name}_err.txt"
      echo "bench $name: rc $? in ${SECONDS} s" | tee -a "$LOG"
      tr '\r' '\n' <"$OUT/bench_${name}_err.txt" | quiet 15
      tar czf "$OUT/bench_$name.tgz" -C "$BENCH_DIR" "$name"
    done
    ;;
  *) echo "unknown stage $stage (setup, latency, accuracy, fit, profile, bench)"; exit 2 ;;
  esac
done
