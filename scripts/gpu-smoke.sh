#!/usr/bin/env bash
# Runs on the GPU machine from the unpacked artifacts/falhints-gpu.tar.xz: finds LibTorch in the installed
# PyTorch, then loads a demo model onto cuda:0, renders images and prints load and inference times.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
torch_lib=$(python3 -c "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
export LD_LIBRARY_PATH="$torch_lib:$here/falhints${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
for size in 512MB 2GB; do
  "$here/falhints/falhints" smoke --device cuda:0 --size "$size" --renders 20 --out "${OUT:-.}/smoke-$size.png"
done
