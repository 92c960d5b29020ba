#!/usr/bin/env bash
# On the GPU machine, after `source .device-node/setup.sh`: PyTorch's SDPA and attnkit's
# kernels in one command, results under $OUT (or ./gpu-bench-out).
set -uo pipefail
out="${OUT:-gpu-bench-out}"; mkdir -p "$out"
dn=.device-node
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 "$dn/sdpa.py" > "$out/torch-sdpa.json" && cat "$out/torch-sdpa.json"
timeout 150 node "$dn/attention-gpu.mjs" --out "$out" 2>&1 | grep -v XDG_RUNTIME
NSA_BENCH_BACKEND=gpujs-webgpu NSA_BENCH_CONTEXTS=${NSA_CONTEXTS:-16384,65536} NSA_BENCH_REPS=5 timeout 200 node --expose-gc "$dn/nsa-bench.mjs" 2>&1 | grep -v XDG_RUNTIME
find .. /tmp -xdev -name attention-nsa.json -newer .device-node/setup.sh 2>/dev/null | head -1 | xargs -I{} cp {} "$out/" 2>/dev/null
timeout 180 node "$dn/dsa-bench.mjs" --backend gpujs-webgpu --contexts "${DSA_CONTEXTS:-16384,65536}" --seconds 1 2>&1 | grep -v XDG_RUNTIME
find .. /tmp -xdev -name indexer-dsa-decode.json -newer .device-node/setup.sh 2>/dev/null | head -1 | xargs -I{} cp {} "$out/" 2>/dev/null
timeout 240 node --expose-gc "$dn/dsa-operator-bench.mjs" --backend gpujs-webgpu --contexts "${DSA_CONTEXTS:-16384,65536}" --reps 5 2>&1 | grep -v XDG_RUNTIME
find .. /tmp -xdev -name indexer-dsa-operator.json -newer .device-node/setup.sh 2>/dev/null | head -1 | xargs -I{} cp {} "$out/" 2>/dev/null
exit 0
