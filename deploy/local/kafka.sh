#!/usr/bin/env bash
# Local single-node Kafka (KRaft, broker+controller in one JVM) for development and CI,
# from the jars Maven Central publishes (deploy/local/pom.xml); no Docker, no tarball.
#   kafka.sh start     fetch jars if missing, format storage once, start, wait until ready
#   kafka.sh stop      SIGTERM the broker this script started (pid file), SIGKILL after 30 s
#   kafka.sh restart   stop, then start
#   kafka.sh env       print the connection settings
# Idempotent: starting a running broker or stopping a stopped one is harmless.
# A second broker (e.g. for chaos tests) needs its own OUTAGEDESK_LOCAL_DIR and
# OUTAGEDESK_KAFKA_PORT / OUTAGEDESK_KAFKA_CONTROLLER_PORT.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/target/kafka-libs"
STATE_DIR="${OUTAGEDESK_LOCAL_DIR:-/var/tmp/outagedesk-local}/kafka"
DATA="$STATE_DIR/data"
CONF="$STATE_DIR/server.properties"
LOG4J="$STATE_DIR/log4j2.properties"
TOOLS_LOG4J="$STATE_DIR/log4j2-tools.properties"
LOG="$STATE_DIR/broker.log"
PIDFILE="$STATE_DIR/broker.pid"
HOST=127.0.0.1
PORT="${OUTAGEDESK_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${OUTAGEDESK_KAFKA_CONTROLLER_PORT:-9093}"
READY_TIMEOUT_S="${OUTAGEDESK_KAFKA_READY_TIMEOUT_S:-90}"
PYTHON="${PYTHON:-python3}"

install_tools() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    echo "kafka: installing java and maven" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  fi
}

fetch_jars() {
  # Several brokers may start at once (the chaos tests start two): one fetch under a lock,
  # and a marker written only after the copy finished, so nobody starts on half the jars.
  local done_marker="$HERE/target/.kafka-libs-complete"
  mkdir -p "$HERE/target"
  (
    flock 9
    if [ ! -e "$done_marker" ]; then
      echo "kafka: fetching broker jars from Maven Central" >&2
      (cd "$HERE" && mvn -B -q package) && touch "$done_marker"
    fi
  ) 9>"$HERE/target/.fetch.lock"
  [ -e "$done_marker" ] && ls "$LIB"/kafka_2.13-*.jar >/dev/null 2>&1 \
    || { echo "kafka: no broker jars in $LIB" >&2; exit 1; }
}

write_config() {
  mkdir -p "$STATE_DIR"
  cat > "$CONF" <<CONF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
CONF
  cat > "$LOG4J" <<'CONF'
appender.out.type=Console
appender.out.name=OUT
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=info
rootLogger.appenderRef.out.ref=OUT
CONF
  cat > "$TOOLS_LOG4J" <<'CONF'
appender.out.type=Console
appender.out.name=OUT
appender.out.target=SYSTEM_ERR
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=warn
rootLogger.appenderRef.out.ref=OUT
CONF
}

format_storage() {
  if [ -s "$DATA/meta.properties" ]; then return; fi
  local cluster_id
  # 16 random bytes, URL-safe base64 without padding (Kafka's Uuid); never starting with
  # '-' so the tools do not read it as an option.
  cluster_id=$("$PYTHON" -c '
import base64, os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
    if not s.startswith("-"):
        print(s)
        break
')
  mkdir -p "$DATA"
  java -Xmx256m -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$LIB/*" \
    kafka.tools.StorageTool format --cluster-id="$cluster_id" --config "$CONF" >/dev/null
  echo "kafka: formatted $DATA (cluster $cluster_id)" >&2
}

running_pid() {
  # The pid in our pid file, if that process is alive and is our broker.
  [ -s "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $CONF" || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

admin_answers() {
  "$PYTHON" - "$HOST:$PORT" <<'PY' >/dev/null 2>&1
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient

async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await asyncio.wait_for(admin.start(), 10)
    try:
        await asyncio.wait_for(admin.describe_cluster(), 10)
    finally:
        await asyncio.wait_for(admin.close(), 10)

asyncio.run(main())
PY
}

fail_with_log() {
  echo "kafka: $1; log tail ($LOG):" >&2
  tail -n 40 "$LOG" >&2 || true
  exit 1
}

start() {
  if pid=$(running_pid); then
    echo "kafka: already running (pid $pid)" >&2
    env_out
    return
  fi
  if port_open; then
    echo "kafka: $HOST:$PORT is taken by a process this script did not start" >&2
    exit 1
  fi
  install_tools
  fetch_jars
  write_config
  format_storage
  local t0; t0=$(date +%s.%N)
  # setsid + nohup: the broker outlives this shell and its session; output to the log file.
  setsid nohup java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dkafka.logs.dir="$STATE_DIR" \
    -Dlog4j2.configurationFile="$LOG4J" -cp "$LIB/*" \
    kafka.Kafka "$CONF" > "$LOG" 2>&1 < /dev/null &
  local pid=$!
  echo "$pid" > "$PIDFILE"
  local deadline=$(( $(date +%s) + READY_TIMEOUT_S ))
  until port_open && admin_answers; do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; fail_with_log "broker exited"; }
    [ "$(date +%s)" -lt "$deadline" ] || fail_with_log "not ready after ${READY_TIMEOUT_S}s (pid $pid still running)"
    sleep 0.5
  done
  local t1; t1=$(date +%s.%N)
  printf 'kafka: ready on %s:%s (pid %s) in %.1fs\n' "$HOST" "$PORT" "$pid" \
    "$(awk "BEGIN{print $t1 - $t0}")" >&2
  env_out
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$PIDFILE"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka: no exit 30 s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
  echo "kafka: stopped" >&2
}

env_out() {
  echo "OUTAGEDESK_TEST_KAFKA=$HOST:$PORT"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  env) env_out ;;
  *) echo "usage: $0 start|stop|restart|env" >&2; exit 2 ;;
esac
