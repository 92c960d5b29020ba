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
pack_root="$(cd "${ATTNKIT_PACK_ROOT:-$root}" && pwd)"
pack="$pack_root/../shared/tools/device-node/pack.sh"
if [[ -d $pack_root/.git ]]; then
  (cd "$pack_root" && bash "$pack" "$out"/*)
else
  # A linked worktree: .git is a file, and pack.sh adds /.device-node/ to .git/info/exclude (the
  # repository's .gitignore has it already). Pack in a scratch repository that sees this
  # checkout's node_modules, reusing and then replacing this checkout's .device-node.
  scratch="$(mktemp -d)"
  git -C "$scratch" init -q
  ln -s "$pack_root/node_modules" "$scratch/node_modules"
  if [[ -d $pack_root/.device-node ]]; then mv "$pack_root/.device-node" "$scratch/"; fi
  (cd "$scratch" && bash "$pack" "$out"/*)
  mv "$scratch/.device-node" "$pack_root/"
  rm -rf "$scratch"
fi
rm -rf "$out"
echo "packed into $pack_root/.device-node: run there with"
echo "  source .device-node/setup.sh && bash tooling/gpu-bench/scripts/run-device.sh"
