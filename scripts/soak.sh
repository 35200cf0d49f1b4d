#!/usr/bin/env bash
# The soak (not part of `make test`): mixed load over every initiator for SOAK_MINUTES
# (default 10) while a service instance is killed and restarted every 30 s; prints a report
# (memory, file descriptors, work sent and done) to append to BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/services.sh up
swift build -c release --product sky
WORK="$(mktemp -d /tmp/skynet-soak.XXXXXX)"
trap 'pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
.services/venv/bin/python Benchmarks/soak/soak.py "$(swift build -c release --show-bin-path)/sky" "$WORK" | tee .build/soak-report.md
# Kept for BENCHMARKS.md (make bench appends it); edit the prose line by hand after a run.
{ echo "## Soak (\`make soak\`, $(date -u +%Y-%m-%d))"; echo; cat .build/soak-report.md; } >Benchmarks/SOAK.md
cat Benchmarks/SOAK.md >>BENCHMARKS.md
