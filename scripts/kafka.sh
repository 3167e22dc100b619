#!/usr/bin/env bash
# A real single-node Apache Kafka broker (KRaft, broker+controller in one JVM)
# on 127.0.0.1 for the integration suite. No Docker, no Kafka distribution
# tarball: the broker jars come from Maven Central through scripts/kafka/pom.xml.
#
#   scripts/kafka.sh start      fetch jars (once), format fresh storage, start, wait
#                               until a client is answered; last stdout line: the bootstrap
#   scripts/kafka.sh stop       SIGTERM the broker's process group, SIGKILL after 20 s
#   scripts/kafka.sh status     exit 0 and print the bootstrap if running and answering
#   scripts/kafka.sh bootstrap  print 127.0.0.1:<port>
#
# Variables (see docs/kafka.md):
#   HUB_KAFKA_VERSION          Kafka version to fetch (default below)
#   HUB_KAFKA_HOME             jar cache (default ~/.cache/hub-stream/kafka-<version>)
#   HUB_KAFKA_PORT             client listener port (19092)
#   HUB_KAFKA_CONTROLLER_PORT  controller listener port (19093)
#   HUB_KAFKA_WORKDIR          config, data, logs, pid file (/tmp/hub-kafka-$UID)
#   HUB_KAFKA_START_TIMEOUT    seconds to wait for the broker (120)
#   HUB_KAFKA_HEAP             broker -Xmx (512m)
#   JAVA                       java executable (java)
#
# Progress goes to stderr; stdout carries only what callers parse.
set -euo pipefail

KAFKA_VERSION="${HUB_KAFKA_VERSION:-4.3.1}"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"
CACHE="${HUB_KAFKA_HOME:-${HOME:-/tmp}/.cache/hub-stream/kafka-$KAFKA_VERSION}"
LIBS="$CACHE/libs"
PORT="${HUB_KAFKA_PORT:-19092}"
CTRL_PORT="${HUB_KAFKA_CONTROLLER_PORT:-19093}"
WORKDIR="${HUB_KAFKA_WORKDIR:-/tmp/hub-kafka-${UID:-$(id -u)}}"
START_TIMEOUT="${HUB_KAFKA_START_TIMEOUT:-120}"
HEAP="${HUB_KAFKA_HEAP:-512m}"
JAVA="${JAVA:-java}"
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"
PIDFILE="$WORKDIR/kafka.pid"
SERVER_LOG="$WORKDIR/server.log"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    echo "usage: $0 start|stop|status|bootstrap" >&2
    exit 2
}

now() { date +%s; }

check_java() {
    command -v "$JAVA" >/dev/null 2>&1 || die "'$JAVA' not found: Kafka $KAFKA_VERSION needs Java 17 or newer"
    local v
    v="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    case "$v" in
        1.*|9|1[0-6]|"") die "Kafka $KAFKA_VERSION needs Java 17 or newer; '$JAVA' is ${v:-unknown}" ;;
    esac
}

# --- jars -------------------------------------------------------------------

# What the cache was built from: a change of version or pom refetches.
cache_stamp() {
    { echo "kafka=$KAFKA_VERSION"; sha256sum "$POM" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1
}

cache_complete() {
    [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$(cache_stamp)" ]] \
        && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null
}

fetch_jars() {
    if cache_complete; then
        return 0
    fi
    command -v mvn >/dev/null 2>&1 || die "mvn not found: it fetches the Kafka jars (apt-get install maven)"
    mkdir -p "$CACHE"
    # One fetch at a time per cache; a second caller waits, then finds it complete.
    exec 8>"$CACHE/.lock"
    flock -w 600 8 || die "timed out waiting for the lock on $CACHE"
    if cache_complete; then
        exec 8>&-
        return 0
    fi
    log "fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies into $LIBS"
    local tmp="$CACHE/libs.tmp.$$" t0
    t0=$(now)
    rm -rf "$CACHE"/libs.tmp.*   # leftovers of an interrupted fetch
    # Maven's output goes to a log, shown only when it fails.
    if ! mvn -B -q --no-transfer-progress -Dstyle.color=never -f "$POM" \
            -Dkafka.version="$KAFKA_VERSION" \
            dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" \
            </dev/null >"$CACHE/mvn.log" 2>&1; then
        cat "$CACHE/mvn.log" >&2
        rm -rf "$tmp"
        die "maven could not fetch Kafka $KAFKA_VERSION (output above, also in $CACHE/mvn.log)"
    fi
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after the fetch"; }
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    cache_stamp >"$CACHE/.complete"
    exec 8>&-
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars in $(( $(now) - t0 )) s"
}

# --- process ----------------------------------------------------------------

# The pid in the pid file, if that process is alive and is our broker.
running_pid() {
    [[ -f "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: the command line must be our kafka.Kafka.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $WORKDIR/server.properties" || return 1
    echo "$pid"
}

# Run a Kafka tool class on the cached classpath, quietly.
kafka_tool() {
    "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xshare:auto \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.properties" \
        -cp "$LIBS/*" "$@"
}

# A real client round trip: list topics through the admin API.
answers() {
    [[ -d "$LIBS" ]] || return 1
    timeout 30 "$JAVA" -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/tools-log4j2.properties" \
        -cp "$LIBS/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$BOOTSTRAP" --command-config "$WORKDIR/client.properties" \
        --list >/dev/null 2>&1
}

port_open() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

cmd_stop() {
    local pid pgid mypgid deadline
    if ! pid="$(running_pid)"; then
        rm -f "$PIDFILE"
        log "no broker running (workdir $WORKDIR)"
        return 0
    fi
    pgid="$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ' || true)"
    mypgid="$(ps -o pgid= -p $$ | tr -d ' ')"
    log "stopping broker pid $pid"
    # The broker was started as the leader of its own process group: signal
    # the group, but never our own.
    if [[ -n "$pgid" && "$pgid" == "$pid" && "$pgid" != "$mypgid" ]]; then
        kill -TERM -- "-$pgid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    deadline=$(( $(now) + 20 ))
    while kill -0 "$pid" 2>/dev/null && (( $(now) < deadline )); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "broker pid $pid still alive after 20 s: SIGKILL"
        if [[ -n "$pgid" && "$pgid" == "$pid" && "$pgid" != "$mypgid" ]]; then
            kill -KILL -- "-$pgid" 2>/dev/null || true
        else
            kill -KILL "$pid" 2>/dev/null || true
        fi
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

write_config() {
    cat >"$WORKDIR/server.properties" <<EOF
# Written by scripts/kafka.sh: one combined KRaft broker+controller on loopback.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CTRL_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CTRL_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$WORKDIR/data
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
    cat >"$WORKDIR/client.properties" <<EOF
request.timeout.ms=5000
default.api.timeout.ms=10000
EOF
}

# A cluster id as Kafka's Uuid.randomUuid().toString() makes them: 16 random
# bytes, URL-safe base64 without padding, not starting with '-'.
random_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* && "$id" != AAAAAAAAAAAAAAAAAAAAA* ]] && { echo "$id"; return; }
    done
}

cmd_start() {
    local t0 pid cid deadline
    t0=$(now)
    check_java
    command -v flock >/dev/null 2>&1 || die "flock not found (util-linux)"
    fetch_jars

    mkdir -p "$WORKDIR"
    if running_pid >/dev/null; then
        log "a broker from a previous start is running: stopping it first"
        cmd_stop
    fi
    rm -f "$PIDFILE"
    for p in "$PORT" "$CTRL_PORT"; do
        if port_open "$p"; then
            die "port $HOST:$p is already in use by another process (set HUB_KAFKA_PORT / HUB_KAFKA_CONTROLLER_PORT)"
        fi
    done

    rm -rf "$WORKDIR/data"
    rm -f "$SERVER_LOG" "$WORKDIR/kafka.out"
    mkdir -p "$WORKDIR/data"
    write_config

    cid="$(random_cluster_id)"
    if ! kafka_tool kafka.tools.StorageTool format \
            --cluster-id "$cid" --config "$WORKDIR/server.properties" \
            >"$WORKDIR/format.out" 2>&1; then
        cat "$WORKDIR/format.out" >&2
        die "formatting KRaft storage in $WORKDIR/data failed"
    fi

    log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (controller :$CTRL_PORT, workdir $WORKDIR)"
    # setsid: the broker leads its own process group (and session), so `stop`
    # can signal it and whatever it spawned without touching the caller's
    # group. The inner shell writes its own pid, then execs java in place, so
    # the pid file names the JVM even if setsid had to fork.
    (
        cd "$WORKDIR"
        # shellcheck disable=SC2016  # $$ and $1 belong to the inner shell
        exec setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' hub-kafka "$PIDFILE" \
            nohup "$JAVA" -Xmx"$HEAP" -Xms"$HEAP" -XX:+UseG1GC \
            -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
            -Dkafka.logs.dir="$WORKDIR" \
            -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
            -cp "$LIBS/*" kafka.Kafka "$WORKDIR/server.properties" \
            </dev/null >"$WORKDIR/kafka.out" 2>&1
    ) &
    for _ in $(seq 100); do
        [[ -s "$PIDFILE" ]] && break
        sleep 0.05
    done
    pid="$(cat "$PIDFILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || fail_start "the broker process did not start"

    # The timeout counts from the launch, not from the (first-run) download.
    deadline=$(( $(now) + START_TIMEOUT ))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            fail_start "the broker exited during startup"
        fi
        if port_open "$PORT" && answers; then
            break
        fi
        if (( $(now) >= deadline )); then
            cmd_stop >/dev/null 2>&1 || true
            fail_start "the broker did not answer on $BOOTSTRAP within ${START_TIMEOUT} s"
        fi
        sleep 0.5
    done
    log "ready in $(( $(now) - t0 )) s (pid $pid, log $SERVER_LOG)"
    echo "$BOOTSTRAP"
}

fail_start() {
    {
        echo "kafka.sh: error: $1"
        if [[ -s "$WORKDIR/kafka.out" ]]; then
            echo "--- tail of $WORKDIR/kafka.out"
            tail -n 30 "$WORKDIR/kafka.out"
        fi
        echo "--- tail of $SERVER_LOG"
        tail -n 60 "$SERVER_LOG" 2>/dev/null || echo "(no server.log)"
    } >&2
    rm -f "$PIDFILE"
    exit 1
}

cmd_status() {
    local pid
    if pid="$(running_pid)" && answers; then
        echo "$BOOTSTRAP"
        return 0
    fi
    if [[ -n "${pid:-}" ]]; then
        log "broker pid $pid is running but does not answer on $BOOTSTRAP"
    else
        log "no broker running (workdir $WORKDIR)"
    fi
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    bootstrap) echo "$BOOTSTRAP" ;;
    *) usage ;;
esac
