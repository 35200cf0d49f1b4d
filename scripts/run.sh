#!/usr/bin/env bash
# The main job: builds `sky` (release) and runs everything in one process on the embedded
# registry, with the example routes of Routes/, serving HTTP on 127.0.0.1:8080.
# Extra arguments go to `sky run` (e.g. --http 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

echo "run: building sky (release; the first build takes a few minutes)"
swift build -c release --product sky
exec "$(swift build -c release --show-bin-path)/sky" run "$@"
