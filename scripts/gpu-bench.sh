#!/usr/bin/env bash
# Runs on the GPU machine from the unpacked artifacts/falhints-gpu.tar.xz: the load-versus-render smoke test with
# 512 MB and 2 GB models, then the end-to-end benchmark: four runner grains sharing GPU 0 (cuda:0.0 to cuda:0.3,
# each with its own budget of two mean-sized models), twelve models of 0.5 to 2 GB, Zipf 1.0, hinted placement
# against round-robin on the same requests (REQUESTS, POLICIES and STORE override the defaults). Figures and plots
# go to $OUT (or the current folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-.}"
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$torch_lib:$here/falhints${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
for size in 512MB 2GB; do
  "$here/falhints/falhints" smoke --device cuda:0 --size "$size" --renders 20 --out "$out/smoke-$size.png"
done 2>&1 | tee "$out/smoke.txt"
"$here/falhints/falhints-bench" e2e --device cuda --runners 4 --models 12 --model-size 512MB-2GB --models-per-runner 2 \
  --requests "${REQUESTS:-100}" --policies "${POLICIES:-HintAffinity,RoundRobin}" --store "${STORE:-/tmp/falhints-e2e-store}" --plot "$out/e2e-gpu.png" 2>"$out/e2e-gpu.log" | tee "$out/e2e-gpu.md"
