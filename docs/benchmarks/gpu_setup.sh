# Sourced by the `setup` stage of gpu_run.sh and adaptive_gpu_run.sh (the GPU machine lacks
# our other dependencies): the wheels in WHEELS (default out/wheels) into /tmp/site, on
# PYTHONPATH for the stages that follow in the same shell.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "${WHEELS:-out/wheels}"/*.whl || return 1
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
# From the repository root the source folder approxrt/ shadows the installed package,
# and lacks the subpackages that live beside it: link them in.
for part in branches profiler scheduler; do ln -sfn "../$part" "approxrt/$part"; done
