#!/usr/bin/env bash
# Re-fetch the vendored axe-core (test-only) with npm and check it against
# tests/vendor/axe-core/PINNED: the tarball's npm integrity and axe.min.js's sha256.
#   scripts/fetch-axe-core.sh          check the vendored copy matches the pinned package
#   scripts/fetch-axe-core.sh --write  replace the vendored files (after editing PINNED)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/tests/vendor/axe-core"
pin() { sed -n "s/^$1=//p" "$dir/PINNED"; }
version="$(pin version)"
integrity="$(pin integrity)"
want_sha="$(pin axe.min.js.sha256)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "axe-core@$version" >/dev/null)
tarball="$work/axe-core-$version.tgz"
got_integrity="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got_integrity" != "$integrity" ]; then
  echo "fetch-axe-core: npm tarball integrity $got_integrity, pinned $integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work" package/axe.min.js package/LICENSE
got_sha="$(sha256sum "$work/package/axe.min.js" | cut -d' ' -f1)"
if [ "$got_sha" != "$want_sha" ]; then
  echo "fetch-axe-core: axe.min.js sha256 $got_sha, pinned $want_sha" >&2
  exit 1
fi
if [ "${1:-}" = "--write" ]; then
  cp "$work/package/axe.min.js" "$work/package/LICENSE" "$dir/"
  echo "fetch-axe-core: vendored axe-core $version"
else
  cmp -s "$work/package/axe.min.js" "$dir/axe.min.js" && cmp -s "$work/package/LICENSE" "$dir/LICENSE" || {
    echo "fetch-axe-core: the vendored files differ from axe-core $version; run with --write" >&2
    exit 1
  }
  echo "fetch-axe-core: vendored axe-core $version matches npm"
fi
