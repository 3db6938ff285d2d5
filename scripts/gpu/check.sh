#!/bin/bash
# The GPU check of issue 17, run on a lent device machine in one call (about 7 min):
#   carry [".gpu", ".whl"] (scripts/gpu/payload.py and the device README's wheel steps),
#   command: bash scripts/gpu/check.sh
# Prints the benchmark (single path, batched float32/tf32/bf16, seed) and a few batched
# variants; benchmark.json and the logs come back from $OUT.
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/../.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
python3 -c "import torch, torchvision; print(torch.__version__, torchvision.__version__)"
set -o pipefail
timeout 240 python3 -W ignore scripts/gpu/variants.py 2>&1 | tee "$OUT/variants.log"
timeout 200 python3 -W ignore -m scratchdet benchmark .gpu/model.pt .gpu/photos --device cuda \
    --batch 4 --amp tf32,bf16 --autotune --repeat 8 -o "$OUT" 2>&1 | tee "$OUT/bench.log"
