#!/usr/bin/env bash
# Publishes the host and the benchmarks for a Linux GPU machine that has no .NET installed: self-contained for
# linux-x64, into one folder, with the TorchSharp package alone (FalHintsTorch=system), so LibTorch with CUDA is
# taken at run time from LD_LIBRARY_PATH (for example a PyTorch wheel's torch/lib). Writes
# artifacts/falhints-gpu.tar.xz with the scripts that run there (gpu-smoke.sh, gpu-bench.sh).
# For a machine without PyTorch, build with -p:FalHintsTorch=cuda instead (TorchSharp-cuda-linux from the
# public NuGet, about 3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/gpu
rm -rf "$out" artifacts/falhints-gpu.tar.xz
for project in Silo.Host Tests/Benchmarks; do
  dotnet publish "$project" -c Release -r linux-x64 --self-contained -p:FalHintsTorch=system -o "$out/falhints"
done
cp scripts/gpu-smoke.sh scripts/gpu-bench.sh "$out/"
tar -C "$out" -cJf artifacts/falhints-gpu.tar.xz .
echo "artifacts/falhints-gpu.tar.xz: $(du -h artifacts/falhints-gpu.tar.xz | cut -f1)"
# The publish restored the projects for linux-x64 with the TorchSharp package alone; restore them as the
# development build expects, so the next 'dotnet build' or 'dotnet test' is not left with those assets.
dotnet restore FalHints.sln >/dev/null
