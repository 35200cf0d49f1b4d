#!/usr/bin/env bash
# Installs and starts the real backing services the tests talk to, on loopback only:
#   MongoDB wire protocol : nx-27017 (PyPI), a MongoDB-compatible server on SQLite
#   STOMP broker          : RabbitMQ (Debian) with the rabbitmq_stomp plugin
# Usage: scripts/services.sh up|down|stop-started|status|restart-broker|kill-broker|queues [WORKDIR]   (default WORKDIR: ./.services)
# Idempotent: `up` installs only what is missing and starts only what is not running, and
# writes what it started to WORKDIR/started; `stop-started` stops those (and leaves alone
# servers that were running before `up`: someone else's).
set -euo pipefail

CMD="${1:-up}"
WORK="$(mkdir -p "${2:-.services}" && cd "${2:-.services}" && pwd)"
MONGO_PORT="${MONGO_PORT:-27017}"
STOMP_PORT="${STOMP_PORT:-61613}"
STOMPS_PORT="${STOMPS_PORT:-61614}"
# RabbitMQ drops root and runs as the rabbitmq user, which must reach its folders: keep them
# under /tmp, not inside the checkout (whose parents may be private, e.g. under /root).
RABBIT="${SKYNET_RABBIT_DIR:-/tmp/skynet-rabbitmq}"

export RABBITMQ_NODENAME=rabbit@localhost
export RABBITMQ_CONFIG_FILE="$RABBIT/rabbitmq"          # .conf is appended
export RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$RABBIT/mnesia"
export RABBITMQ_LOG_BASE="$RABBIT/log"
export RABBITMQ_PID_FILE="$RABBIT/rabbit.pid"
export ERL_EPMD_ADDRESS=127.0.0.1
export HOME="${HOME:-/root}"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

broker_pid() { # the Erlang VM this folder's pid file names, when it is running
  local pid
  pid="$(cat "$RABBIT/rabbit.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == beam* ]] && echo "$pid"
}

broker_alive() { [[ -n "$(broker_pid)" ]]; }


wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "services: port $1 did not open in $2 s" >&2
  return 1
}

wait_broker_port() { # port seconds: wait_port, and on failure why the broker did not open it
  wait_port "$1" "$2" && return 0
  echo "services: the last lines of $RABBITMQ_LOG_BASE/$RABBITMQ_NODENAME.log:" >&2
  tail -n 15 "$RABBITMQ_LOG_BASE/$RABBITMQ_NODENAME.log" >&2 2>/dev/null || true
  return 1
}

install() {
  local need=()
  command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
  dpkg -s python3-venv >/dev/null 2>&1 || need+=(python3-venv)
  if ((${#need[@]})); then
    echo "services: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  if [[ ! -x "$WORK/venv/bin/nx-27017" ]]; then
    echo "services: installing nx-27017 into $WORK/venv"
    python3 -m venv "$WORK/venv"
    "$WORK/venv/bin/pip" install -q nx-27017==0.8.1 neosqlite==1.17.2 pymongo stomp.py
  fi
  # dnspython: a DNS client nobody here wrote, for the `sky dns` tests.
  if ! "$WORK/venv/bin/python" -c "import dns.resolver" 2>/dev/null; then
    "$WORK/venv/bin/pip" install -q dnspython==2.9.2
  fi
  # OpenTelemetry's own API (traceparent built and read by a library nobody here wrote) and
  # its protobuf definitions (the OTLP receiver decodes our export with them); the OpenAPI
  # validator and schemathesis (the document checked, the live API fuzzed against it).
  if ! "$WORK/venv/bin/python" -c "import opentelemetry.proto, opentelemetry.trace, openapi_spec_validator, schemathesis" 2>/dev/null; then
    "$WORK/venv/bin/pip" install -q opentelemetry-api==1.45.2 opentelemetry-proto==1.45.2 openapi-spec-validator==0.9.0 schemathesis==4.32.5
  fi
}

broker_tls() {
  # A test authority and a certificate for the broker's STOMP-over-TLS listener (127.0.0.1),
  # made once with openssl: the engine's `sky certs` is not built when services start.
  local tls="$RABBIT/tls"
  [[ -f "$tls/broker.pem" ]] && return 0
  mkdir -p "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=Skynet test broker CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$tls/ca-key.pem" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/broker-key.pem" -out "$tls/broker.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$tls/ext.cnf"
  openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca-key.pem" -CAcreateserial -days 3650 \
    -extfile "$tls/ext.cnf" -out "$tls/broker.pem" 2>/dev/null
}

up() {
  install
  : >"$WORK/started"
  if ! port_open "$MONGO_PORT"; then
    nohup "$WORK/venv/bin/nx-27017" --db memory --host 127.0.0.1 -p "$MONGO_PORT" >"$WORK/nx-27017.log" 2>&1 &
    echo $! >"$WORK/nx-27017.pid"
    echo mongodb-wire >>"$WORK/started"
  fi
  wait_port "$MONGO_PORT" 30
  mkdir -p "$RABBIT/log" "$RABBIT/mnesia"
  broker_tls
  cat >"$RABBIT/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:5672
stomp.listeners.tcp.1 = 127.0.0.1:$STOMP_PORT
stomp.listeners.ssl.1 = 127.0.0.1:$STOMPS_PORT
ssl_options.cacertfile = $RABBIT/tls/ca.pem
ssl_options.certfile = $RABBIT/tls/broker.pem
ssl_options.keyfile = $RABBIT/tls/broker-key.pem
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
management.tcp.ip = 127.0.0.1
loopback_users.guest = true
CONF
  # A broker started before the TLS listener was configured gets it now.
  if port_open "$STOMP_PORT" && ! port_open "$STOMPS_PORT"; then
    rabbitmqctl -q shutdown >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do port_open "$STOMP_PORT" || break; sleep 0.1; done
  fi
  echo '[rabbitmq_stomp].' >"$RABBIT/enabled_plugins"
  local starting=0
  if ! port_open "$STOMP_PORT"; then
    starting=1
    # The broker is a test fixture and starts empty: an earlier run's durable queues (the
    # tests make them by the hundred) would be recovered one by one at start, and with about
    # 900 of them, more than its file handles, RabbitMQ never opened its ports (CI failed so).
    # Only when no broker of ours is alive; restart-broker and kill-broker keep the state.
    if ! broker_alive; then rm -rf "$RABBIT/mnesia" && mkdir -p "$RABBIT/mnesia"; fi
  fi
  # Debian's rabbitmq-server drops root and runs as the rabbitmq user: it must own its dirs.
  if id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RABBIT"; fi
  if ((starting)); then
    rabbitmq-server -detached >/dev/null 2>&1 || true
    echo rabbitmq >>"$WORK/started"
  fi
  wait_broker_port "$STOMP_PORT" 90
  wait_broker_port "$STOMPS_PORT" 30
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  echo "services: mongodb-wire 127.0.0.1:$MONGO_PORT, stomp 127.0.0.1:$STOMP_PORT and stomps 127.0.0.1:$STOMPS_PORT (CA $RABBIT/tls/ca.pem; login guest/guest, host:/)"
}

down() {
  if [[ -f "$WORK/nx-27017.pid" ]]; then
    kill "$(cat "$WORK/nx-27017.pid")" 2>/dev/null || true
    rm -f "$WORK/nx-27017.pid"
  fi
  rabbitmqctl -q shutdown >/dev/null 2>&1 || true
  epmd -kill >/dev/null 2>&1 || true
}

stop_started() {
  # Only what this checkout's last `up` started; servers that were already running stay.
  local started
  started="$(cat "$WORK/started" 2>/dev/null || true)"
  if grep -qx mongodb-wire <<<"$started" && [[ -f "$WORK/nx-27017.pid" ]]; then
    kill "$(cat "$WORK/nx-27017.pid")" 2>/dev/null || true
    rm -f "$WORK/nx-27017.pid"
  fi
  if grep -qx rabbitmq <<<"$started"; then
    rabbitmqctl -q shutdown >/dev/null 2>&1 || true
    epmd -kill >/dev/null 2>&1 || true
  fi
  : >"$WORK/started"
  [[ -z "$started" ]] || echo "services: stopped what this run started: $(tr '\n' ' ' <<<"$started")"
}

restart_broker() {
  # A real broker restart, for fault tests: the node stops and starts again; durable queues
  # and persistent messages survive it.
  rabbitmqctl -q stop_app >/dev/null
  rabbitmqctl -q start_app >/dev/null
  wait_port "$STOMP_PORT" 60
}

kill_broker() {
  # A crash, for fault tests: the broker's Erlang VM is SIGKILLed (no graceful stop, nothing
  # flushed on the way out), then started again. Only what it had confirmed survives.
  local pid
  pid="$(broker_pid || true)"
  if [[ -z "$pid" ]]; then
    echo "services: no running broker in $RABBIT/rabbit.pid" >&2
    return 1
  fi
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  if id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RABBIT"; fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_broker_port "$STOMP_PORT" 90
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
}

status() {
  port_open "$MONGO_PORT" && echo "mongodb-wire: up on $MONGO_PORT" || echo "mongodb-wire: down"
  port_open "$STOMP_PORT" && echo "stomp: up on $STOMP_PORT" || echo "stomp: down"
}

case "$CMD" in
  up) up ;;
  down) down ;;
  stop-started) stop_started ;;
  status) status ;;
  restart-broker) restart_broker ;;
  kill-broker) kill_broker ;;
  queues) rabbitmqctl -q list_queues name messages messages_unacknowledged ;;
  *) echo "usage: $0 up|down|stop-started|status|restart-broker|kill-broker|queues [WORKDIR]" >&2; exit 2 ;;
esac
