#!/usr/bin/env bash
# The soak (not part of `make test`): mixed load over every initiator for SOAK_MINUTES
# (default 10) while a service instance is killed and restarted every 30 s; prints a report
# (memory, file descriptors, every input accounted for by id) to append to BENCHMARKS.md.
# Exits non-zero when any input is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh up
swift build -c release --product sky
WORK="$(mktemp -d /tmp/skynet-soak.XXXXXX)"
trap 'pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
set +e
.services/venv/bin/python Benchmarks/soak/soak.py "$(swift build -c release --show-bin-path)/sky" "$WORK" | tee .build/soak-report.md
status=${PIPESTATUS[0]}
set -e
# Kept for BENCHMARKS.md (make bench appends it); every figure and sentence is the script's.
{
  echo "## Soak (\`make soak\`, $(date -u +%Y-%m-%d))"
  echo
  echo "Mixed load over every initiator at once: two HTTP clients without pause, a JSON file dropped every 20 ms, a 5,000-row CSV file every 30 s, a STOMP message every 10 ms; every step goes to one of two \`uppercase\` instances in their own processes, one of which is SIGKILLed and restarted every 30 s."
  echo
  cat .build/soak-report.md
} >Benchmarks/SOAK.md
cat Benchmarks/SOAK.md >>BENCHMARKS.md
# A missing input fails the soak, after its report is kept.
exit "$status"
