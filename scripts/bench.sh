#!/usr/bin/env bash
# Benchmarks (not part of `make test`): every figure is a ratio against a peer or a limit
# measured in the same run, on the same machine, with the same load and guarantees. Each side
# runs BENCH_ROUNDS times, alternating (engine, peer, engine, peer …), after a warm-up; the
# table shows medians with the spread (min–max). BENCHMARKS.md, analysis included, is written
# from the figures of this run only.
#
#   1. HTTP route: `sky run` route `text` vs a Hummingbird handler doing the same work, and
#      vs a constant answer (the floor).
#   2. Cross-process chain: `sky router` + 3 `sky service` processes vs the same 3 hops called
#      by a plain forwarder (the limit); then, under one Python driver for all, vs Celery
#      (chain of 3 tasks, the best of the pools tried) and nameko (4 RPC services, 4 processes).
#   3. Files: 20,000 JSON files in the folder before the clock starts, vs a loop doing the
#      same work with the same parallelism and an fsync per answer; the loop without the
#      fsync as the floor.
#   4. CSV: 1,000,000 rows, vs Python doing the same job (dict → JSON line, fsync and a synced
#      checkpoint as often as the engine made them in the same round: every 500 rows or more);
#      Python's bare csv read/write as the floor; peak RSS of
#      `sky run` for 10,000,000 rows vs 100,000.
#   5. STOMP: 100,000 messages, vs a bare relay doing the engine's work (client-individual
#      ack, persistent reply, ack on receipt); a one-way pair as a second reference; CPU per
#      message of the engine, the relay and the broker, and the engine's per-piece table.
#   6. Failure detection: SIGKILL one of two instances under load; every request without a
#      2xx answer (status, socket error or timeout) counted.
#   7. TLS: the route of 1 and the chain of 2 with TLS on, as a ratio to the same without.
#
# Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION (s per wrk side, 10), BENCH_CONNECTIONS
# (32), BENCH_FILES (20000), BENCH_ROWS (1000000), BENCH_MEMORY_ROWS (10000000) and
# BENCH_MEMORY_SMALL (100000) for the memory row, BENCH_MESSAGES (100000), BENCH_PEER_CHAINS
# (2000), BENCH_CLIENTS (Python driver processes, 8), BENCH_CELERY_POOLS ("prefork threads gevent")
# and BENCH_CELERY_CONCURRENCY ("2 8 16"; Celery runs with the best pair it finds),
# BENCH_INSTANCES (instances of each service in benchmark 2, 1), BENCH_ROUTERS (routers sharing
# benchmark 2's load, 1), BENCH_ONLY (e.g. "1 4"), BENCH_BASELINE (the commit benchmark 1c
# compares with, 8459a65; none to leave it out).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

scripts/bootstrap.sh wrk e2fsprogs
scripts/services.sh up
VENV_PY="$ROOT/.services/venv/bin/python"
PEERS="$ROOT/.services/bench-venv"
if [ ! -x "$PEERS/bin/celery" ] || [ ! -x "$PEERS/bin/nameko" ]; then
  echo "bench: installing the peers (celery, nameko) into .services/bench-venv"
  python3 -m venv "$PEERS"
fi
# Peer versions are pinned, and printed in BENCHMARKS.md.
"$PEERS/bin/pip" install -q "celery==5.4.0" "nameko==2.14.1" "stomp.py==8.1.2" "eventlet<0.36" "gevent==26.9.0"
PEER_VERSIONS="$("$PEERS/bin/pip" list --format=freeze 2>/dev/null | grep -iE '^(celery|nameko|kombu)==' | paste -sd, - | sed 's/,/, /g')"
STOMP_VERSION="$("$VENV_PY" -m pip list --format=freeze 2>/dev/null | grep -i '^stomp.py==' || true)"

export SKYNET_BENCHMARKS=1
echo "bench: building release binaries (sky and the peers built from Benchmarks/)"
swift build -c release --product sky
swift build -c release --product hello-server
swift build -c release --product plain-hops
BIN="$(swift build -c release --show-bin-path)"
# Benchmark 1's baseline: the engine as of a fixed earlier commit, built once into
# .build-baseline/COMMIT (kept between runs), so "a route using none of the newer features costs
# no more than before them" is measured in the same run, not against an old figure.
# BENCH_BASELINE=none leaves it out.
BASELINE="${BENCH_BASELINE:-8459a65}"
BASELINE_BIN=""
if [[ " ${BENCH_ONLY:-1 2 3 4 5 6 7 8} " == *" 1 "* ]] && [ "$BASELINE" != "none" ]; then
  BASELINE_DIR="$ROOT/.build-baseline/$BASELINE"
  if [ ! -x "$BASELINE_DIR/.build/release/sky" ]; then
    echo "bench: building the baseline engine ($BASELINE) once into $BASELINE_DIR"
    rm -rf "$BASELINE_DIR" && mkdir -p "$BASELINE_DIR"
    git archive "$BASELINE" | tar -x -C "$BASELINE_DIR"
    (cd "$BASELINE_DIR" && swift build -c release --product sky)
  fi
  BASELINE_BIN="$BASELINE_DIR/.build/release/sky"
fi

WORK="$(mktemp -d /tmp/skynet-bench.XXXXXX)"
PIDS=()
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" -ne 0 ]; then
    mkdir -p .build/bench-logs && cp "$WORK"/*.log .build/bench-logs/ 2>/dev/null || true
    echo "bench: failed; the processes' logs are in .build/bench-logs/" >&2
  fi
  for mounted in "$WORK"/*.mnt; do [ -d "$mounted" ] && umount "$mounted" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

ROUNDS="${BENCH_ROUNDS:-3}"
DURATION="${BENCH_DURATION:-10}"
THREADS=2
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
FILES="${BENCH_FILES:-20000}"
ROWS="${BENCH_ROWS:-1000000}"
MEMORY_ROWS="${BENCH_MEMORY_ROWS:-10000000}"
MEMORY_SMALL="${BENCH_MEMORY_SMALL:-100000}"
MESSAGES="${BENCH_MESSAGES:-100000}"
PEER_CHAINS="${BENCH_PEER_CHAINS:-2000}"
CLIENTS="${BENCH_CLIENTS:-8}"
CELERY_POOLS="${BENCH_CELERY_POOLS:-prefork threads gevent}"
CELERY_CONCURRENCY="${BENCH_CELERY_CONCURRENCY:-2 8 16}"
INSTANCES="${BENCH_INSTANCES:-1}"
ROUTERS="${BENCH_ROUTERS:-1}"
ONLY="${BENCH_ONLY:-1 2 3 4 5 6 7 8}"
ROWS_MD=()
ANALYSIS=()
PIECES_MD=()
mkdir -p "$WORK/results"

# record NAME FIELDS…: one run's figures, a line per run, for `median`.
record() { local name="$1"; shift; echo "$*" >>"$WORK/results/$name"; }
# median NAME FIELD…: "median min max" for each field over the runs recorded under NAME.
median() { local name="$1"; shift; "$VENV_PY" Benchmarks/peers/summary.py "$WORK/results/$name" "$@"; }
# total NAME FIELD: the sum of FIELD over the runs recorded under NAME (failures).
total() { awk -v f="$(( $2 + 1 ))" '{ n += $f } END { print n + 0 }' "$WORK/results/$1"; }
# spread MEDIAN MIN MAX: "MEDIAN (MIN–MAX)".
spread() { echo "$1 ($2–$3)"; }
# goal NAME VALUE OP TARGET: "met" or "NOT MET"; a missed goal is remembered in a file, since
# goal runs in the subshell of a command substitution.
goal() {
  if awk -v v="$2" -v t="$4" -v op="$3" 'BEGIN { exit !((op == ">=" && v >= t) || (op == "<=" && v <= t) || (op == "==" && v == t)) }'; then
    echo "met"
  else
    echo "$1: $2 (goal $3 $4)" >>"$WORK/missed-goals"
    echo "NOT MET"
  fi
}

wants() { [[ " $ONLY " == *" $1 "* ]]; }

# start NAME CMD...: runs CMD in the background, output in $WORK/NAME.log, pid remembered.
start() {
  local name="$1"; shift
  "$@" >"$WORK/$name.log" 2>&1 &
  PIDS+=("$!")
  LAST_PID=$!
}

stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

wait_port() {
  for _ in $(seq 1 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "bench: port $1 did not open" >&2; return 1
}

# until_true SECONDS CMD...: polls CMD every 50 ms until it succeeds or SECONDS pass.
until_true() {
  local limit=$(( $1 * 20 )); shift
  for _ in $(seq 1 "$limit"); do "$@" && return 0; sleep 0.05; done
  return 1
}

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"text":"hello big world"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# failures WRK_OUTPUT: every request without a 2xx answer: non-2xx statuses, and socket
# errors of every kind (connect, read, write, timeout).
failures() {
  awk '/Non-2xx/ {n += $NF} /Socket errors/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) n += $i } END {print n + 0}' <<<"$1"
}

# cpu_ticks PID: the process's own CPU so far (user + system, all its threads), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# cpu_ticks_sum PID...: the same for several processes together.
cpu_ticks_sum() { local pid sum=0; for pid in "$@"; do sum=$(( sum + $(cpu_ticks "$pid") )); done; echo "$sum"; }
CLK_TCK=$(getconf CLK_TCK)
# cpu_us_per TICKS ITEMS: microseconds of CPU per item.
cpu_us_per() { awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "n/a" }'; }

# stomp_side MODE [PID]: one timed pass of benchmark 5's MODE (engine, relay or limit);
# prints "msg/s seconds received cpu_us broker_cpu_us": the CPU per message of PID (the process
# in the middle) and of the broker over the pass; "n/a" where there is none.
stomp_side() {
  local before=0 broker_before=0 rate elapsed received cpu=n/a broker=n/a
  [ -n "${2:-}" ] && before=$(cpu_ticks "$2")
  [ -n "$BROKER_PID" ] && broker_before=$(cpu_ticks "$BROKER_PID")
  read -r rate elapsed received <<<"$("$VENV_PY" Benchmarks/peers/stomp_bench.py "$1" "$MESSAGES")"
  [ -n "${2:-}" ] && cpu=$(cpu_us_per $(( $(cpu_ticks "$2") - before )) "$received")
  [ -n "$BROKER_PID" ] && broker=$(cpu_us_per $(( $(cpu_ticks "$BROKER_PID") - broker_before )) "$received")
  echo "$rate $elapsed $received $cpu $broker"
}

# measure URL [PID [OTHER_PID...]]: wrk with the shared settings after a 2 s warm-up; prints
# "req/s p50 p99 failed cpu_us others_cpu_us": cpu_us is the server PID's own CPU per request
# over the timed run, others_cpu_us the OTHER_PIDs' together (the services a router or a
# forwarder calls); "n/a" where no PID was given.
measure() {
  local url="$1"; shift
  wrk -t1 -c4 -d2s -s "$WORK/post.lua" "$url" >/dev/null   # warm-up
  local out rps p50 p99 before=0 others_before=0 requests cpu=n/a others=n/a
  [ "$#" -ge 1 ] && before=$(cpu_ticks "$1")
  [ "$#" -ge 2 ] && others_before=$(cpu_ticks_sum "${@:2}")
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  [ "$#" -ge 1 ] && cpu=$(cpu_us_per $(( $(cpu_ticks "$1") - before )) "$requests")
  [ "$#" -ge 2 ] && others=$(cpu_us_per $(( $(cpu_ticks_sum "${@:2}") - others_before )) "$requests")
  echo "$rps $p50 $p99 $(failures "$out") $cpu $others"
}

# heaptrack_calls FILE: the calls to allocation functions a heaptrack recording counted.
heaptrack_calls() { heaptrack_print "$1" 2>/dev/null | awk '/^calls to allocation functions:/ { print $5 }'; }
# heaptrack_stop PID: stops the program a heaptrack (PID) runs, and waits for heaptrack to write
# its recording: only the program is signalled, never heaptrack's interpreter or compressor.
heaptrack_stop() {
  local child
  for child in $(pgrep -P "$1"); do
    case "$(cat "/proc/$child/comm" 2>/dev/null)" in
      heaptrack* | zstd | gzip) ;;
      *) kill -TERM "$child" 2>/dev/null || true ;;
    esac
  done
  wait "$1" 2>/dev/null || true
}

# allocs_http PORT PATH SECONDS_A SECONDS_B CMD...: allocations per request of the server CMD
# (listening on PORT): two runs under heaptrack, SECONDS_A and SECONDS_B of wrk at 4
# connections, each after the same warm-up; (calls B - calls A) / (requests B - requests A),
# so start-up and warm-up cancel out.
allocs_http() {
  local port="$1" path="$2" seconds_a="$3" seconds_b="$4"; shift 4
  local calls=() requests=() seconds pid out
  for seconds in "$seconds_a" "$seconds_b"; do
    rm -f "$WORK/heap".*
    heaptrack -o "$WORK/heap" "$@" >"$WORK/heaptrack-$port.log" 2>&1 &
    pid=$!
    wait_port "$port"
    wrk -t1 -c4 -d1s -s "$WORK/post.lua" "http://127.0.0.1:$port$path" >/dev/null
    out=$(wrk -t1 -c4 -d"${seconds}s" -s "$WORK/post.lua" "http://127.0.0.1:$port$path")
    requests+=("$(awk '/requests in/ {print $1}' <<<"$out")")
    heaptrack_stop "$pid"
    calls+=("$(heaptrack_calls "$(ls "$WORK"/heap.* | head -1)")")
  done
  awk -v a="${calls[0]}" -v b="${calls[1]}" -v ra="${requests[0]}" -v rb="${requests[1]}" \
    'BEGIN { if (rb > ra) printf "%.1f", (b - a) / (rb - ra); else print "n/a" }'
}

# var_value PORT KEY: the engine's own counter KEY at /debug/vars (0 when absent). A curl and
# a grep: it is polled every 50 ms while the engine works, and no interpreter should start
# twenty times a second on the engine's cores.
var_value() {
  local value
  value=$(curl -s "http://127.0.0.1:$1/debug/vars" | grep -o "\"$2\": *[0-9]*" | grep -o '[0-9]*$')
  echo "${value:-0}"
}
# vars_at_least PORT KEY N: whether the engine's own counter KEY reached N.
vars_at_least() { [ "$(var_value "$1" "$2")" -ge "$3" ]; }

# measure_all URL...: the same load split over several routers at once; prints the summed
# req/s and the first router's p50/p99 and errors (BENCH_ROUTERS > 1).
measure_all() {
  if [ "$#" -eq 1 ]; then measure "$1"; return; fi
  local share=$(( CONNECTIONS / $# )) index=0
  for url in "$@"; do
    wrk -t1 -c4 -d2s -s "$WORK/post.lua" "$url" >/dev/null
  done
  for url in "$@"; do
    index=$((index + 1))
    wrk -t1 -c"$share" -d"${DURATION}s" --latency -s "$WORK/post.lua" "$url" >"$WORK/wrk-all-$index.txt" &
  done
  wait
  awk '/Requests\/sec/ {sum += $2} END {printf "%.2f ", sum}' "$WORK"/wrk-all-*.txt
  awk '$1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2} END {printf "%s %s ", p50, p99}' "$WORK/wrk-all-1.txt"
  failures "$(cat "$WORK"/wrk-all-*.txt)"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f", a / b }'; }

# peak_rss PID: the process's high-water resident set, in MiB.
peak_rss() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

# profile TITLE PID SECONDS [KEY]: samples where PID spends its CPU (perf) and adds the shares
# by library and the busiest functions to the report's profiles section (not when TITLE is
# empty: a peer's profile only feeds its column of a per-piece table). Only where a run is not
# timed: perf costs the profiled process some of its speed.
profile() {
  if ! command -v perf >/dev/null; then
    echo "bench: perf is not installed: no profile for $1" >&2
    return 0
  fi
  perf record -F 499 -g -p "$2" -o "$WORK/perf.data" -- sleep "$3" >/dev/null 2>&1 || return 0
  # Shares of the samples by kind of work, for the explanation of a missed goal (KEY, the
  # 4th argument): "kernel scheduler file-system refcount allocation own-code" in percent.
  if [ -n "${4:-}" ]; then
    perf report -i "$WORK/perf.data" --no-children --sort dso,symbol -g none 2>/dev/null | awk -f Benchmarks/peers/profile_shares.awk >"$WORK/shares-$4"
    # The samples with their call stacks, for the per-piece cost table (cost_pieces.py).
    perf script -i "$WORK/perf.data" -F ip,sym,dso >"$WORK/stacks-$4" 2>/dev/null || true
  fi
  [ -n "$1" ] && {
    echo "**$1** ($3 s sampled). Share of samples by library:"
    echo
    perf report -i "$WORK/perf.data" --no-children --sort dso -g none 2>/dev/null \
      | awk '!/^#/ && /%/ { sub(/^.*\//, "", $2); printf "%s%s %s", (n++ ? ", " : ""), $2, $1 } END { print "." }'
    echo
    echo "Busiest functions (self time, names demangled):"
    echo
    echo '```'
    perf report -i "$WORK/perf.data" --no-children --sort symbol -g none 2>/dev/null \
      | awk '!/^#/ && /%/ && n++ < 15 { $2 = ""; print }' | swift demangle --simplified | sed 's/ *- *- *$//' | cut -c1-150
    echo '```'
    echo
  } >>"$WORK/profiles.md"
  rm -f "$WORK/perf.data"
}

# profile_under_load URL TITLE PID KEY: wrk on URL with the shared settings while PID is
# profiled (TITLE and KEY as for profile).
profile_under_load() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" -s "$WORK/post.lua" "$1" >/dev/null &
  local load=$!
  profile "$2" "$3" $(( DURATION > 4 ? DURATION - 2 : 2 )) "$4"
  wait "$load"
}

sky_run() {  # sky_run NAME PORT ROUTES_DIR [extra args]
  local name="$1" port="$2" routes="$3"; shift 3
  start "$name" "$BIN/sky" run --routes "$routes" --http "127.0.0.1:$port" \
    --registry "sqlite:$WORK/$name.sqlite" --log-level warning "$@"
  SKY_PID=$LAST_PID
  wait_port "$port"
}

# chain_route: the three-hop route of benchmarks 2 and 7, in $WORK/r2.
chain_route() {
  mkdir -p "$WORK/r2"
  cat >"$WORK/r2/chain.yaml" <<'YAML'
name: chain
timeout: 5s
steps:
  - service: uppercase
    retry: { attempts: 3, backoff: 20ms, max: 200ms }
  - service: reverse
    retry: { attempts: 3, backoff: 20ms, max: 200ms }
  - service: wordcount
    merge: true
    retry: { attempts: 3, backoff: 20ms, max: 200ms }
YAML
}

# shares KEY: "kernel scheduler file-system refcount allocation own-code" of a profile, or empty.
shares() { cat "$WORK/shares-$1" 2>/dev/null || true; }
# pieces_table KEY CPU_US TITLE [PEER_KEY PEER_CPU_US PEER_NAME]: the per-piece cost table of
# the profile saved under KEY, each piece's share of the samples applied to CPU_US (the timed
# runs' median CPU per item); with a peer, its profile split by the same pieces beside it.
pieces_table() {
  [ -s "$WORK/stacks-$1" ] || return 0
  local kind="${1%%-*}"
  echo "**$3.** Where it goes, by the share of the profile's samples charged to each piece (its own code and what it calls):"
  echo
  if [ -n "${4:-}" ] && [ -s "$WORK/stacks-$4" ]; then
    echo "| Piece | Share of samples | µs per item | $6: share | $6: µs per item |"
    echo "|---|---|---|---|---|"
    "$VENV_PY" Benchmarks/peers/cost_pieces.py "$kind" "$2" "$5" "$WORK/stacks-$4" <"$WORK/stacks-$1"
  else
    echo "| Piece | Share of samples | µs per item |"
    echo "|---|---|---|"
    "$VENV_PY" Benchmarks/peers/cost_pieces.py "$kind" "$2" <"$WORK/stacks-$1"
  fi
}
# why_missed LINE: the reason a missed goal gives, from this run's profiles and figures.
why_missed() {
  local key="" limit=""
  case "$1" in
    1*) key=http; limit="The per-piece table below splits the same-work handler's profile by the same pieces, beside the engine's. What the engine spends beyond the handler is the route's own work, each piece a promise kept per request (route run with its deadline and per-step errors, counters and latency histograms in /debug/vars and /metrics, a trace root and the answer's trace and request-id headers, the request's envelope, an out-of-band step), and more of Hummingbird's and NIO's work per request (the guards against slow senders and for HTTP/1.0 closes on every connection, a router with the admin endpoints and a path parameter, three more answer headers). In-process steps already run in the prompt lane (no balancer, no instance lookup, no deadline race, counters added once per call)." ;;
    2a*) key=chain; limit="The per-piece table below splits the plain forwarder's profile by the same pieces, beside the router's: both spend most of their CPU in NIO, Hummingbird and AsyncHTTPClient, four HTTP exchanges per request. The router's extra is its promises per call: the envelope (ids, trace, deadline, meta) written and its answer read, trace and request-id headers, the route run with retries and deadlines, counters and the balancer; and its services read a larger envelope than the forwarder's (2e)." ;;
    2b*|2c*) limit="Each p99 is the driver's: every client process waits for its answer, so the engine's p99 includes the driver's own queueing on this machine's $(nproc) cores (2d shows the plain forwarder's under the same driver)." ;;
    2d*) key=chain; limit="The router's per-request work (envelope, trace headers, route run, deadlines, balancer, counters) is what separates it from the plain forwarder under the same driver; the per-piece table of the chain (2a) shows it piece by piece." ;;
    4d*) key=csv; limit="At the goal a row would cost half of what Python's job spends on it. Reading and parsing the row and writing its JSON answer (the pieces 'CSV reading and parsing' and 'answers to JSON lines' in the table below) are work Python's job does in C, in its csv and json modules; what remains per row is the row as a request (document, meta, request and trace ids) and its step, which already run a batch of 128 rows at a time with the counters added once per batch." ;;
    5a*) key=stomp; limit="Per message (5c) \`sky run\` spent ${s_cpu:-?} µs of CPU against the relay's ${y_cpu:-?} µs, and the broker ${s_broker:-?} µs against ${y_broker:-?} µs while each ran: producer, broker, engine or relay, and consumer share this machine's $(nproc) cores, so what one side spends the others lack. The per-piece table below shows the engine's share by piece: most is NIO carrying each frame between the socket's event loop and the tasks that run the route (a MESSAGE in, its answer out; RECEIPTs are answered on the event loop already), where the relay, a single-threaded stomp.py client, answers on the thread that read the message." ;;
    3a*) key=files; limit="Most of the engine's samples are the kernel's: file creation, renames and lookups in directories of 20,000 names, and the scheduler; the loop pays the same file-system work from 8 processes." ;;
    4a*) key=csv; limit="Rows of an in-process route run 128 to a batch through the prompt lane (steps called for the whole batch, counters added once); the per-piece table below shows where each row's microseconds go: parsing, the row's document and answer, and the runtime's reference counting and allocation, not one hot spot." ;;
    4c*) limit="Once the large file was done, ${m_huge_file:-?} MiB of the RSS were file-backed pages (the sky binary, the Swift runtime, Foundation and the other shared libraries) and ${m_huge_anon:-?} MiB anonymous; idle, before any row, the process held ${m_huge_idle:-?} MiB. A goal of 64 MiB leaves about $(( 64 - ${m_huge_file:-0} )) MiB for heap and stacks at the peak." ;;
  esac
  if [ -n "$key" ] && [ -n "$(shares "$key")" ]; then
    read -r k sc fs rc al own <<<"$(shares "$key")"
    case "$key" in
      files) echo "Profile: kernel $k % of samples ($fs % file-system work, $sc % scheduling), reference counting $rc %, allocation $al %, the engine's own code $own %. $limit" ;;
      *) echo "Profile: kernel $k % of samples ($sc % scheduling and wake-ups), reference counting $rc %, allocation $al %, the engine's own code $own %. $limit" ;;
    esac
  else
    echo "$limit"
  fi
}

# ---------------------------------------------------------------------------------------------
if wants 1; then
  echo "bench 1: HTTP route ($ROUNDS rounds, alternating)"
  start hello "$BIN/hello-server" 18182
  HELLO_PID=$LAST_PID
  wait_port 18182
  mkdir -p "$WORK/r1" && cp Routes/text.yaml "$WORK/r1/"
  sed -i '/^from:/,/^steps:/{/^steps:/!d}' "$WORK/r1/text.yaml"   # the HTTP path only
  sky_run sky1 18181 "$WORK/r1"
  sides=("engine http://127.0.0.1:18181/routes/text $SKY_PID" "work http://127.0.0.1:18182/work/text $HELLO_PID" "constant http://127.0.0.1:18182/routes/text $HELLO_PID")
  if [ -n "$BASELINE_BIN" ]; then
    start baseline "$BASELINE_BIN" run --routes "$WORK/r1" --http 127.0.0.1:18183 \
      --registry "sqlite:$WORK/baseline.sqlite" --log-level warning
    wait_port 18183
    sides+=("baseline http://127.0.0.1:18183/routes/text $LAST_PID")
  fi
  for round in $(seq 1 "$ROUNDS"); do
    # Each round starts with another side, so no side always runs first (or last).
    for offset in $(seq 0 $(( ${#sides[@]} - 1 ))); do
      read -r side url pid <<<"${sides[$(( (round - 1 + offset) % ${#sides[@]} ))]}"
      record "1-$side" "$(measure "$url" "$pid")"
    done
  done
  ANSWER1=$(curl -s -X POST http://127.0.0.1:18181/routes/text -H 'Content-Type: application/json' -d '{"text":"hello big world"}')
  PEER1=$(curl -s -X POST http://127.0.0.1:18182/work/text -H 'Content-Type: application/json' -d '{"text":"hello big world"}')
  profile_under_load http://127.0.0.1:18181/routes/text "HTTP route \`text\` under wrk" "$SKY_PID" http
  # The same-work handler sampled the same way, for its column of the per-piece table.
  profile_under_load http://127.0.0.1:18182/work/text "" "$HELLO_PID" http-peer
  stop_all
  # Allocations per request, the engine's and the same-work handler's, under heaptrack (not timed).
  a_engine=$(allocs_http 18184 /routes/text 2 4 "$BIN/sky" run --routes "$WORK/r1" --http 127.0.0.1:18184 \
    --registry "sqlite:$WORK/alloc1.sqlite" --log-level warning)
  a_work=$(allocs_http 18185 /work/text 2 4 "$BIN/hello-server" 18185)
  read -r e_rps e_rlo e_rhi e_p50 _ _ e_p99 _ _ e_cpu e_cpu_lo e_cpu_hi <<<"$(median 1-engine 0 1 2 4)"
  read -r w_rps w_rlo w_rhi w_p50 _ _ w_p99 _ _ w_cpu w_cpu_lo w_cpu_hi <<<"$(median 1-work 0 1 2 4)"
  read -r c_rps c_rlo c_rhi c_p50 _ _ c_p99 _ _ c_cpu c_cpu_lo c_cpu_hi <<<"$(median 1-constant 0 1 2 4)"
  r_work=$(ratio "$e_rps" "$w_rps"); r_const=$(ratio "$e_rps" "$c_rps")
  g_work=$(goal "1 HTTP route vs same-work handler" "$r_work" ">=" 0.9)
  g_const=$(goal "1 HTTP route vs constant answer" "$r_const" ">=" 0.8)
  ROWS_MD+=("| 1a. HTTP route: \`sky run\` route \`text\` (uppercase → wordcount merge → audit async, in-process) vs a Hummingbird handler doing the same work inline (JSONDecoder, upper-case, count words, JSONEncoder) | \`BENCH_ONLY=1 make bench\` | $(spread "$e_rps" "$e_rlo" "$e_rhi") req/s; p50 $e_p50 ms, p99 $e_p99 ms; failed $(total 1-engine 3) | $(spread "$w_rps" "$w_rlo" "$w_rhi") req/s; p50 $w_p50 ms, p99 $w_p99 ms; failed $(total 1-work 3) | **$r_work** | ≥ 0.9: $g_work |")
  ROWS_MD+=("| 1b. The same route vs Hummingbird answering a constant after reading the body (the floor: HTTP alone) | \`BENCH_ONLY=1 make bench\` | as 1a | $(spread "$c_rps" "$c_rlo" "$c_rhi") req/s; p50 $c_p50 ms, p99 $c_p99 ms; failed $(total 1-constant 3) | **$r_const** | ≥ 0.8: $g_const |")
  r_cpu1=$(ratio "$e_cpu" "$w_cpu")
  ROWS_MD+=("| 1d. The cost of one request of 1a: CPU µs per request (the server process's own user + system CPU over the timed runs) and allocations per request (heaptrack: two runs of 2 s and 4 s, the difference divided by the difference in requests) | \`BENCH_ONLY=1 make bench\` | $(spread "$e_cpu" "$e_cpu_lo" "$e_cpu_hi") µs CPU; $a_engine allocations | the same-work handler: $(spread "$w_cpu" "$w_cpu_lo" "$w_cpu_hi") µs CPU, $a_work allocations; the constant floor: $(spread "$c_cpu" "$c_cpu_lo" "$c_cpu_hi") µs CPU | **$r_cpu1** of the handler's CPU | — |")
  PIECES_MD+=("$(pieces_table http "$e_cpu" "HTTP route \`text\` (1a): $e_cpu µs of CPU per request, beside the same-work handler's $w_cpu µs" http-peer "$w_cpu" "same-work handler")")
  if [ -n "$BASELINE_BIN" ]; then
    read -r b_rps b_rlo b_rhi b_p50 _ _ b_p99 _ <<<"$(median 1-baseline 0 1 2)"
    r_base=$(ratio "$e_rps" "$b_rps")
    ROWS_MD+=("| 1c. The same route on this engine vs on the engine as of \`$BASELINE\` (before choice, parallel, dedupe, breakers and rate limits; built from that commit), both \`sky run\` | \`BENCH_ONLY=1 make bench\` | as 1a | $(spread "$b_rps" "$b_rlo" "$b_rhi") req/s; p50 $b_p50 ms, p99 $b_p99 ms; failed $(total 1-baseline 3) | **$r_base** | ≥ 0.95: $(goal "1c HTTP route vs the engine before the route constructs" "$r_base" ">=" 0.95) |")
    ANALYSIS+=("**Route constructs cost nothing unused.** A route that uses none of choice, parallel, dedupe, breakers or rate limits ran at $r_base of the same route on the engine as of \`$BASELINE\` ($e_rps against $b_rps req/s, medians of $ROUNDS alternating rounds).")
  fi
  ANALYSIS+=("**HTTP route.** Over $ROUNDS alternating rounds the engine served a median $e_rps req/s, $r_work of a Hummingbird handler doing the same work inline ($w_rps req/s) and $r_const of the constant floor ($c_rps req/s); the engine's p99 was $e_p99 ms against $w_p99 ms and $c_p99 ms. What the engine adds per request over the inline handler: route lookup, three in-process steps run through the prompt lane (handlers found once per registry change, no socket, no deadline race), one of them out of band, counters, span sampling and the envelope.")
fi

# ---------------------------------------------------------------------------------------------
if wants 2; then
  echo "bench 2: cross-process chain ($INSTANCES instance(s) of each service, $ROUTERS router(s))"
  REG="sqlite:$WORK/chain.sqlite"
  hops=()
  service_pids=()
  port=18200
  for service in uppercase reverse wordcount; do
    for _ in $(seq 1 "$INSTANCES"); do
      port=$((port + 1))
      start "svc-$port" "$BIN/sky" service "$service" --port "$port" --registry "$REG" --log-level warning
      service_pids+=("$LAST_PID")
      wait_port "$port"
    done
    hops+=("127.0.0.1:$port")
  done
  chain_route
  router_urls=()
  for index in $(seq 1 "$ROUTERS"); do
    port=$((18220 + index))
    start "router$index" "$BIN/sky" router --routes "$WORK/r2" --http "127.0.0.1:$port" --registry "$REG" --log-level warning
    [ "$index" = 1 ] && ROUTER_PID=$LAST_PID
    wait_port "$port"
    until_true 10 sh -c "curl -sf -X POST http://127.0.0.1:$port/routes/chain -d '{\"text\":\"a\"}' >/dev/null"
    router_urls+=("http://127.0.0.1:$port/routes/chain")
  done
  start plain "$BIN/plain-hops" 18211 "${hops[@]}"
  PLAIN_PID=$LAST_PID
  wait_port 18211
  # One router: its CPU and the services' are measured per request, beside the forwarder's.
  measure_chain() {
    if [ "$ROUTERS" = 1 ]; then measure "${router_urls[0]}" "$ROUTER_PID" "${service_pids[@]}"; else measure_all "${router_urls[@]}"; fi
  }
  for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then
      record 2-limit "$(measure http://127.0.0.1:18211/chain "$PLAIN_PID" "${service_pids[@]}")"; record 2-chain "$(measure_chain)"
    else
      record 2-chain "$(measure_chain)"; record 2-limit "$(measure http://127.0.0.1:18211/chain "$PLAIN_PID" "${service_pids[@]}")"
    fi
  done
  ANSWER2=$(curl -s -X POST "${router_urls[0]}" -H 'Content-Type: application/json' -d '{"text":"hello big world"}')
  profile_under_load "${router_urls[0]}" "Cross-process chain: the \`sky router\` under wrk (its three services are other processes)" "$ROUTER_PID" chain
  # The forwarder sampled the same way, for its column of the per-piece table.
  profile_under_load http://127.0.0.1:18211/chain "" "$PLAIN_PID" chain-peer
  # Allocations per request, a router's and the forwarder's, under heaptrack (not timed), on
  # the same three services.
  a_router=$(allocs_http 18230 /routes/chain 2 4 "$BIN/sky" router --routes "$WORK/r2" --http 127.0.0.1:18230 --registry "$REG" --log-level warning)
  a_plain=$(allocs_http 18231 /chain 2 4 "$BIN/plain-hops" 18231 "${hops[@]}")
  read -r chain_rps chain_lo chain_hi chain_p50 _ _ chain_p99 _ _ ch_cpu ch_cpu_lo ch_cpu_hi ch_svc ch_svc_lo ch_svc_hi <<<"$(median 2-chain 0 1 2 4 5)"
  read -r limit_rps limit_lo limit_hi limit_p50 _ _ limit_p99 _ _ li_cpu li_cpu_lo li_cpu_hi li_svc li_svc_lo li_svc_hi <<<"$(median 2-limit 0 1 2 4 5)"
  r_limit=$(ratio "$chain_rps" "$limit_rps")
  [ "$ROUTERS" = 1 ] || ch_cpu=""   # several routers: no CPU per request measured (measure_all)
  ROWS_MD+=("| 2a. Cross-process chain: $ROUTERS \`sky router\` + $INSTANCES × 3 \`sky service\` processes (uppercase → reverse → wordcount), vs the same 3 processes called in turn by a plain forwarder (the limit); wrk | \`BENCH_ONLY=2 make bench\` | $(spread "$chain_rps" "$chain_lo" "$chain_hi") req/s; p50 $chain_p50 ms, p99 $chain_p99 ms; failed $(total 2-chain 3) | $(spread "$limit_rps" "$limit_lo" "$limit_hi") req/s; p50 $limit_p50 ms, p99 $limit_p99 ms; failed $(total 2-limit 3) | **$r_limit** | ≥ 0.9: $(goal "2a chain vs plain hops" "$r_limit" ">=" 0.9) |")
  if [ "$ROUTERS" = 1 ]; then
    r_cpu2=$(ratio "$ch_cpu" "$li_cpu")
    ROWS_MD+=("| 2e. The cost of one request of 2a: CPU µs per request of the router and of the three services together (each process's own user + system CPU over the timed runs), and the router's allocations per request (heaptrack, as 1d) | \`BENCH_ONLY=2 make bench\` | router $(spread "$ch_cpu" "$ch_cpu_lo" "$ch_cpu_hi") µs CPU, $a_router allocations; services $(spread "$ch_svc" "$ch_svc_lo" "$ch_svc_hi") µs CPU | forwarder $(spread "$li_cpu" "$li_cpu_lo" "$li_cpu_hi") µs CPU, $a_plain allocations; services $(spread "$li_svc" "$li_svc_lo" "$li_svc_hi") µs CPU | **$r_cpu2** of the forwarder's CPU | — |")
    PIECES_MD+=("$(pieces_table chain "$ch_cpu" "Cross-process chain (2a): the router's $ch_cpu µs of CPU per request, beside the plain forwarder's $li_cpu µs" chain-peer "$li_cpu" "forwarder")")
  fi

  # Under one driver: $CLIENTS Python client processes, connected and warmed up before the clock.
  drive_engine() { "$PEERS/bin/python" Benchmarks/peers/http_chain.py drive "${router_urls[0]}" "$PEER_CHAINS" "$CLIENTS"; }
  # The plain forwarder under the same driver: the most any pipeline over these three hops can
  # show under this driver, so the bound on 2b's and 2c's ratios.
  drive_limit() { "$PEERS/bin/python" Benchmarks/peers/http_chain.py drive http://127.0.0.1:18211/chain "$PEER_CHAINS" "$CLIENTS"; }
  drive_celery() { (cd Benchmarks/peers && "$PEERS/bin/python" celery_chain.py drive "$PEER_CHAINS" "$CLIENTS"); }
  drive_nameko() { (cd Benchmarks/peers && "$PEERS/bin/python" nameko_chain.py drive "$PEER_CHAINS" "$CLIENTS" 2>/dev/null); }
  celery_ready() { (cd Benchmarks/peers && "$PEERS/bin/celery" -A celery_chain inspect ping --timeout 1 >/dev/null 2>&1); }
  # Celery runs with the pool and concurrency that serve it best here, found by trying each
  # (not nproc: its workers wait on the broker, so more of them than cores can pay).
  best_pool="" best_concurrency="" best_rate=0
  for pool in $CELERY_POOLS; do
    for concurrency in $CELERY_CONCURRENCY; do
      echo "bench 2: Celery, pool $pool, concurrency $concurrency"
      start "celery-$pool-$concurrency" sh -c "cd Benchmarks/peers && exec '$PEERS/bin/celery' -A celery_chain worker --pool $pool --concurrency $concurrency --loglevel=warning"
      until_true 60 celery_ready
      read -r rate _ <<<"$(drive_celery)"
      echo "bench 2: Celery pool $pool, concurrency $concurrency: $rate chains/s"
      if awk -v a="$rate" -v b="$best_rate" 'BEGIN { exit !(a > b) }'; then best_pool=$pool best_concurrency=$concurrency best_rate=$rate; fi
      kill "$LAST_PID" 2>/dev/null; wait "$LAST_PID" 2>/dev/null || true
    done
  done
  start celery sh -c "cd Benchmarks/peers && exec '$PEERS/bin/celery' -A celery_chain worker --pool $best_pool --concurrency $best_concurrency --loglevel=warning"
  until_true 60 celery_ready
  for service in Uppercase Reverse Wordcount Pipeline; do   # one process per service, like ours
    start "nameko-$service" sh -c "cd Benchmarks/peers && exec '$PEERS/bin/nameko' run nameko_chain:$service --broker amqp://guest:guest@127.0.0.1:5672//"
  done
  until_true 60 sh -c "grep -l 'Connected to' '$WORK'/nameko-*.log | wc -l | grep -qx 4"
  for round in $(seq 1 "$ROUNDS"); do
    record 2-py-engine "$(drive_engine)"; record 2-py-celery "$(drive_celery)"; record 2-py-nameko "$(drive_nameko)"; record 2-py-limit "$(drive_limit)"
  done
  stop_all
  read -r pe_rps pe_lo pe_hi pe_p50 _ _ pe_p99 _ <<<"$(median 2-py-engine 0 1 2)"
  read -r ce_rps ce_lo ce_hi ce_p50 _ _ ce_p99 _ <<<"$(median 2-py-celery 0 1 2)"
  read -r na_rps na_lo na_hi na_p50 _ _ na_p99 _ <<<"$(median 2-py-nameko 0 1 2)"
  read -r pl_rps pl_lo pl_hi pl_p50 _ _ pl_p99 _ <<<"$(median 2-py-limit 0 1 2)"
  r_celery=$(ratio "$pe_rps" "$ce_rps"); r_nameko=$(ratio "$pe_rps" "$na_rps")
  r_py_limit=$(ratio "$pe_rps" "$pl_rps"); bound_celery=$(ratio "$pl_rps" "$ce_rps"); bound_nameko=$(ratio "$pl_rps" "$na_rps")
  bound_free_celery=$(ratio "${limit_rps:-0}" "$ce_rps"); bound_free_nameko=$(ratio "${limit_rps:-0}" "$na_rps")
  p99_celery=$(ratio "$pe_p99" "$ce_p99"); p99_nameko=$(ratio "$pe_p99" "$na_p99")
  ROWS_MD+=("| 2b. The same pipeline vs Celery (\`chain\` of 3 tasks, retries on, RabbitMQ broker, rpc results, pool \`$best_pool\` at concurrency $best_concurrency, the best of pools $CELERY_POOLS × concurrency $CELERY_CONCURRENCY); one Python driver for both: $CLIENTS client processes, $PEER_CHAINS calls, connected and warmed up before the clock | \`BENCH_ONLY=2 make bench\` | $(spread "$pe_rps" "$pe_lo" "$pe_hi") req/s; p50 $pe_p50 ms, p99 $pe_p99 ms; failed $(total 2-py-engine 3) | $(spread "$ce_rps" "$ce_lo" "$ce_hi") chains/s; p50 $ce_p50 ms, p99 $ce_p99 ms; failed $(total 2-py-celery 3) | **$r_celery×**; p99 $p99_celery of Celery's | p99 ≤ 0.2: $(goal "2b p99 vs Celery" "$p99_celery" "<=" 0.2) |")
  ROWS_MD+=("| 2c. The same pipeline vs nameko (a pipeline RPC service calling 3 RPC services over RabbitMQ, each service its own process); the same driver | \`BENCH_ONLY=2 make bench\` | as 2b | $(spread "$na_rps" "$na_lo" "$na_hi") calls/s; p50 $na_p50 ms, p99 $na_p99 ms; failed $(total 2-py-nameko 3) | **$r_nameko×**; p99 $p99_nameko of nameko's | p99 ≤ 0.2: $(goal "2c p99 vs nameko" "$p99_nameko" "<=" 0.2) |")
  ROWS_MD+=("| 2d. The plain forwarder of 2a under the same driver: the most any pipeline over these hops can show under it | \`BENCH_ONLY=2 make bench\` | as 2b | $(spread "$pl_rps" "$pl_lo" "$pl_hi") req/s; p50 $pl_p50 ms, p99 $pl_p99 ms; failed $(total 2-py-limit 3) | **$r_py_limit**; the limit itself is $bound_celery× Celery and $bound_nameko× nameko | the engine ≥ 0.95 of it: $(goal "2d engine vs the plain forwarder under the Python driver" "$r_py_limit" ">=" 0.95) |")
  ANALYSIS+=("**Cross-process chain.** Driven by wrk, the engine's chain ran at $r_limit of the same three hops called by a plain forwarder ($chain_rps against $limit_rps req/s, medians of $ROUNDS). Under one Python driver ($CLIENTS processes), the engine answered $pe_rps req/s with p99 $pe_p99 ms; Celery (pool $best_pool) $ce_rps chains/s with p99 $ce_p99 ms, nameko $na_rps calls/s with p99 $na_p99 ms: $r_celery× and $r_nameko× the throughput. With a closed-loop Python driver, the driver itself bounds the engine's figure (each client waits for its answer and spends its own CPU per call), so these ratios are a floor of the engine's lead, not its size; 2a shows the engine against its own limit. Under that driver the plain forwarder, which does nothing but call the three hops, reached $pl_rps req/s: $bound_celery× Celery and $bound_nameko× nameko. That is the most any engine could show in 2b and 2c on this machine; the engine reached $r_py_limit of it.${ch_cpu:+ Per request (2e) the router spent $ch_cpu µs of CPU against the forwarder's $li_cpu µs, and the three services together $ch_svc µs against $li_svc µs when the forwarder called them: the engine's envelope carries ids, trace and deadline, and each service reads it.}")
fi

# ---------------------------------------------------------------------------------------------
if wants 3; then
  echo "bench 3: $FILES files ($ROUNDS rounds, alternating)"
  # fresh_fs NAME: a new, empty ext4 file system of its own (a loop device over a file in
  # $WORK), mounted at $WORK/NAME.mnt; prints the mount point. Each side gets one: on the
  # machine's shared file system the other side's 20,000 files, deleted seconds earlier, made
  # ext4 search its inode table for every new answer (perf: `recently_deleted` in
  # `__ext4_new_inode`, half the CPU) and the figures swung threefold from run to run, and a
  # `syncfs` also waited for whatever else the machine wrote. Without root (or loop devices),
  # a directory in $WORK, said in the table.
  FS3_NOTE="each side on a fresh ext4 file system of its own (a loop device over a file on the machine's disk), so neither inherits the other's deleted files and a file-system sync covers only the benchmark's files"
  fresh_fs() {
    local image="$WORK/$1.img" mountpoint="$WORK/$1.mnt"
    rm -rf "$mountpoint" "$image" && mkdir -p "$mountpoint"
    if ! { [ "$(id -u)" = 0 ] && truncate -s 4G "$image" && mkfs.ext4 -q -F "$image" >/dev/null 2>&1 && mount -o loop "$image" "$mountpoint" 2>/dev/null; }; then
      touch "$WORK/fs3-shared"   # a command substitution's subshell: said through a file
    fi
    echo "$mountpoint"
  }
  drop_fs() { umount "$WORK/$1.mnt" 2>/dev/null || true; rm -rf "$WORK/$1.mnt" "$WORK/$1.img"; }
  make_files() {  # make_files DIR: FILES small JSON documents, written a minute ago
    mkdir -p "$1"
    # The files have been sitting in the folder (dropped while nothing watched it): a file
    # found at start is taken once it has been still for 5 s, so fresh ones would time that
    # wait, not the work.
    "$VENV_PY" - "$1" "$FILES" <<'PY'
import json, os, sys, time
before = time.time() - 60
for index in range(int(sys.argv[2])):
    path = os.path.join(sys.argv[1], f"f{index:06d}.json")
    with open(path, "w") as f:
        json.dump({"text": f"file number {index}", "n": index}, f)
    os.utime(path, (before, before))
PY
    sync   # the files' own writeback is not timed on either side
  }
  # files_engine NAME: a fresh file system with the files in its folder, `sky run` started as
  # NAME, and the route that watches the folder ready in $WORK/route3.yaml (moving it into
  # the routes starts the work). Sets $drop.
  files_engine() {
    drop="$(fresh_fs fs3)/drop"
    rm -rf "$WORK/r3" && mkdir -p "$WORK/r3"
    make_files "$drop"
    sky_run "$1" 18230 "$WORK/r3" --services uppercase
    cat >"$WORK/route3.yaml" <<YAML
name: files
timeout: 10s
from:
  - files: { dir: $drop, pattern: "*.json", concurrency: 8 }
steps:
  - service: uppercase
YAML
  }
  for round in $(seq 1 "$ROUNDS"); do
    # The engine: the files are in the folder before the clock starts; the clock starts when
    # the route that watches it is written (live reload starts its initiator) and stops when
    # the engine's own counter says every file is done. Nothing else looks at the folder.
    files_engine "sky3-$round"
    began=$(date +%s.%N)
    mv "$WORK/route3.yaml" "$WORK/r3/files.yaml"
    until_true 300 vars_at_least 18230 files.files-done "$FILES" || echo "bench 3: not every file was done in 300 s" >&2
    ended=$(date +%s.%N)
    stop_all
    done_n=$(find "$drop/.done" -maxdepth 1 -name '*.json' | wc -l)
    out_n=$(find "$drop/.out" -maxdepth 1 -name '*.json' | wc -l)
    failed_n=$(find "$drop/.failed" -maxdepth 1 -name '*.json' ! -name '*.error.json' 2>/dev/null | wc -l)
    record 3-engine "$(awk -v n="$done_n" -v a="$began" -v b="$ended" 'BEGIN { printf "%.1f", n / (b - a) }') $done_n $out_n $failed_n $(( FILES - done_n - failed_n ))"
    drop_fs fs3
    # The peers: the same files, the same work, the same parallelism (8); with an fsync of
    # each answer before its input moves (the engine's guarantee), and without (the floor).
    for mode in sync nosync; do
      loop3="$(fresh_fs fs3)/loop3"
      make_files "$loop3"
      read -r loop_rate _ loop_count <<<"$("$VENV_PY" Benchmarks/peers/files_loop.py "$loop3" 8 "$mode")"
      record "3-loop-$mode" "$loop_rate $loop_count"
      drop_fs fs3
    done
  done
  # A run under perf, not timed: where the engine's time goes.
  files_engine sky3-profiled
  mv "$WORK/route3.yaml" "$WORK/r3/files.yaml"
  profile "Files, $FILES files through \`sky run\`" "$SKY_PID" 3 files
  until_true 300 vars_at_least 18230 files.files-done "$FILES" || echo "bench 3: the profiled run did not finish in 300 s" >&2
  stop_all
  drop_fs fs3
  [ -e "$WORK/fs3-shared" ] && FS3_NOTE="in directories of the machine's shared file system (no loop device here: not root, or mount failed)"
  read -r f_rate f_lo f_hi <<<"$(median 3-engine 0)"
  read -r l_rate l_lo l_hi <<<"$(median 3-loop-sync 0)"
  read -r n_rate n_lo n_hi <<<"$(median 3-loop-nosync 0)"
  lost3=$(total 3-engine 4)
  r_files=$(ratio "$f_rate" "$l_rate"); r_floor3=$(ratio "$f_rate" "$n_rate")
  ROWS_MD+=("| 3a. Files: $FILES small JSON files already in the folder when the route that watches it is written; one-step route (uppercase, in-process, 8 at a time); each answer on disk (fsynced, in groups) before its input moves to .done/; vs a loop doing the same work file by file (claim by rename, read, parse, upper-case, answer written to a temporary file, fsynced and renamed, input moved to .done) in 8 processes | \`BENCH_ONLY=3 make bench\` | $(spread "$f_rate" "$f_lo" "$f_hi") files/s; over $ROUNDS rounds done $(total 3-engine 1), answers $(total 3-engine 2), failed $(total 3-engine 3), **lost $lost3** | $(spread "$l_rate" "$l_lo" "$l_hi") files/s | **$r_files** | ≥ 1.5: $(goal "3a files vs fsyncing parallel loop" "$r_files" ">=" 1.5); 0 lost: $(goal "3a files lost" "$lost3" "==" 0) |")
  ROWS_MD+=("| 3b. The same loop without the fsync (the floor: the renames alone, no durability) | \`BENCH_ONLY=3 make bench\` | as 3a | $(spread "$n_rate" "$n_lo" "$n_hi") files/s | **$r_floor3** | — |")
  ANALYSIS+=("**Files.** The engine took a median $f_rate files/s, $r_files of a loop doing the same work with an fsync per answer in 8 processes ($l_rate files/s) and $r_floor3 of the same loop without the fsync ($n_rate files/s); it lost $lost3 of $(( FILES * ROUNDS )) files. The engine syncs answers in groups: its workers hand each written answer to one committer and take their next file; the committer makes every answer written since its last sync durable with one sync of the file system, and only then moves their inputs to .done/. Both sides ran $FS3_NOTE.")
fi

# ---------------------------------------------------------------------------------------------
if wants 4; then
  echo "bench 4: CSV, $ROWS rows ($ROUNDS rounds, alternating); memory at $MEMORY_SMALL and $MEMORY_ROWS rows"
  mkdir -p "$WORK/r4" "$WORK/drop4"
  cat >"$WORK/r4/rows.yaml" <<YAML
name: rows
timeout: 10s
from:
  - csv: { dir: $WORK/drop4, header: true, concurrency: 8 }
steps:
  - service: uppercase
YAML
  "$VENV_PY" Benchmarks/peers/csv_python.py make "$WORK/big.csv" "$ROWS"
  # csv_through_sky FILE ROWS NAME PORT [PROFILE_SECONDS]: prints "rows/s peak_rss_mib results
  # rejects idle_mib anon_mib file_mib checkpoints cpu_us_per_row"; the clock (and the CPU
  # count) runs from the file's arrival to the engine's own count of files done.
  csv_through_sky() {
    sky_run "sky4$3" "$4" "$WORK/r4" --services uppercase
    local began ended idle ticks
    idle=$(awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$SKY_PID/status")
    cp "$1" "$WORK/$3.staged.csv"
    ticks=$(cpu_ticks "$SKY_PID")
    began=$(date +%s.%N)
    mv "$WORK/$3.staged.csv" "$WORK/drop4/$3.csv"
    [ -n "${5:-}" ] && profile "CSV, $2 rows through \`sky run\`" "$SKY_PID" "$5" csv
    until_true 1800 vars_at_least "$4" csv.rows-files-done 1 || echo "bench 4: $3.csv not done in 1800 s" >&2
    ended=$(date +%s.%N)
    ticks=$(( $(cpu_ticks "$SKY_PID") - ticks ))
    local rss results rejects anon file checkpoints
    rss=$(peak_rss "$SKY_PID")
    checkpoints=$(var_value "$4" csv.rows-checkpoints)
    anon=$(awk '/RssAnon/ {printf "%.0f", $2 / 1024}' "/proc/$SKY_PID/status")
    file=$(awk '/RssFile/ {printf "%.0f", $2 / 1024}' "/proc/$SKY_PID/status")
    results=$(wc -l <"$WORK/drop4/.out/$3.csv.results.jsonl")
    rejects=$(( $(wc -l <"$WORK/drop4/.out/$3.csv.rejects.csv" 2>/dev/null || echo 1) - 1 ))
    stop_all
    rm -rf "$WORK/drop4/.out" "$WORK/drop4/.done" "$WORK/drop4/.processing"
    awk -v n="$2" -v a="$began" -v b="$ended" -v r="$rss" -v o="$results" -v j="$rejects" -v i="$idle" -v an="$anon" -v f="$file" -v c="$checkpoints" \
      'BEGIN { printf "%.1f %s %s %s %s %s %s %s ", n / (b - a), r, o, (j < 0 ? 0 : j), i, an, f, c }'
    cpu_us_per "$ticks" "$2"
  }
  # csv_allocs FILE: calls to allocation functions of a whole `sky run` (under heaptrack) that
  # answers FILE's rows and stops.
  csv_allocs() {
    rm -rf "$WORK/heap".* "$WORK/drop4/.out" "$WORK/drop4/.done" "$WORK/drop4/.processing"
    heaptrack -o "$WORK/heap" "$BIN/sky" run --routes "$WORK/r4" --http 127.0.0.1:18249 \
      --registry "sqlite:$WORK/alloc4.sqlite" --log-level warning --services uppercase >"$WORK/heaptrack-4.log" 2>&1 &
    local pid=$!
    wait_port 18249
    cp "$1" "$WORK/alloc.staged.csv" && mv "$WORK/alloc.staged.csv" "$WORK/drop4/alloc.csv"
    until_true 600 vars_at_least 18249 csv.rows-files-done 1 || echo "bench 4: the allocation count's file not done" >&2
    heaptrack_stop "$pid"
    heaptrack_calls "$(ls "$WORK"/heap.* | head -1)"
    rm -rf "$WORK/drop4/.out" "$WORK/drop4/.done" "$WORK/drop4/.processing" "$WORK/alloc4.sqlite"
  }
  for round in $(seq 1 "$ROUNDS"); do
    engine4=$(csv_through_sky "$WORK/big.csv" "$ROWS" "big$round" $(( 18241 + round )))
    record 4-engine "$engine4"
    rm -rf "$WORK/py4"
    # Python syncs as often as the engine did in this round (its mean rows per checkpoint).
    every=$(awk '{ printf "%.0f", ($8 > 0 ? $3 / $8 : 500) }' <<<"$engine4")
    record 4-python "$("$VENV_PY" Benchmarks/peers/csv_python.py job "$WORK/big.csv" "$WORK/py4" "$every") $every"
    record 4-floor "$("$VENV_PY" Benchmarks/peers/csv_python.py "$WORK/big.csv" "$WORK/floor4.csv")"
  done
  # A run under perf, not timed: where the engine's time goes.
  csv_through_sky "$WORK/big.csv" "$ROWS" profiled 18248 2 >/dev/null
  # Allocations per row: two files under heaptrack, 20,000 and 40,000 rows; the difference in
  # calls over the difference in rows (start-up and the file's own costs cancel out).
  "$VENV_PY" Benchmarks/peers/csv_python.py make "$WORK/a20.csv" 20000
  "$VENV_PY" Benchmarks/peers/csv_python.py make "$WORK/a40.csv" 40000
  a_rows=$(awk -v a="$(csv_allocs "$WORK/a20.csv")" -v b="$(csv_allocs "$WORK/a40.csv")" 'BEGIN { printf "%.1f", (b - a) / 20000 }')
  rm -f "$WORK/a20.csv" "$WORK/a40.csv"
  rm -f "$WORK/big.csv" "$WORK/floor4.csv"; rm -rf "$WORK/py4"
  # Memory: the whole `sky run`'s peak RSS for a small file and a file a hundred times larger.
  "$VENV_PY" Benchmarks/peers/csv_python.py make "$WORK/small.csv" "$MEMORY_SMALL"
  read -r _ m_small_rss m_small_out _ m_small_idle _ _ <<<"$(csv_through_sky "$WORK/small.csv" "$MEMORY_SMALL" small 18246)"
  rm -f "$WORK/small.csv"
  "$VENV_PY" Benchmarks/peers/csv_python.py make "$WORK/huge.csv" "$MEMORY_ROWS"
  read -r m_huge_rate m_huge_rss m_huge_out _ m_huge_idle m_huge_anon m_huge_file _ <<<"$(csv_through_sky "$WORK/huge.csv" "$MEMORY_ROWS" huge 18247)"
  rm -f "$WORK/huge.csv"
  read -r c_rate c_lo c_hi c_cpu c_cpu_lo c_cpu_hi <<<"$(median 4-engine 0 8)"
  read -r p_rate p_lo p_hi p_rss _ _ p_cpu p_cpu_lo p_cpu_hi p_every p_every_lo p_every_hi <<<"$(median 4-python 0 3 4 5)"
  read -r b_rate b_lo b_hi b_cpu b_cpu_lo b_cpu_hi <<<"$(median 4-floor 0 4)"
  p_rss=$(awk -v k="$p_rss" 'BEGIN { printf "%.0f", k / 1024 }')
  r_python=$(ratio "$c_rate" "$p_rate"); r_floor=$(ratio "$c_rate" "$b_rate")
  growth=$(ratio "$m_huge_rss" "$m_small_rss")
  ROWS_MD+=("| 4a. CSV: $ROWS rows (4 columns, some quoted) through a one-step route (uppercase, in-process, 8 batches of 128 rows at a time), answers as JSON lines, synced with a synced checkpoint once 500 rows or more are answered (the rows answered while one is written go into the next); vs Python doing the same job (csv → dict → upper-cased → JSON line, fsync and a synced checkpoint every N rows, N the engine's mean rows per checkpoint in the same round) | \`BENCH_ONLY=4 make bench\` | $(spread "$c_rate" "$c_lo" "$c_hi") rows/s; answers $(total 4-engine 2), rejects $(total 4-engine 3), checkpoints $(total 4-engine 7) ($(awk -v r="$(total 4-engine 2)" -v c="$(total 4-engine 7)" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }') rows each on average) over $ROUNDS rounds | $(spread "$p_rate" "$p_lo" "$p_hi") rows/s; a checkpoint every $(spread "$p_every" "$p_every_lo" "$p_every_hi") rows | **$r_python** | ≥ 2: $(goal "4a CSV vs Python job" "$r_python" ">=" 2) |")
  ROWS_MD+=("| 4b. The same file through Python's csv module read and written back upper-cased, no JSON, no sync (the floor) | \`BENCH_ONLY=4 make bench\` | as 4a | $(spread "$b_rate" "$b_lo" "$b_hi") rows/s | **$r_floor** | — |")
  ROWS_MD+=("| 4c. Memory: peak RSS of the whole \`sky run\` (router, initiators, in-process services) for $MEMORY_ROWS rows vs $MEMORY_SMALL rows, one file each | \`BENCH_ONLY=4 make bench\` | $m_huge_rss MiB for $MEMORY_ROWS rows ($m_huge_out answers, $m_huge_rate rows/s) | $m_small_rss MiB for $MEMORY_SMALL rows; Python's job: $p_rss MiB | **$growth** | ≤ 1.1: $(goal "4c CSV memory growth" "$growth" "<=" 1.1); ≤ 64 MiB: $(goal "4c CSV peak RSS" "$m_huge_rss" "<=" 64) |")
  r_cpu4=$(ratio "$c_cpu" "$p_cpu")
  ROWS_MD+=("| 4d. The cost of one row of 4a: CPU µs per row (each process's own user + system CPU over the file) and the engine's allocations per row (heaptrack: files of 20,000 and 40,000 rows, the difference over 20,000) | \`BENCH_ONLY=4 make bench\` | $(spread "$c_cpu" "$c_cpu_lo" "$c_cpu_hi") µs CPU; $a_rows allocations | Python's job: $(spread "$p_cpu" "$p_cpu_lo" "$p_cpu_hi") µs CPU; its bare csv copy: $(spread "$b_cpu" "$b_cpu_lo" "$b_cpu_hi") µs | **$r_cpu4** of Python's CPU | ≤ 0.5: $(goal "4d CSV CPU per row vs Python's" "$r_cpu4" "<=" 0.5) |")
  PIECES_MD+=("$(pieces_table csv "$c_cpu" "CSV rows (4a): $c_cpu µs of CPU per row")")
  ANALYSIS+=("**CSV.** The engine ran a median $c_rate rows/s, $r_python of Python doing the same job and $r_floor of Python's bare csv copy. Its peak RSS was $m_huge_rss MiB for $MEMORY_ROWS rows against $m_small_rss MiB for $MEMORY_SMALL rows ($growth times as much for a hundred times the rows); Python's job peaked at $p_rss MiB. Before the file arrived the same \`sky run\` held $m_huge_idle MiB ($m_small_idle MiB before the small one); once the large file was done, $m_huge_file MiB of its RSS were file-backed (code and libraries) and $m_huge_anon MiB anonymous (heap, stacks).")
fi

# ---------------------------------------------------------------------------------------------
if wants 5; then
  echo "bench 5: STOMP, $MESSAGES messages ($ROUNDS rounds, alternating)"
  mkdir -p "$WORK/r5"
  cat >"$WORK/r5/stomp.yaml" <<'YAML'
name: stomp
timeout: 10s
from:
  - stomp: { destination: /queue/bench.in, replyTo: /queue/bench.out, prefetch: 256 }
steps:
  - service: uppercase
YAML
  "$VENV_PY" Benchmarks/peers/stomp_bench.py purge
  sky_run sky5 18250 "$WORK/r5" --services uppercase
  until_true 10 sh -c "curl -s http://127.0.0.1:18250/debug/vars | grep -q stomp" || true
  start relay "$VENV_PY" Benchmarks/peers/stomp_bench.py relay-serve
  RELAY_PID=$LAST_PID
  until_true 30 grep -q "relay ready" "$WORK/relay.log"
  # The broker's Erlang VM, whose CPU per message each side costs it (services.sh's pid file).
  BROKER_PID="$(cat "${SKYNET_RABBIT_DIR:-/tmp/skynet-rabbitmq}/rabbit.pid" 2>/dev/null || true)"
  [ -n "$BROKER_PID" ] && [ -r "/proc/$BROKER_PID/stat" ] || BROKER_PID=""
  for round in $(seq 1 "$ROUNDS"); do
    record 5-engine "$(stomp_side engine "$SKY_PID")"
    record 5-relay "$(stomp_side relay "$RELAY_PID")"
    record 5-pair "$(stomp_side limit)"
  done
  # The engine's profile under the same load, after the timed rounds, for the per-piece table.
  "$VENV_PY" Benchmarks/peers/stomp_bench.py engine "$MESSAGES" >/dev/null &
  load=$!
  profile "STOMP: \`sky run\` under benchmark 5's load" "$SKY_PID" 8 stomp
  wait "$load" || true
  stop_all
  read -r s_rate s_lo s_hi <<<"$(median 5-engine 0)"
  read -r y_rate y_lo y_hi <<<"$(median 5-relay 0)"
  read -r q_rate q_lo q_hi <<<"$(median 5-pair 0)"
  read -r s_cpu s_cpu_lo s_cpu_hi <<<"$(median 5-engine 3)"
  read -r y_cpu y_cpu_lo y_cpu_hi <<<"$(median 5-relay 3)"
  read -r s_broker s_broker_lo s_broker_hi <<<"$(median 5-engine 4)"
  read -r y_broker y_broker_lo y_broker_hi <<<"$(median 5-relay 4)"
  s_lost=$(awk -v m="$MESSAGES" '{ if ($3 < m) n += m - $3 } END { print n + 0 }' "$WORK/results/5-engine")
  r_relay=$(ratio "$s_rate" "$y_rate"); r_pair=$(ratio "$s_rate" "$q_rate")
  ROWS_MD+=("| 5a. STOMP: $MESSAGES messages sent by stomp.py to RabbitMQ, each run through a one-step route (uppercase) by \`sky run\` and answered to a reply queue (client-individual ack, persistent reply, ack on the broker's receipt, prefetch 256); vs a bare relay doing the same (stomp.py, its own process) | \`BENCH_ONLY=5 make bench\` | $(spread "$s_rate" "$s_lo" "$s_hi") msg/s end to end; short of $MESSAGES replies: $s_lost over $ROUNDS rounds | $(spread "$y_rate" "$y_lo" "$y_hi") msg/s | **$r_relay** | ≥ 0.9: $(goal "5a STOMP vs bare relay" "$r_relay" ">=" 0.9); 0 lost: $(goal "5a STOMP lost" "$s_lost" "==" 0) |")
  r_cpu5=$(ratio "$s_cpu" "$y_cpu")
  ROWS_MD+=("| 5c. The cost of one message of 5a: CPU µs per message of the process in the middle (its own user + system CPU over the timed rounds), and of the broker (RabbitMQ's Erlang VM) over the same rounds | \`BENCH_ONLY=5 make bench\` | \`sky run\`: $(spread "$s_cpu" "$s_cpu_lo" "$s_cpu_hi") µs CPU; the broker meanwhile: $(spread "$s_broker" "$s_broker_lo" "$s_broker_hi") µs | the relay: $(spread "$y_cpu" "$y_cpu_lo" "$y_cpu_hi") µs CPU; the broker meanwhile: $(spread "$y_broker" "$y_broker_lo" "$y_broker_hi") µs | **$r_cpu5** of the relay's CPU | — |")
  PIECES_MD+=("$(pieces_table stomp "$s_cpu" "STOMP messages (5a): $s_cpu µs of CPU per message")")
  ROWS_MD+=("| 5b. The same producer and a bare consumer on one queue (one way, non-persistent, auto-ack): the broker's floor | \`BENCH_ONLY=5 make bench\` | as 5a | $(spread "$q_rate" "$q_lo" "$q_hi") msg/s | **$r_pair** | — |")
  ANALYSIS+=("**STOMP.** Through the engine, $s_rate msg/s end to end (median of $ROUNDS), $r_relay of a bare relay doing the same acknowledged, persistent work ($y_rate msg/s) and $r_pair of a one-way pair ($q_rate msg/s); $s_lost replies missing. Per message \`sky run\` spent $s_cpu µs of CPU and the relay $y_cpu µs; the broker spent $s_broker µs per message under the engine and $y_broker µs under the relay (5c).")
fi

# ---------------------------------------------------------------------------------------------
if wants 6; then
  echo "bench 6: failure detection"
  REG6="$WORK/fail.sqlite"
  start reaper "$BIN/sky" reaper --interval 0.25 --registry "sqlite:$REG6" --log-level warning
  start victim "$BIN/sky" service uppercase --port 18261 --ttl 2 --heartbeat 0.5 --registry "sqlite:$REG6" --log-level warning
  VICTIM=$LAST_PID
  start survivor "$BIN/sky" service uppercase --port 18262 --ttl 2 --heartbeat 0.5 --registry "sqlite:$REG6" --log-level warning
  wait_port 18261 && wait_port 18262
  mkdir -p "$WORK/r6"
  cat >"$WORK/r6/up.yaml" <<'YAML'
name: up
timeout: 5s
steps:
  - service: uppercase
    retry: { attempts: 3, backoff: 10ms, max: 50ms }
YAML
  start router6 "$BIN/sky" router --routes "$WORK/r6" --http 127.0.0.1:18260 --registry "sqlite:$REG6" --log-level warning
  wait_port 18260
  until_true 10 sh -c "curl -sf -X POST http://127.0.0.1:18260/routes/up -d '{\"text\":\"a\"}' >/dev/null"
  wrk -t2 -c16 -d8s --latency -s "$WORK/post.lua" http://127.0.0.1:18260/routes/up >"$WORK/wrk6.txt" &
  WRK=$!
  sleep 2
  read -r reaped_after last_attempt_after failed_attempts <<<"$("$VENV_PY" Benchmarks/peers/failure_watch.py "$REG6" "$VICTIM" 127.0.0.1:18261 http://127.0.0.1:18260/debug/vars 5)"
  wait "$WRK" || true
  fail_total=$(awk '/requests in/ {print $1}' "$WORK/wrk6.txt")
  fail_non2xx=$(failures "$(cat "$WORK/wrk6.txt")")
  fail_p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk6.txt")
  stop_all
  ROWS_MD+=("| 6. Failure detection: SIGKILL one of two \`uppercase\` instances (TTL 2 s, heartbeat 0.5 s, reaper every 0.25 s) under load through \`sky router\` | \`BENCH_ONLY=6 make bench\` | removed from the registry after **${reaped_after} s**; last attempt at it ${last_attempt_after} s after the kill ($failed_attempts failed attempts, each retried elsewhere); **$fail_non2xx of $fail_total requests without a 2xx answer** (statuses, socket errors and timeouts), p99 $fail_p99 | the TTL: 2 s | $(ratio "$reaped_after" 2) of the TTL | 0 failed: $(goal "6 failed requests" "$fail_non2xx" "==" 0) |")
  ANALYSIS+=("**Failure detection.** The killed instance left the registry $reaped_after s after the SIGKILL (TTL 2 s); the router's last attempt at it was $last_attempt_after s after the kill, and $fail_non2xx of $fail_total requests went without a 2xx answer.")
fi

if wants 7; then
  echo "bench 7: TLS on and off ($ROUNDS rounds, alternating)"
  "$BIN/sky" certs init "$WORK/tls" >/dev/null
  "$BIN/sky" certs issue node --dir "$WORK/tls" --ip 127.0.0.1 >/dev/null
  TLS_SERVE=(--tls-cert "$WORK/tls/node.pem" --tls-key "$WORK/tls/node-key.pem" --tls-ca "$WORK/tls/ca.pem")
  # 7a: the route of benchmark 1 on two `sky run`, one serving HTTPS (wrk keeps its
  # connections, so handshakes are few and the cost is the record layer).
  mkdir -p "$WORK/r7" && cp Routes/text.yaml "$WORK/r7/"
  sed -i '/^from:/,/^steps:/{/^steps:/!d}' "$WORK/r7/text.yaml"
  sky_run plain7 18701 "$WORK/r7"
  start tls7 "$BIN/sky" run --routes "$WORK/r7" --http 127.0.0.1:18702 --registry "sqlite:$WORK/tls7.sqlite" --log-level warning "${TLS_SERVE[@]}"
  wait_port 18702
  # 7b: the chain of benchmark 2 twice, each on its own registry: every hop plain, or every
  # hop (router listener and the three services) in TLS, the router verifying each service.
  chain_route
  for side in plain tls; do
    base=$([ "$side" = plain ] && echo 18710 || echo 18720)
    extra=(); scheme=http
    [ "$side" = tls ] && { extra=("${TLS_SERVE[@]}"); scheme=https; }
    offset=0
    for service in uppercase reverse wordcount; do
      offset=$((offset + 1))
      start "svc7-$side-$service" "$BIN/sky" service "$service" --port $((base + offset)) --registry "sqlite:$WORK/chain7-$side.sqlite" --log-level warning "${extra[@]}"
      wait_port $((base + offset))
    done
    start "router7-$side" "$BIN/sky" router --routes "$WORK/r2" --http "127.0.0.1:$((base + 9))" --registry "sqlite:$WORK/chain7-$side.sqlite" --log-level warning "${extra[@]}"
    wait_port $((base + 9))
    until_true 10 sh -c "curl -skf -X POST $scheme://127.0.0.1:$((base + 9))/routes/chain -d '{\"text\":\"a\"}' >/dev/null"
  done
  for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then
      record 7-route-plain "$(measure http://127.0.0.1:18701/routes/text)"; record 7-route-tls "$(measure https://127.0.0.1:18702/routes/text)"
      record 7-chain-plain "$(measure http://127.0.0.1:18719/routes/chain)"; record 7-chain-tls "$(measure https://127.0.0.1:18729/routes/chain)"
    else
      record 7-route-tls "$(measure https://127.0.0.1:18702/routes/text)"; record 7-route-plain "$(measure http://127.0.0.1:18701/routes/text)"
      record 7-chain-tls "$(measure https://127.0.0.1:18729/routes/chain)"; record 7-chain-plain "$(measure http://127.0.0.1:18719/routes/chain)"
    fi
  done
  TLS_ANSWER=$(curl -s --cacert "$WORK/tls/ca.pem" -X POST https://127.0.0.1:18729/routes/chain -H 'Content-Type: application/json' -d '{"text":"hello big world"}')
  stop_all
  read -r tp_rps tp_lo tp_hi tp_p50 _ _ tp_p99 _ <<<"$(median 7-route-plain 0 1 2)"
  read -r tt_rps tt_lo tt_hi tt_p50 _ _ tt_p99 _ <<<"$(median 7-route-tls 0 1 2)"
  read -r cp_rps cp_lo cp_hi cp_p50 _ _ cp_p99 _ <<<"$(median 7-chain-plain 0 1 2)"
  read -r ct_rps ct_lo ct_hi ct_p50 _ _ ct_p99 _ <<<"$(median 7-chain-tls 0 1 2)"
  r_route_tls=$(ratio "$tt_rps" "$tp_rps"); r_chain_tls=$(ratio "$ct_rps" "$cp_rps")
  ROWS_MD+=("| 7a. TLS: the route of 1a on \`sky run\` serving HTTPS (\`--tls-cert\`, P-256 certificate from \`sky certs\`, TLS 1.3, keep-alive) vs the same without TLS | \`BENCH_ONLY=7 make bench\` | $(spread "$tt_rps" "$tt_lo" "$tt_hi") req/s; p50 $tt_p50 ms, p99 $tt_p99 ms; failed $(total 7-route-tls 3) | $(spread "$tp_rps" "$tp_lo" "$tp_hi") req/s; p50 $tp_p50 ms, p99 $tp_p99 ms; failed $(total 7-route-plain 3) | **$r_route_tls** | — |")
  ROWS_MD+=("| 7b. TLS: the chain of 2a with every hop in TLS (router listener and three services; the router verifies each service against the authority, pooled keep-alive connections) vs the same chain in plain HTTP | \`BENCH_ONLY=7 make bench\` | $(spread "$ct_rps" "$ct_lo" "$ct_hi") req/s; p50 $ct_p50 ms, p99 $ct_p99 ms; failed $(total 7-chain-tls 3); answer $TLS_ANSWER | $(spread "$cp_rps" "$cp_lo" "$cp_hi") req/s; p50 $cp_p50 ms, p99 $cp_p99 ms; failed $(total 7-chain-plain 3) | **$r_chain_tls** | — |")
  ANALYSIS+=("**TLS.** Serving the HTTP route over TLS ran at $r_route_tls of the same route in plain HTTP ($tt_rps against $tp_rps req/s); the cross-process chain with every hop in TLS ran at $r_chain_tls of the plain chain ($ct_rps against $cp_rps req/s). Medians of $ROUNDS alternating rounds; connections are kept alive on both sides, so this is the cost of encryption, not of handshakes.")
fi

# 8: a newcomer's first `make run`: a fresh clone of this commit with its own .build,
# `scripts/run.sh` (what `make run` runs), timed from the clone to the first 200 answer of
# route text. The Debian packages are already on this machine, so the apt step is a no-op
# here; on a machine without them their download and install come on top (the README says
# how long that took when measured).
if wants 8; then
  fresh="$WORK/first-run"
  t0=$(date +%s.%N)
  git clone -q "$ROOT" "$fresh"
  (cd "$fresh" && exec setsid scripts/run.sh --http 127.0.0.1:18801 --registry "sqlite:$WORK/first-run.sqlite") >"$WORK/first-run.log" 2>&1 &
  first_pid=$!
  first_ok=no
  until curl -sf -X POST 127.0.0.1:18801/routes/text -d '{"text":"first answer"}' >"$WORK/first-answer" 2>/dev/null; do
    kill -0 "$first_pid" 2>/dev/null || { echo "bench 8: make run ended early:"; tail -20 "$WORK/first-run.log"; break; }
    sleep 1
  done
  [ -s "$WORK/first-answer" ] && first_ok=yes
  t1=$(date +%s.%N)
  kill -- "-$first_pid" 2>/dev/null || kill "$first_pid" 2>/dev/null || true
  wait "$first_pid" 2>/dev/null || true
  first_seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", b - a }')
  first_build=$(grep -o "Build of product 'sky' complete! ([0-9.]*s)" "$WORK/first-run.log" | grep -o "[0-9.]*s" | tail -1)
  first_answer=$(cat "$WORK/first-answer" 2>/dev/null)
  rm -rf "$fresh"
  [ "$first_ok" = yes ] || first_seconds=99999
  ROWS_MD+=("| 8. First run: a fresh clone to the first answer of \`make run\` (\`scripts/run.sh\`: bootstrap, release build of \`sky\` only, \`sky run\`), Debian packages already installed | \`BENCH_ONLY=8 make bench\` | **${first_seconds} s** (the build: ${first_build:-?}); answer \`${first_answer}\` | the goal: 600 s | $(ratio "$first_seconds" 600) of the goal | ≤ 600 s: $(goal "8 first run, clone to first answer" "$first_seconds" "<=" 600) |")
  ANALYSIS+=("**First run.** A fresh clone answered its first request ${first_seconds} s after the clone began, ${first_build:-an unknown time} of it the release build of \`sky\`, on this machine with its Debian packages already installed.")
fi

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(swift --version 2>/dev/null | head -1)"
{
  cat <<MD
# Benchmarks

Written by \`make bench\` ($(date -u +%Y-%m-%d)). Every figure is measured in the same run as
its peer or limit, on the same machine; absolute numbers on a shared machine are noise, the
ratios are the result. Each side ran $ROUNDS times, alternating with its peers (the order
rotates each round); figures are medians with the spread (min–max) in brackets. Release
builds; HTTP load from wrk ($THREADS threads, $CONNECTIONS connections, ${DURATION} s per run after a
2 s warm-up, POST of \`{"text":"hello big world"}\` on loopback); benchmark 2's peers and
the engine beside them under one Python driver; STOMP from stomp.py. A goal marked NOT MET is
listed at the end with the figure that missed it.

Machine: $machine. Peers: ${PEER_VERSIONS:-not run}${STOMP_VERSION:+, $STOMP_VERSION (STOMP driver and relay)}.

| Benchmark | Command | Engine | Peer or limit | Ratio | Goal |
|---|---|---|---|---|---|
MD
  printf '%s\n' "${ROWS_MD[@]}"
  echo
  [ -n "${ANSWER1:-}" ] && echo "Answer of route \`text\` during the run: \`$ANSWER1\`."
  [ -n "${ANSWER2:-}" ] && echo "Answer of route \`chain\` during the run: \`$ANSWER2\`."
  [ -n "${PEER1:-}" ] && echo "The same-work Hummingbird handler answered \`$PEER1\`."
  echo
  echo "## What this run shows"
  echo
  echo "Written by \`scripts/bench.sh\` from this run's figures."
  echo
  printf '%s\n\n' "${ANALYSIS[@]}"
  if [ -s "$WORK/missed-goals" ]; then
    echo "Goals not met in this run, and what this run's profiles say about each:"
    echo
    while read -r missed; do
      echo "- $missed. $(why_missed "$missed")"
    done <"$WORK/missed-goals"
    echo
  fi
  if [ "${#PIECES_MD[@]}" -gt 0 ]; then
    echo "## The cost of one item, by piece"
    echo
    echo "Written by \`scripts/bench.sh\` from this run's profiles (\`Benchmarks/peers/cost_pieces.py\`)."
    echo
    printf '%s\n\n' "${PIECES_MD[@]}"
  fi
  if [ -s "$WORK/profiles.md" ]; then
    echo "## Profiles"
    echo
    echo "Sampled with perf in extra runs of this \`make bench\` (not the timed ones): where the engine's CPU went."
    echo
    cat "$WORK/profiles.md"
  fi
  if [ -f Benchmarks/SOAK.md ]; then echo; cat Benchmarks/SOAK.md; fi
} >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
cat BENCHMARKS.md
if [ -s "$WORK/missed-goals" ]; then
  sed 's/^/bench: goal not met: /' "$WORK/missed-goals" >&2
  exit 1
fi
