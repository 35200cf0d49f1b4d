"""Where one item's CPU goes, by piece of the engine: the per-piece cost table of BENCHMARKS.md.

    perf script -F ip,sym,dso | python cost_pieces.py KIND CPU_US

KIND is `csv` or `http`. Each sample is charged to the innermost frame that names a piece
(its own code and what it calls: a counter's atomic add inside the instruments is the
instruments' cost), so the shares add up to 100 %, with the kernel and the runtime and libraries
for samples with no such frame at all (scheduling, wake-ups, I/O completions, idle threads). CPU_US is
the median CPU microseconds per item of the timed runs; each piece's share of it is printed
as a markdown table row: "| piece | share % | µs per item |".
"""
import re
import subprocess
import sys

# Ordered: the first piece whose pattern matches a frame, looking from the leaf outwards, wins.
PIECES = {
    "csv": [
        ("service handler (uppercase)", r"Uppercase\.handle|mappingStrings|String\.uppercased"),
        ("balancer, dispatcher, registry cache", r"InstanceBalancer|ServiceDispatcher\.|LocalServices|RegistryCache"),
        ("counters and histograms", r"Instruments\.|CounterCell|Histogram|CountedHandler|Prometheus|CoreMetrics|OTLP(Sum|Gauge|Histogram)"),
        ("trace sampling and ids", r"TraceSampler|TraceContext|Identifiers|LazyIdentifier"),
        ("route run (lookup, steps, deadlines, envelope copies)", r"RouteExecutor\.|RouteRun|PromptLane|StepAttempts|RouteTable|ServiceHandler\.handle"),
        ("row to request (payload, meta, envelope)", r"CSVInitiator\.(run|request)\("),
        ("CSV reading and parsing", r"CSVReader\.|CSVFileReader\."),
        ("answers to JSON lines, reorder", r"CSVOutput\.append|JSONWriter|ReorderBuffer"),
        ("checkpoint writes and fsync", r"CheckpointWriter|CSVOutput\.write"),
        ("file loop, batches, tasks", r"CSVInitiator\.|CSVFileRun"),
    ],
    "http": [
        ("service handlers (uppercase, wordcount, audit)", r"Uppercase\.handle|WordCount|Wordcount|Audit\.handle|mappingStrings"),
        ("balancer, dispatcher, registry cache", r"InstanceBalancer|ServiceDispatcher\.|LocalServices|RegistryCache"),
        ("counters and histograms", r"Instruments\.|CounterCell|Histogram|CountedHandler|Prometheus|CoreMetrics|OTLP(Sum|Gauge|Histogram)"),
        ("trace sampling and ids", r"TraceSampler|TraceContext|Identifiers|LazyIdentifier"),
        ("async step queue", r"AsyncStepQueue|fireAsync"),
        ("route run (lookup, steps, deadlines, envelope copies)", r"RouteExecutor\.|RouteRun|PromptLane|StepAttempts|RouteTable|ServiceHandler\.handle"),
        ("JSON in and out", r"JSONParser|JSONReader|JSONWriter|JSONValue"),
        ("HTTP initiator (request to envelope, answer)", r"HTTPInitiator"),
        ("HTTP server (Hummingbird, NIO: sockets, parsing, event loops)", r"^module:(Hummingbird\w*|NIO\w*|_NIO\w*|HTTPTypes\w*|AsyncAlgorithms)$"),
    ],
}


MANGLED_MODULE = re.compile(r"^\$s(\d+)")


def module_of(symbol):
    """The module a Swift symbol's mangled name starts with ("$s8NIOPosix…" → NIOPosix)."""
    match = MANGLED_MODULE.match(symbol)
    if not match:
        return ""
    start = match.end()
    return symbol[start:start + int(match.group(1))]


def main():
    kind, cpu_us = sys.argv[1], float(sys.argv[2])
    pieces = [(name, re.compile(pattern)) for name, pattern in PIECES[kind]]
    samples = []
    for sample in sys.stdin.read().split("\n\n"):
        # Each line: "ADDRESS SYMBOL (LIBRARY)", the leaf first.
        frames = []
        for line in sample.strip().split("\n"):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                symbol, _, library = parts[1].rpartition(" (")
                frames.append((symbol or parts[1], library.rstrip(")")))
        if frames:
            samples.append(frames)
    if not samples:
        return
    # Names without modules or parameter types (which would name other pieces), and each
    # frame's module from its mangled name (pieces that are whole libraries match on that).
    symbols = sorted({symbol for frames in samples for symbol, _ in frames})
    demangled = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(symbols), capture_output=True, text=True).stdout.split("\n")
    names = dict(zip(symbols, demangled)) if len(demangled) >= len(symbols) else {symbol: symbol for symbol in symbols}
    counts = {name: 0 for name, _ in pieces}
    kernel = runtime = 0
    for frames in samples:
        charged = None
        for symbol, _ in frames:
            candidates = (names.get(symbol, symbol), "module:" + module_of(symbol))
            charged = next((name for name, pattern in pieces if any(pattern.search(text) for text in candidates)), None)
            if charged:
                break
        if charged:
            counts[charged] += 1
        elif "kernel" in frames[0][1]:
            kernel += 1
        else:
            runtime += 1
    total = len(samples)
    rows = sorted(counts.items(), key=lambda item: -item[1]) + [
        ("the kernel, outside any piece (scheduling, wake-ups, I/O completions)", kernel),
        ("the Swift runtime and libraries, outside any piece (idle threads, task switches)", runtime),
    ]
    for name, count in rows:
        share = 100.0 * count / total
        print(f"| {name} | {share:.1f} % | {cpu_us * share / 100:.2f} |")


main()
