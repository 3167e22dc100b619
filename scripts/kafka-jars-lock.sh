#!/usr/bin/env bash
# Regenerates hub_stream/local/kafka-jars.lock: the Apache Kafka broker's
# runtime jars (scripts/kafka/pom.xml, resolved by Maven at development time),
# one line per jar: groupId:artifactId:version  sha256  bytes.
# A user's machine never runs this: hub_stream/local/kafka.py fetches exactly
# these jars from Maven Central and checks each SHA-256.
#   scripts/kafka-jars-lock.sh            (needs Maven 3 and network)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pom="$root/scripts/kafka/pom.xml"
lock="$root/hub_stream/local/kafka-jars.lock"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
mvn -B -q --no-transfer-progress -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -Dmdep.useRepositoryLayout=true -DoutputDirectory="$tmp/repo" \
    </dev/null >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; exit 1; }
{
  echo "# Apache Kafka $version broker (KRaft) runtime jars, from Maven Central."
  echo "# Made by scripts/kafka-jars-lock.sh from scripts/kafka/pom.xml; do not edit by hand."
  echo "# groupId:artifactId:version sha256 bytes"
  (cd "$tmp/repo" && find . -name '*.jar' | sed 's:^\./::' | LC_ALL=C sort) | while read -r path; do
    # <group path>/<artifact>/<version>/<artifact>-<version>.jar
    version_dir="$(dirname "$path")"; artifact_dir="$(dirname "$version_dir")"
    v="$(basename "$version_dir")"; a="$(basename "$artifact_dir")"
    g="$(dirname "$artifact_dir" | tr / .)"
    [ "$(basename "$path")" = "$a-$v.jar" ] || { echo "unexpected jar name: $path" >&2; exit 1; }
    echo "$g:$a:$v $(sha256sum "$tmp/repo/$path" | cut -d' ' -f1) $(stat -c %s "$tmp/repo/$path")"
  done
} >"$lock.tmp"
mv "$lock.tmp" "$lock"
echo "wrote $lock ($(grep -vc '^#' "$lock") jars)" >&2
