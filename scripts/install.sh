#!/usr/bin/env bash
# Installs `sky`, its man pages and its shell completions (bash, zsh, fish) under a prefix.
#
#   scripts/install.sh [PREFIX]        (default /usr/local; `make install PREFIX=…`)
#
# The man pages come from swift-argument-parser's generate-manual plugin, which reads the
# same help text `sky --help` prints; the completions from `sky --generate-completion-script`.
# CONFIGURATION=debug installs the debug build (the tests do, to reuse their build).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${1:-${PREFIX:-/usr/local}}
CONFIGURATION=${CONFIGURATION:-release}

scripts/bootstrap.sh
echo "install: building sky ($CONFIGURATION)"
swift build -c "$CONFIGURATION" --product sky
bin="$(swift build -c "$CONFIGURATION" --show-bin-path)/sky"

echo "install: man pages (swift-argument-parser's generate-manual)"
# The plugin builds the package's products in CONFIGURATION first: nothing new after the
# build above, except its own small tool.
swift package plugin generate-manual --configuration "$CONFIGURATION" --multi-page --section 1 \
  --authors "the Skynet for Swift authors" >/dev/null
pages=$(find .build/plugins -path '*GenerateManual*' -name 'sky*.1' -newer "$bin" 2>/dev/null | head -1)
[[ -n "$pages" ]] || pages=$(find .build/plugins -path '*GenerateManual*' -name 'sky.1' | head -1)
[[ -n "$pages" ]] || { echo "install: generate-manual wrote no sky.1" >&2; exit 1; }
pages=$(dirname "$pages")

install -d "$PREFIX/bin" "$PREFIX/share/man/man1" "$PREFIX/share/bash-completion/completions" \
  "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d"
install -m 0755 "$bin" "$PREFIX/bin/sky"
install -m 0644 "$pages"/sky*.1 "$PREFIX/share/man/man1/"
"$bin" --generate-completion-script bash >"$PREFIX/share/bash-completion/completions/sky"
"$bin" --generate-completion-script zsh >"$PREFIX/share/zsh/site-functions/_sky"
"$bin" --generate-completion-script fish >"$PREFIX/share/fish/vendor_completions.d/sky.fish"
echo "install: sky, $(ls "$pages"/sky*.1 | wc -l) man pages and completions for bash, zsh and fish in $PREFIX"
