#!/usr/bin/env bash
# System packages some tests need beyond Python: Debian's Chromium (the /docs
# page test renders the page in headless Chromium; the console test drives it
# with Playwright's Python package, which uses this Chromium and downloads none). Installed only when
# missing, and only where apt-get can (root on Debian); elsewhere those tests
# say they were skipped and why.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: chromium is missing and apt-get is not usable here; the browser tests (/docs, console) will be skipped" >&2
  exit 0
fi
echo "test-deps: installing Debian's chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
