#!/usr/bin/env python3
"""Checks docs/DECISIONS.md's promise about doc comments in Sources/: every public declaration
has a `///` comment, and there is at least one `///` line per six code lines.

Members that implement a protocol requirement (a Service's `run()`, a driver's `nodes()` …)
are left out: DocC shows the requirement's comment for them.
"""
import glob
import re
import sys

files = sorted(glob.glob("Sources/**/*.swift", recursive=True))
# Requirement names: of our protocols, and of the outside ones we conform to.
requirements = {"run", "handle", "encode", "decode", "description", "InboundOut", "OutboundIn", "InboundIn",
                "OutboundOut", "log", "metadata", "logLevel", "metadataProvider", "hash"}
for path in files:
    text = open(path).read()
    for protocol in re.finditer(r"protocol \w+[^{]*\{(.*?)\n\}", text, re.S):
        requirements.update(name.group(2) for name in re.finditer(r"\b(func|var) (\w+)", protocol.group(1)))

declaration = re.compile(
    r"\s*public (static |final |indirect |nonisolated |convenience )*"
    r"(func|var|let|struct|class|enum|protocol|init|actor|typealias|case|subscript)\b\s*(\w*)")
code = docs = 0
missing = []
for path in files:
    lines = open(path).read().split("\n")
    docs += sum(1 for line in lines if line.strip().startswith("///"))
    code += sum(1 for line in lines if line.strip() and not line.strip().startswith("//"))
    for number, line in enumerate(lines):
        match = declaration.match(line)
        if not match:
            continue
        kind, name = match.group(2), match.group(3)
        if kind in ("func", "var", "typealias") and name in requirements and "static" not in line:
            continue
        above = number - 1
        while above >= 0 and lines[above].strip().startswith("@"):
            above -= 1
        if above < 0 or not lines[above].strip().startswith("///"):
            missing.append(f"{path}:{number + 1}: public declaration without a /// comment: {line.strip()[:100]}")

for problem in missing:
    print(problem, file=sys.stderr)
ratio = code / max(docs, 1)
print(f"doc comments: {docs} /// lines for {code} code lines (one per {ratio:.1f}); {len(missing)} public declarations without one")
if missing or ratio > 6:
    sys.exit(1)
