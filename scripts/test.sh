#!/usr/bin/env bash
# Runs every test: unit tests of each module and end-to-end tests that start the real `sky`
# binary. Installs what the tests need first. Builds once and reuses that build.
set -euo pipefail
cd "$(dirname "$0")/.."

# Headless Chromium (and a font) for the dashboard's browser test; tmux drives `sky cli` in a real terminal;
# promtool (Debian's prometheus package) lints /metrics; dig (bind9-dnsutils) asks `sky dns`.
# man-db, zsh and fish check what `make install` installs (man pages, completions).
scripts/bootstrap.sh chromium fonts-dejavu-core libgl1-mesa-dri tmux prometheus bind9-dnsutils socat man-db zsh fish
# The real MongoDB-wire server and STOMP broker the tests talk to, on loopback.
scripts/services.sh up

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
