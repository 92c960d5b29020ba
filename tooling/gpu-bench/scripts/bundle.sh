#!/usr/bin/env bash
# Bundles the GPU benchmarks into single ESM files (webgpu left external: device-node carries
# it) and packs them with Node and Dawn into .device-node/ for the GPU machine.
#   bash tooling/gpu-bench/scripts/bundle.sh   (from anywhere in the repository)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$(mktemp -d)"
bundle() {
  "$here/node_modules/.bin/esbuild" "$1" --bundle --platform=node --format=esm --target=node20 \
    --external:webgpu --external:onnxruntime-node --outfile="$out/$2" --log-level=warning \
    --banner:js="import { createRequire } from 'module'; const require = createRequire(import.meta.url);"
}
bundle "$here/src/attention.gpu.ts" attention-gpu.mjs
bundle "$here/src/dawn-calls.ts" dawn-calls.mjs
bundle "$root/packages/attention-nsa/src/nsa.bench.ts" nsa-bench.mjs
bundle "$root/packages/indexer-dsa/src/decode.bench.ts" dsa-bench.mjs
cp "$here/torch/sdpa.py" "$out/sdpa.py"
cd "${ATTNKIT_PACK_ROOT:-$root}"
# pack.sh writes into the checkout git names (a main checkout, not a linked worktree)
bash ../shared/tools/device-node/pack.sh "$out"/*
echo "packed into $root/.device-node: run there with"
echo "  source .device-node/setup.sh && bash tooling/gpu-bench/scripts/run-device.sh"
