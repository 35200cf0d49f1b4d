#!/usr/bin/env bash
# Checks what `make install` promises, with the tools people use: the man pages render with
# man(1), and the completion scripts complete `sky` subcommands and flags in bash and fish
# (zsh: the script parses). Installs the debug build under .build/install-check.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix="$PWD/.build/install-check"
rm -rf "$prefix"
CONFIGURATION=debug scripts/install.sh "$prefix" >/dev/null
fail() { echo "check-install: $*" >&2; exit 1; }

# man: the main page lists the subcommands; each subcommand has its page, with its flags.
MANWIDTH=120 man -l "$prefix/share/man/man1/sky.1" 2>/dev/null | grep -q "sky.run(1)" || fail "sky.1 does not list sky.run(1)"
run_page="$prefix/share/man/man1/sky.run.1"
[[ -f "$run_page" ]] || fail "no man page for sky run in $(ls "$prefix/share/man/man1" | tr '\n' ' ')"
MANWIDTH=120 man -l "$run_page" 2>/dev/null | grep -q -- "--http" || fail "$(basename "$run_page") does not show --http"
MANPATH="$prefix/share/man" man -w sky >/dev/null 2>&1 || fail "man sky does not find the page under $prefix/share/man"

# bash: the function the script defines completes subcommands and a subcommand's flags,
# called as bash calls it (command, word, previous word).
bash_complete() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _sky "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$prefix/share/bash-completion/completions/sky" "$@"
}
bash_complete sky rou | grep -qx "router" || fail "bash does not complete 'sky rou' to router: $(bash_complete sky rou | tr '\n' ' ')"
bash_complete sky run --ht | grep -qx -- "--http" || fail "bash does not complete 'sky run --ht' to --http"

# fish: its own completion engine, asked with complete -C.
fish -c "source $prefix/share/fish/vendor_completions.d/sky.fish; complete -C 'sky rou'" | grep -q "^router" \
  || fail "fish does not complete 'sky rou' to router"
fish -c "source $prefix/share/fish/vendor_completions.d/sky.fish; complete -C 'sky run --ht'" | grep -q -- "^--http" \
  || fail "fish does not complete 'sky run --ht' to --http"

# zsh: the script at least parses.
zsh -n "$prefix/share/zsh/site-functions/_sky" || fail "_sky does not parse in zsh"
echo "check-install: man pages render; bash and fish complete sky's subcommands and flags; zsh parses _sky"
