#!/usr/bin/env bash
# System packages some tests need beyond Python: Debian's Chromium (the /docs
# page test renders the page in headless Chromium; the console test drives it
# with Playwright's Python package, which uses this Chromium and downloads
# none) and kcat (the outside-client test produces and consumes with
# librdkafka). Installed only when missing, and only where apt-get can (root
# on Debian); elsewhere those tests say they were skipped and why.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "test-deps: ${missing[*]} missing and apt-get is not usable here; the tests that need them will be skipped" >&2
  exit 0
fi
echo "test-deps: installing Debian's ${missing[*]} for the browser tests (/docs, console) and the outside-client test" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
