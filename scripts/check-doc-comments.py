#!/usr/bin/env python3
"""Checks docs/DECISIONS.md's promise about doc comments in Sources/: every public declaration
has a `///` comment, and every module (each folder of Sources/) has `///` lines for at least
23 % of its code lines, Hummingbird's density.

Code lines are the non-blank lines that are not comments; the bodies of multi-line string
literals (the generator's templates, SQL) are data, not code, and are not counted.

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
MINIMUM = 0.23


def count(lines):
    """(`///` lines, code lines) of one file, skipping the bodies of multi-line string literals."""
    docs = code = 0
    closing = None
    for line in lines:
        text = line.strip()
        if closing:
            if text.startswith(closing):
                closing = None
            continue
        if text.startswith("///"):
            docs += 1
            continue
        if not text or text.startswith("//"):
            continue
        code += 1
        if text.endswith('#"""'):
            closing = '"""#'
        elif text.endswith('"""') and text.count('"""') == 1:
            closing = '"""'
    return docs, code


modules = {}
missing = []
for path in files:
    lines = open(path).read().split("\n")
    module = path.split("/")[1]
    docs, code = count(lines)
    totals = modules.setdefault(module, [0, 0])
    totals[0] += docs
    totals[1] += code
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

thin = []
for module, (docs, code) in sorted(modules.items()):
    if docs < MINIMUM * code:
        thin.append(f"Sources/{module}: {docs} /// lines for {code} code lines ({100 * docs / max(code, 1):.1f} %), "
                    f"under {MINIMUM:.0%}: {int(MINIMUM * code + 0.999) - docs} more needed")
for problem in missing + thin:
    print(problem, file=sys.stderr)
docs = sum(d for d, _ in modules.values())
code = sum(c for _, c in modules.values())
lowest = min(modules.items(), key=lambda item: item[1][0] / max(item[1][1], 1))
print(f"doc comments: {docs} /// lines for {code} code lines ({100 * docs / max(code, 1):.1f} %); lowest module "
      f"{lowest[0]} at {100 * lowest[1][0] / max(lowest[1][1], 1):.1f} %; {len(missing)} public declarations without one")
if missing or thin:
    sys.exit(1)
