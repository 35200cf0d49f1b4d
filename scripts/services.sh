#!/usr/bin/env bash
# Installs and starts the real backing services the tests talk to, on loopback only:
#   MongoDB wire protocol : nx-27017 (PyPI), a MongoDB-compatible server on SQLite
#   STOMP broker          : RabbitMQ (Debian) with the rabbitmq_stomp plugin
# Usage: scripts/services.sh up|down|status|restart-broker|kill-broker|queues [WORKDIR]   (default WORKDIR: ./.services)
# Idempotent: `up` installs only what is missing and starts only what is not running.
set -euo pipefail

CMD="${1:-up}"
WORK="$(mkdir -p "${2:-.services}" && cd "${2:-.services}" && pwd)"
MONGO_PORT="${MONGO_PORT:-27017}"
STOMP_PORT="${STOMP_PORT:-61613}"
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

wait_port() { # port seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "services: port $1 did not open in $2 s" >&2
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
}

up() {
  install
  if ! port_open "$MONGO_PORT"; then
    nohup "$WORK/venv/bin/nx-27017" --db memory --host 127.0.0.1 -p "$MONGO_PORT" >"$WORK/nx-27017.log" 2>&1 &
    echo $! >"$WORK/nx-27017.pid"
  fi
  wait_port "$MONGO_PORT" 30
  mkdir -p "$RABBIT/log" "$RABBIT/mnesia"
  cat >"$RABBIT/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:5672
stomp.listeners.tcp.1 = 127.0.0.1:$STOMP_PORT
management.tcp.ip = 127.0.0.1
loopback_users.guest = true
CONF
  echo '[rabbitmq_stomp].' >"$RABBIT/enabled_plugins"
  # Debian's rabbitmq-server drops root and runs as the rabbitmq user: it must own its dirs.
  if id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RABBIT"; fi
  if ! port_open "$STOMP_PORT"; then
    rabbitmq-server -detached >/dev/null 2>&1 || true
  fi
  wait_port "$STOMP_PORT" 90
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
  echo "services: mongodb-wire 127.0.0.1:$MONGO_PORT, stomp 127.0.0.1:$STOMP_PORT (login guest/guest, host:/)"
}

down() {
  if [[ -f "$WORK/nx-27017.pid" ]]; then
    kill "$(cat "$WORK/nx-27017.pid")" 2>/dev/null || true
    rm -f "$WORK/nx-27017.pid"
  fi
  rabbitmqctl -q shutdown >/dev/null 2>&1 || true
  epmd -kill >/dev/null 2>&1 || true
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
  pid="$(cat "$RABBIT/rabbit.pid" 2>/dev/null || true)"
  if [[ -z "$pid" ]] || ! kill -0 "$pid" 2>/dev/null; then
    echo "services: no running broker in $RABBIT/rabbit.pid" >&2
    return 1
  fi
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  if id rabbitmq >/dev/null 2>&1; then chown -R rabbitmq:rabbitmq "$RABBIT"; fi
  rabbitmq-server -detached >/dev/null 2>&1 || true
  wait_port "$STOMP_PORT" 90
  rabbitmqctl -q await_startup >/dev/null 2>&1 || true
}

status() {
  port_open "$MONGO_PORT" && echo "mongodb-wire: up on $MONGO_PORT" || echo "mongodb-wire: down"
  port_open "$STOMP_PORT" && echo "stomp: up on $STOMP_PORT" || echo "stomp: down"
}

case "$CMD" in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-broker) restart_broker ;;
  kill-broker) kill_broker ;;
  queues) rabbitmqctl -q list_queues name messages messages_unacknowledged ;;
  *) echo "usage: $0 up|down|status|restart-broker|kill-broker|queues [WORKDIR]" >&2; exit 2 ;;
esac
