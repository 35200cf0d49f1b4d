#!/usr/bin/env bash
# Benchmarks (not part of `make test`): each figure is a ratio against a peer measured in the
# same run, on the same machine, with the same load generator. Results go to BENCHMARKS.md.
#
#   1. HTTP route overhead: `sky run`'s `text` route (3 in-process services, one of them
#      async) against a bare Hummingbird server answering the same request, wrk on loopback.
#
# The other benchmarks of issue #6 (cross-process chain vs plain hops and Celery/nameko, files,
# CSV vs Python, STOMP vs the broker's own limit, failure detection, scaling) are not written yet.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh wrk
export SKYNET_BENCHMARKS=1
echo "bench: building release binaries (sky and the bare Hummingbird peer)"
swift build -c release --product sky
swift build -c release --product hello-server
BIN="$(swift build -c release --show-bin-path)"

WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DURATION="${BENCH_DURATION:-10}"
THREADS=2
CONNECTIONS="${BENCH_CONNECTIONS:-32}"

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"text":"hello big world"}'
wrk.headers["Content-Type"] = "application/json"
LUA

wait_port() {
  for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: port $1 did not open" >&2; return 1
}

# Runs wrk against URL and prints "requests/s p50 p99".
measure() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$1")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out")
  echo "$rps $p50 $p99 ${errors:-none}"
}

"$BIN/hello-server" 18182 >"$WORK/hello.log" 2>&1 &
wait_port 18182
mkdir -p "$WORK/routes" && cp Routes/text.yaml "$WORK/routes/"
# No drop-folder watching in the measurement: the route's HTTP path only.
sed -i '/^from:/,/^steps:/{/^steps:/!d}' "$WORK/routes/text.yaml"
(cd "$WORK" && "$BIN/sky" run --routes routes --http 127.0.0.1:18181 --registry "sqlite:$WORK/registry.sqlite" --log-level warning >"$WORK/sky.out" 2>"$WORK/sky.err") &
wait_port 18181
sleep 1

echo "bench: warming up"
wrk -t1 -c4 -d2s -s "$WORK/post.lua" http://127.0.0.1:18182/routes/text >/dev/null
wrk -t1 -c4 -d2s -s "$WORK/post.lua" http://127.0.0.1:18181/routes/text >/dev/null
echo "bench: bare Hummingbird"
read -r peer_rps peer_p50 peer_p99 peer_err <<<"$(measure http://127.0.0.1:18182/routes/text)"
echo "bench: sky run, route text"
read -r sky_rps sky_p50 sky_p99 sky_err <<<"$(measure http://127.0.0.1:18181/routes/text)"
answer=$(curl -s -X POST http://127.0.0.1:18181/routes/text -H 'Content-Type: application/json' -d '{"text":"hello big world"}')
ratio=$(awk -v a="$sky_rps" -v b="$peer_rps" 'BEGIN { printf "%.2f", a / b }')

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(swift --version 2>/dev/null | head -1)"
cat >BENCHMARKS.md <<MD
# Benchmarks

Written by \`make bench\` ($(date -u +%Y-%m-%d)). Every figure is measured in the same run as
its peer, on the same machine, with the same load; absolute numbers on a shared 2-core
machine are noise, the ratios are the result.

Machine: $machine. Load: wrk, $THREADS threads, $CONNECTIONS connections, ${DURATION} s per side,
POST of \`{"text":"hello big world"}\` on loopback, after a 2 s warm-up. Release builds.

| Benchmark | Engine | Peer | Ratio (engine / peer) | Goal |
|---|---|---|---|---|
| 1. HTTP route overhead: \`sky run\` route \`text\` (uppercase → wordcount merge → audit async, in-process) vs bare Hummingbird answering the same POST | $sky_rps req/s, p50 $sky_p50, p99 $sky_p99 (errors: $sky_err) | $peer_rps req/s, p50 $peer_p50, p99 $peer_p99 (errors: $peer_err) | **$ratio** of throughput | ≥ 0.8 |

The engine's answer during the run: \`$answer\`.

Not measured yet (issue #6): the cross-process chain against plain HTTP hops and against
Celery and nameko; files against a plain rename-read-write loop; CSV against Python's csv
module, with peak RSS; STOMP against a bare consumer/producer on the same RabbitMQ; failure
detection under load; scaling with instances and routers.

MD
# The written analysis (profiles, what was changed and why) is kept across runs.
cat Benchmarks/ANALYSIS.md >>BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
cat BENCHMARKS.md
