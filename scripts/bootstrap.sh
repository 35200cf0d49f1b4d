#!/usr/bin/env bash
# Installs what building Skynet needs on a fresh Debian machine: the C libraries the
# packages link against. Swift itself must already be on PATH (swift.org toolchain).
# Safe to run again: it installs only what is missing.
set -euo pipefail

if ! command -v swift >/dev/null 2>&1; then
  echo "bootstrap: swift is not on PATH; install a Swift 6.1+ toolchain first (https://www.swift.org/install/)" >&2
  exit 1
fi

need=()
for package in libsqlite3-dev libmongoc-dev libbson-dev libedit-dev pkg-config curl "$@"; do
  dpkg -s "$package" >/dev/null 2>&1 || need+=("$package")
done
if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
