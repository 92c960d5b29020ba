#!/usr/bin/env bash
# One command from a fresh clone (Node >= 20.19): pnpm through corepack, the workspace's
# dependencies, the software Vulkan driver for the WebGPU backend and Chromium for the docs'
# end-to-end tests (when run as root on Debian), then the reference-model demo on its embedded
# default.
#
#   bash tooling/scripts/bootstrap.sh            # set up and run the demo
#   bash tooling/scripts/bootstrap.sh --no-demo  # set up only
set -euo pipefail
cd "$(dirname "$0")/../.."

# Node 20's bundled corepack fails pnpm's signature check; a current corepack does not.
if ! corepack --version 2>/dev/null | grep -qE '^0\.(3[1-9]|[4-9][0-9])'; then
  npm install --global --no-fund --no-audit corepack@latest >/dev/null
fi
corepack enable
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  bash tooling/scripts/setup-webgpu.sh || echo "bootstrap: WebGPU driver not installed; the gpujs-webgpu backend will be unavailable" >&2
  bash tooling/scripts/setup-browser.sh || echo "bootstrap: Chromium not installed; the docs' end-to-end tests (part of pnpm test) need it" >&2
else
  echo "bootstrap: not root; skipping the software Vulkan driver (run tooling/scripts/setup-webgpu.sh as root for WebGPU)" >&2
fi

pnpm install --frozen-lockfile
if [[ ${1:-} != --no-demo ]]; then
  pnpm demo
fi
