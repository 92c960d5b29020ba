#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the documentation site's end-to-end tests
# (apps/docs/e2e, driven by playwright-core). No browser is downloaded by npm: playwright-core
# launches /usr/bin/chromium. Needs root and apt; idempotent.
#
#   bash tooling/scripts/setup-browser.sh
set -euo pipefail

if command -v chromium >/dev/null && chromium --version >/dev/null 2>&1; then
  echo "setup-browser: $(chromium --version 2>/dev/null) already installed"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-browser: needs root (apt-get); run it with sudo, or install Debian's chromium package by hand" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-browser: apt-get not found; install Chromium so that /usr/bin/chromium exists (or set ATTNKIT_CHROMIUM)" >&2
  exit 1
fi

apt-get update -qq
# fonts-dejavu-core gives the screenshots readable glyphs for the math symbols the pages use.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
echo "setup-browser: installed $(chromium --version 2>/dev/null)"
