#!/usr/bin/env bash
# The GPU lane, on a GPU machine whose image lacks swiftnb's dependencies (carried as wheels, ../shared/gpu/README.md):
# every notebook and tutorial with --flags gpu, once on the image's own transformers and once with the wheels of
# .whl-tf/ (e.g. the newest transformers) on top. Logs to $OUT (or /tmp): gpu-lane-<transformers version>.log.
#   tools/gpu_lane.sh [image|carried|both] [test.py args, e.g. --workers 4 nbs/41_decoder.ipynb]
#   both lanes side by side: tools/gpu_lane.sh image --workers 5 & tools/gpu_lane.sh carried --workers 5; wait
#   within a device call's limit: SWIFTNB_LANE_LIMIT=400 tools/gpu_lane.sh ... (each lane cut there, its notebooks killed)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp}; which=${1:-both}; shift || true
exec 9>/tmp/swiftnb-wheels.lock; flock 9   # once a machine: two lanes started side by side share the installs
if [ ! -e /tmp/site/.swiftnb-wheels ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  [ -d .whl-tf ] && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site-tf .whl-tf/*.whl
  touch /tmp/site/.swiftnb-wheels
fi
flock -u 9
args=("$@"); [ ${#args[@]} -gt 0 ] && [[ "${args[-1]}" == *.ipynb ]] || args+=(nbs/*.ipynb tutorials/*.ipynb)
lane() {   # $1: extra PYTHONPATH in front
  local v; v=$(PYTHONPATH=$1/tmp/site python3 -c 'import transformers; print(transformers.__version__)')
  { echo "== $(date -u +%F) $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), torch $(python3 -c 'import torch; print(torch.__version__)'), transformers $v"
    # a notebook stuck (or one whose processes fill the cores) is cut at 480 s, so the others still report; the whole
    # lane at SWIFTNB_LANE_LIMIT seconds (0: none), the runner then killing its notebooks' processes (a `timeout`
    # around this script would leave them running)
    PYTHONPATH=$1/tmp/site:$PWD PYTHONUNBUFFERED=1 timeout "${SWIFTNB_LANE_LIMIT:-0}" python3 tools/test.py --flags gpu \
      --timeout 480 "${args[@]}"; } 2>&1 | tee "$out/gpu-lane-$v.log"
}
rc=0
[ "$which" = carried ] || lane "" || rc=1
[ "$which" = image ] || { [ -d /tmp/site-tf ] && lane /tmp/site-tf: || rc=1; }
exit $rc
