#!/usr/bin/env bash
# The GPU checks, in one go (estimated 5 minutes on one H200; at most 9.25 by the stages' time
# limits, under the device tool's 10 minutes a command): what a session runs when a machine
# with an NVIDIA GPU is lent to it. Everything here is also built and tested on the CPU; this
# script runs the parts that need CUDA:
#
#   1. the CUDA unit tests (tests/unit/test_cuda.py, with OURO_TEST_CUDA=1: the suite otherwise
#      hides GPUs): a training step on the GPU against the CPU in fp32 and bf16 autocast,
#      weights and checkpoints written on the GPU loading and resuming on the CPU, self-play on
#      the GPU (legal moves, the network's own log-probabilities), a tiny bootstrap+hybrid run on
#      cuda, the torch engine on the GPU equal to the NumPy engine turn by turn, and a two-rank
#      NCCL learner against one GPU (skipped with fewer than two GPUs);
#   2. benchmarks/training.py: self-play positions/s and PPO samples/s on the CPU and the GPU
#      in the same run (bf16 and fp32 on the GPU), then the GPU at a GPU's batch sizes;
#   3. benchmarks/engine_torch.py: the torch engine's env-steps/s on the GPU at B=4,096 and
#      16,384 against the compiled NumPy kernel on one core in the same run.
#
# Usage (from the repository root):
#   scripts/gpu-check.sh --fetch-wheels   here, with PyPI reachable: download into .whl/ the
#                                         wheels the GPU machine's image lacks (pydantic and its
#                                         three helpers, for Python 3.12 / manylinux x86-64)
#   scripts/gpu-check.sh                  there: run the checks; logs go to $OUT (the device
#                                         tool's folder) or ./gpu-check-out
#
# The project is not installed there: `ouroboros` is put on PYTHONPATH as links to contract/,
# trainer/ and operator/ (the package-dir mapping of pyproject.toml), and .whl/ (if present)
# is unpacked into a private folder. The image's own torch, numba, onnxruntime and pytest are used.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3}
# the image's versions of the packages it lacks, as pinned here (pip show in .venv, 2026-11-30)
wheels=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    exclude=$(git rev-parse --git-path info/exclude)  # .whl/ never travels into a commit
    grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >> "$exclude"
    mkdir -p .whl
    exec "$py" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${wheels[@]}"
fi

out=${OUT:-$root/gpu-check-out}
mkdir -p "$out"
site=$(mktemp -d /tmp/ouro-site.XXXXXX)
trap 'rm -rf "$site"' EXIT
mkdir -p "$site/ouroboros"
for part in contract trainer operator; do ln -s "$root/$part" "$site/ouroboros/$part"; done
if compgen -G ".whl/*.whl" > /dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" .whl/*.whl || exit 1
fi
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"  # not the root: its operator/ would shadow the stdlib module
export PYTHONUNBUFFERED=1 OURO_TEST_CUDA=1

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "=== $name ($(date -u +%T), limit ${limit}s): $*"
    local t0=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee "$out/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "=== $name: exit $rc after $((SECONDS - t0)) s"
    return "$rc"
}

failed=0
stage environment 45 "$py" -c "
import torch, numpy, onnxruntime, pydantic
print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'numpy', numpy.__version__,
      'onnxruntime', onnxruntime.__version__, 'pydantic', pydantic.__version__)
assert torch.cuda.is_available(), 'torch sees no CUDA device'
for i in range(torch.cuda.device_count()):
    print(f'cuda:{i}', torch.cuda.get_device_name(i), 'capability', torch.cuda.get_device_capability(i),
          'bf16', torch.cuda.is_bf16_supported(including_emulation=False))
import ouroboros.trainer.learning.device as d
print('auto ->', d.placement().describe())
" || exit 1
stage tests 210 "$py" -m pytest -q -p no:cacheprovider tests/unit/test_cuda.py tests/unit/test_device.py \
    || failed=1
stage training 120 "$py" -m benchmarks.training --network default --device cpu,cuda --games 64 --steps 10 \
    --repeats 1 || failed=1
stage training-gpu 90 "$py" -m benchmarks.training --network default --device cuda --games 512 \
    --batch-size 2048 --steps 20 --repeats 2 || failed=1
stage engine-torch 90 "$py" -m benchmarks.engine_torch --device cuda --batches 4096,16384 --seconds 3 \
    --repeats 3 || failed=1
echo "gpu-check: $([[ $failed == 0 ]] && echo 'all stages passed' || echo 'a stage FAILED'); logs in $out"
exit "$failed"
