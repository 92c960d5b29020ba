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
bundle "$root/packages/indexer-dsa/src/operator.bench.ts" dsa-operator-bench.mjs
cp "$here/torch/sdpa.py" "$out/sdpa.py"
# pack.sh fills .device-node/ in the checkout git names and adds it to that checkout's
# .git/info/exclude, which a linked worktree does not have (its .git is a file, its exclude the
# main checkout's). So it runs in a throwaway repository that sees this checkout's node_modules
# (for the webgpu package) and keeps the previous pack (for its cache), and the result moves to
# the pack root: ATTNKIT_PACK_ROOT, or this checkout. Nothing is written into any git directory.
pack_root="$(cd "${ATTNKIT_PACK_ROOT:-$root}" && pwd)"
stage="$(mktemp -d)"
git -C "$stage" init -q
ln -s "$pack_root/node_modules" "$stage/node_modules"
if [[ -d $pack_root/.device-node ]]; then cp -a "$pack_root/.device-node" "$stage/.device-node"; fi
(cd "$stage" && bash "$pack_root/../shared/tools/device-node/pack.sh" "$out"/*)
rm -rf "$pack_root/.device-node"
mv "$stage/.device-node" "$pack_root/.device-node"
rm -rf "$stage" "$out"
echo "packed into $pack_root/.device-node: run there (carrying .device-node) with"
echo "  source .device-node/setup.sh && bash tooling/gpu-bench/scripts/run-device.sh"
