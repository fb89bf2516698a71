#!/usr/bin/env bash
# Runs on the GPU machine from the unpacked artifacts/falhints-gpu.tar.xz (built by scripts/publish-gpu.sh), once, in
# about 8 minutes:
# 1. Loads against the machine's limits (`falhints smoke`, medians of 3 runs) for 512 MB and 2 GB models: the page-cache
#    read of the same file into fresh memory, a copy into fresh memory, a pinned host-to-device copy of the same bytes,
#    the load to cuda:0 (targets: at least 5 GB/s for 2 GB from the page cache), the previous loader beside it, and the
#    host tier's demotion and promotion (target: at least 20 GB/s from the host tier).
# 2. The end-to-end benchmark: four runner grains sharing GPU 0 (cuda:0.0 to cuda:0.3, each with its own budget of two
#    mean-sized models and the default host tier), twelve models of 0.5 to 2 GB, Zipf 1.0, hinted placement against
#    round-robin on the same requests; then hinted placement again without the host tier (HOST_TIER_OFF=0 skips it).
# REQUESTS, POLICIES, LOADERS (e.g. PyBridge,Direct to rerun the previous loader too, about 4 more minutes) and STORE
# override the defaults. Figures and plots go to $OUT (or the current folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-.}"
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$torch_lib:$here/falhints${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version,pcie.link.gen.max,pcie.link.width.max --format=csv,noheader | tee "$out/gpu.txt"
free -g | tee -a "$out/gpu.txt"
for size in 512MB 2GB; do
  "$here/falhints/falhints" smoke --device cuda:0 --size "$size" --renders 20 --repeat 3 --out "$out/smoke-$size.png"
done 2>&1 | tee "$out/smoke.txt"
store="${STORE:-/tmp/falhints-e2e-store}"
bench() {
  "$here/falhints/falhints-bench" e2e --device cuda --runners 4 --models 12 --model-size 512MB-2GB --models-per-runner 2 \
    --requests "${REQUESTS:-100}" --store "$store" "$@"
}
bench --policies "${POLICIES:-HintAffinity,RoundRobin}" --loaders "${LOADERS:-Direct}" --plot "$out/e2e-gpu.png" \
  2>"$out/e2e-gpu.log" | tee "$out/e2e-gpu.md"
if [ "${HOST_TIER_OFF:-1}" != 0 ]; then
  bench --policies HintAffinity --loaders Direct --host-budget 0 --warmup 0 2>>"$out/e2e-gpu.log" | tee "$out/e2e-gpu-no-host-tier.md"
fi
