#!/usr/bin/env bash
# Runs every test: unit tests of each module and end-to-end tests that start the real `sky`
# binary. Installs what the tests need first. Builds once and reuses that build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium (and a font) for the dashboard's browser test; tmux drives `sky cli` in a real terminal;
# promtool (Debian's prometheus package) lints /metrics; dig (bind9-dnsutils) asks `sky dns`.
# man-db, zsh and fish check what `make install` installs (man pages, completions). openssl
# makes the broker's test certificate and checks the listeners' TLS; iproute2 (`ip netns`)
# makes the partition tests' hosts.
scripts/bootstrap.sh chromium fonts-dejavu-core libgl1-mesa-dri tmux prometheus bind9-dnsutils socat man-db zsh fish openssl iproute2
# The real MongoDB-wire server and STOMP broker the tests talk to, on loopback; stopped again
# at the end when this run started them (ones already running are left as they were).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A ports=([mongodb-wire]=27017 [rabbitmq]=61613)
running_before=()
for name in "${!ports[@]}"; do port_open "${ports[$name]}" && running_before+=("$name"); done
scripts/services.sh up
# What `up` says it started is exactly what was not running before it (so the stop at the
# end never stops someone else's server, and never leaves ours running).
for name in "${!ports[@]}"; do
  was_running=no; [[ " ${running_before[*]} " == *" $name "* ]] && was_running=yes
  recorded=no; grep -qx "$name" .services/started && recorded=yes
  if [[ $was_running == "$recorded" ]]; then
    echo "test: services.sh up recorded $name as started=$recorded, but it was running before: $was_running" >&2
    exit 1
  fi
done
stop_services() {
  local status=$?
  scripts/services.sh stop-started
  local name
  for name in "${!ports[@]}"; do
    [[ " ${running_before[*]} " == *" $name "* ]] && continue
    for _ in $(seq 1 100); do port_open "${ports[$name]}" || break; sleep 0.1; done
    if port_open "${ports[$name]}"; then
      echo "test: $name was started by this run and is still running after services.sh stop-started" >&2
      status=1
    fi
  done
  exit "$status"
}
trap stop_services EXIT
# A broker this run started starts empty: an earlier run's hundreds of durable queues once kept
# RabbitMQ recovering past the wait, and CI failed before a test ran.
if grep -qx rabbitmq .services/started && [[ -n "$(scripts/services.sh queues)" ]]; then
  echo "test: the broker this run started holds queues from before it:" >&2
  scripts/services.sh queues | head -5 >&2
  exit 1
fi

echo "test: building (debug, with tests)"
swift build --build-tests
SKY_BIN="$(swift build --show-bin-path)/sky"
export SKY_BIN

# README's "Layout" promises the module arrows; a dependency that breaks them fails here.
python3 scripts/check-layout.py
# Every public declaration documented, and the DocC catalogs build without a warning.
python3 scripts/check-doc-comments.py
scripts/docs.sh
# `make install`: man pages from the help text, completions for bash, zsh and fish.
scripts/check-install.sh

echo "test: running"
# Each partition test writes its row here; only this run's rows make the table.
rm -rf .build/partitions
# One test at a time: the end-to-end tests start several processes each, and on a 2-core
# machine running them side by side only makes their timing noise.
status=0
swift test --skip-build --no-parallel "$@" || status=$?
# The partition table in docs/PARTITIONS.md and the README, from the figures just observed
# (rows that did not hold say so).
python3 scripts/partitions.py
exit "$status"
