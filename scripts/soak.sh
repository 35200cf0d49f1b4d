#!/usr/bin/env bash
# The soak (not part of `make test`): `sky drill` over the example routes for SOAK_MINUTES
# (default 10) on `sky run`, with every service step crossing to two `uppercase` instances in
# processes of their own, one of which the drill SIGKILLs and starts again every 30 s.
# Two drills at once: the example route `text` over HTTP and its drop folder, and a soak route
# over a CSV folder and a STOMP queue. Their reports (every input accounted for by id, latency
# before, during and after each kill, the memory and descriptors of `sky run`) go to
# Benchmarks/SOAK.md, appended to BENCHMARKS.md. Exits non-zero when a drill does: an input
# missing or answered twice where its source does not allow it.
# SKY_BIN runs a given binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
scripts/bootstrap.sh
scripts/services.sh up
if [ -z "${SKY_BIN:-}" ]; then
  swift build -c release --product sky
  SKY_BIN="$(swift build -c release --show-bin-path)/sky"
fi
MINUTES="${SOAK_MINUTES:-10}"
WORK="$(mktemp -d /tmp/skynet-soak.XXXXXX)"
trap 'pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
REGISTRY="sqlite:$WORK/registry.sqlite"
HTTP=127.0.0.1:18700
QUEUE="/queue/soak-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"  # fresh queues: nothing from an earlier run

mkdir -p "$WORK/Routes" "$WORK/drop/rows"
cp Routes/*.yaml "$WORK/Routes/"
cat >"$WORK/Routes/soak-queue.yaml" <<ROUTE
name: soak-queue
timeout: 5s
from:
  - csv: { dir: drop/rows }
  - stomp: { destination: $QUEUE.in, replyTo: $QUEUE.out, deadLetter: $QUEUE.dead }
steps:
  - service: uppercase
    retry: { attempts: 4, backoff: 20ms, max: 200ms }
ROUTE

cd "$WORK"
# The engine without uppercase in-process, so every call crosses to the instances killed.
"$SKY_BIN" run --routes Routes --http "$HTTP" --services wordcount,audit,echo --registry "$REGISTRY" --log-level warning >run.log 2>&1 &
for n in 1 2; do
  "$SKY_BIN" service uppercase --registry "$REGISTRY" --ttl 2 --heartbeat 0.5 --log-level warning >"uppercase-$n.log" 2>&1 &
done
# Ready when the route answers through an instance (the router has them in its cache).
for _ in $(seq 1 600); do
  if curl -sf -o /dev/null -X POST -d '{"text":"ready"}' "http://$HTTP/routes/text"; then break; fi
  sleep 0.1
done
curl -sf -o /dev/null -X POST -d '{"text":"ready"}' "http://$HTTP/routes/text" || { echo "soak: sky run did not answer"; tail -20 run.log; exit 1; }

set +e
"$SKY_BIN" drill --route text --faults "kill:uppercase@every 30s/1s" --for "${MINUTES}m" --rate 50 --concurrency 2 \
  --registry "$REGISTRY" --logs "$WORK/drill" --report text.json >text.txt 2>text.err &
TEXT=$!
"$SKY_BIN" drill --route soak-queue --source csv,stomp --for "${MINUTES}m" --rate 50 \
  --registry "$REGISTRY" --logs "$WORK/drill" --report queue.json >queue.txt 2>queue.err &
QUEUED=$!
wait "$TEXT"; text_status=$?
wait "$QUEUED"; queue_status=$?
set -e
cat text.err queue.err >&2

cd "$ROOT"
# Kept for BENCHMARKS.md (make bench appends it); every figure is the drills' own.
{
  echo "## Soak (\`make soak\`, $(date -u +%Y-%m-%d))"
  echo
  echo "Two \`sky drill\` runs at once for ${MINUTES} minutes on \`sky run\`: the example route \`text\` over HTTP and its drop folder, and a route over a CSV folder and a STOMP queue, 50 inputs a second per source. Every service step goes to one of two \`uppercase\` instances in their own processes; the first drill SIGKILLs one every 30 s and starts it again a second later. Build: ${SKY_BIN}."
  echo
  echo '```'
  cat "$WORK/text.txt"
  echo
  cat "$WORK/queue.txt"
  echo '```'
} >Benchmarks/SOAK.md
cat Benchmarks/SOAK.md >>BENCHMARKS.md
# A missing input fails the soak, after its report is kept.
[ "$text_status" -eq 0 ] && [ "$queue_status" -eq 0 ]
