#!/usr/bin/env bash
# The pose-prior GPU checks and benchmarks in one run, for a session lent a GPU (device time is short; each step has
# its own timeout so the whole run stays under about 9 minutes). On the device machine, from the repository root:
#
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   bash benchmarks/gpu_checks.sh            # writes to $OUT (the device tool's folder), else /tmp/gpu-checks
#
# with `.whl` (named in carry, ignored by git) holding what the machine's Python lacks: roma, a pure-Python wheel
# (`python3 -m pip download --no-deps roma -d .whl` here). Its torch, numpy, typer, rich and pytest are there.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu-checks}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
# correctness on the GPU: the CUDA tests (skipped on CI, which has none)
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -k cuda tests/prior tests/convert 2>&1 | tee "$OUT/tests.txt"
# issue 15: the exact search on CUDA (no faiss there: its rows say so)
timeout 200 "$PY" benchmarks/prior_data.py --device cuda --queries 20000 --repeats 2 --brute 20 2>&1 | tee "$OUT/prior_data.txt"
# issue 17: what the prior adds to a fit on CUDA
timeout 200 "$PY" benchmarks/prior_uses.py --device cuda --repeat 3 2>&1 | tee "$OUT/prior_uses.txt"
