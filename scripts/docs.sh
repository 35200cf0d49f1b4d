#!/usr/bin/env bash
# Builds the DocC catalogs (SkyLib, RouteModel, RegistryKit, Services) with the toolchain's `docc` and
# fails on any warning (a broken link, a parameter left undocumented). The symbol graphs are
# extracted from the existing debug build (`swift package dump-symbol-graph`), so this costs
# seconds after `swift build`, not a build of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
swift package dump-symbol-graph >/dev/null
graphs="$(swift build --show-bin-path)/../symbolgraph"
out=.build/docs
mkdir -p "$out"
status=0
for module in SkyLib RouteModel RegistryKit Services; do
    rm -rf "$out/$module-graphs" && mkdir -p "$out/$module-graphs"
    cp "$graphs/$module.symbols.json" "$out/$module-graphs/"
    cp "$graphs/$module"@*.symbols.json "$out/$module-graphs/" 2>/dev/null || true
    docc convert "Sources/$module/$module.docc" --additional-symbol-graph-dir "$out/$module-graphs" \
        --output-path "$out/$module.doccarchive" --fallback-display-name "$module" \
        --fallback-bundle-identifier "org.skynet.$module" --warnings-as-errors >"$out/$module.log" 2>&1 \
        || { status=1; grep -A4 -E "warning|error" "$out/$module.log" >&2; }
done
[ "$status" = 0 ] && echo "docs: $out/{SkyLib,RouteModel,RegistryKit,Services}.doccarchive, no warnings"
exit "$status"
