#!/usr/bin/env bash
# Installs a software Vulkan driver so WebGPU (Dawn, through the `webgpu` npm package) runs
# without a GPU: Mesa's lavapipe from Debian bookworm-backports (Mesa 25; bookworm's own
# Mesa 22 is rejected by Dawn) and the Vulkan loader. Needs root and apt; idempotent.
#
#   bash tooling/scripts/setup-webgpu.sh
#
# lavapipe caps one storage binding at 128 MiB; the gpu.js backend splits larger tensors.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-webgpu: needs root (apt-get); run it with sudo, or skip: the WebGPU tests then report the backend as unavailable" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-webgpu: apt-get not found; install Mesa >= 24 lavapipe (mesa-vulkan-drivers) and libvulkan1 by hand" >&2
  exit 1
fi

installed() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | grep -q '^install ok installed'; }
mesa_version() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true; }

if installed libvulkan1 && installed mesa-vulkan-drivers && dpkg --compare-versions "$(mesa_version)" ge 24; then
  echo "setup-webgpu: lavapipe $(mesa_version) and libvulkan1 already installed"
  exit 0
fi

# bookworm-backports, with the same mirror and keyring as the machine's own Debian source
source_file=/etc/apt/sources.list.d/attnkit-bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  main=/etc/apt/sources.list.d/debian.sources
  uris=$(awk '/^URIs:/ {print $2; exit}' "$main" 2>/dev/null || true)
  keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$main" 2>/dev/null || true)
  printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' \
    "${uris:-http://deb.debian.org/debian}" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" >"$source_file"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "setup-webgpu: installed lavapipe $(mesa_version)"
