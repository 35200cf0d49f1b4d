"""Where one item's CPU goes, by piece of the engine: the per-piece cost table of BENCHMARKS.md.

    perf script -F ip,sym,dso | python cost_pieces.py KIND CPU_US [PEER_CPU_US PEER_STACKS]

KIND is `csv`, `http`, `chain` or `stomp`. Each sample is charged to the innermost frame that names a
piece (its own code and what it calls: a counter's atomic add inside the instruments is the
instruments' cost), so the shares add up to 100 %, with the kernel and the runtime and
libraries for samples with no such frame at all (scheduling, wake-ups, I/O completions, idle
threads). CPU_US is the median CPU microseconds per item of the timed runs; each piece's share
of it is printed as a markdown table row: "| piece | share % | µs per item |".

With a peer (the same-work handler of 1a, the plain forwarder of 2a), its samples (the file
PEER_STACKS, `perf script` output of its own profile) are split by the same pieces and applied
to PEER_CPU_US, in two more columns: the two processes' microseconds, piece by piece.
"""
import re
import subprocess
import sys

# Pieces every kind has (the same code in each process).
BALANCER = ("balancer, dispatcher, registry cache", r"InstanceBalancer|ServiceDispatcher\.|LocalServices|RegistryCache")
COUNTERS = ("counters and histograms", r"Instruments\.|CounterCell|Histogram|CountedHandler|Prometheus|CoreMetrics|OTLP(Sum|Gauge|Histogram)")
TRACE = ("trace sampling and ids", r"TraceSampler|TraceContext|Identifiers|LazyIdentifier")
ROUTE_RUN = r"RouteExecutor\.|RouteRun|PromptLane|StepAttempts|RouteTable"
JSON_IO = ("JSON in and out", r"JSONParser|JSONReader|JSONWriter|JSONValue|JSONDecoder|JSONEncoder|JSONScanner|JSONMap")
HTTP_INITIATOR = ("HTTP initiator (request to envelope, answer)", r"HTTPInitiator")
SERVER_MODULES = r"^module:(Hummingbird\w*|NIO\w*|_NIO\w*|HTTPTypes\w*|AsyncAlgorithms)$"

# Ordered: the first piece whose pattern matches a frame, looking from the leaf outwards, wins.
PIECES = {
    "csv": [
        ("service handler (uppercase)", r"Uppercase\.handle|mappingStrings|String\.uppercased"),
        BALANCER,
        COUNTERS,
        TRACE,
        ("route run (lookup, steps, deadlines, envelope copies)", ROUTE_RUN + r"|ServiceHandler\.handle"),
        ("row to request (payload, meta, envelope)", r"CSVInitiator\.(run|request)\("),
        ("CSV reading and parsing", r"CSVReader\.|CSVFileReader\."),
        ("answers to JSON lines, reorder", r"CSVOutput\.append|JSONWriter|ReorderBuffer"),
        ("checkpoint writes and fsync", r"CheckpointWriter|CSVOutput\.write"),
        ("file loop, batches, tasks", r"CSVInitiator\.|CSVFileRun"),
    ],
    "chain": [
        BALANCER,
        COUNTERS,
        TRACE,
        ("the forwarder's own code (a loop over the hops)", r"PlainHops"),
        ("service calls: building the call, reading the answer (HTTPServiceClient)", r"HTTPServiceClient|ServiceResponse"),
        ("route run (lookup, steps, retries, deadlines, envelope copies)", ROUTE_RUN),
        JSON_IO,
        HTTP_INITIATOR,
        ("HTTP client (AsyncHTTPClient: pool, request state)", r"^module:AsyncHTTPClient$"),
        ("HTTP server and socket I/O (Hummingbird, NIO: sockets, parsing, event loops)", SERVER_MODULES),
    ],
    "stomp": [
        ("service handler (uppercase)", r"Uppercase\.handle|mappingStrings|String\.uppercased"),
        BALANCER,
        COUNTERS,
        TRACE,
        ("route run (lookup, steps, deadlines, envelope copies)", ROUTE_RUN + r"|ServiceHandler\.handle"),
        JSON_IO,
        ("STOMP frames: reading and writing them (StompFrameCodec)", r"StompFrame"),
        ("STOMP initiator (message to request, answer, ack after the receipt)", r"StompInitiator|StompInHand|KeyedLanes|Permits"),
        ("connection I/O (NIO: socket, event loop, async channel)", SERVER_MODULES),
    ],
    "http": [
        ("service handlers (uppercase, wordcount, audit)", r"Uppercase\.handle|WordCount|Wordcount|Audit\.handle|mappingStrings"),
        BALANCER,
        COUNTERS,
        TRACE,
        ("async step queue", r"AsyncStepQueue|fireAsync"),
        ("route run (lookup, steps, deadlines, envelope copies)", ROUTE_RUN + r"|ServiceHandler\.handle"),
        JSON_IO,
        HTTP_INITIATOR,
        ("the handler's own code (upper-case, count words)", r"HelloServer"),
        ("HTTP server (Hummingbird, NIO: sockets, parsing, event loops)", SERVER_MODULES),
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


def read_samples(text):
    """The samples of `perf script -F ip,sym,dso` output: each a list of (symbol, library), the leaf first."""
    samples = []
    for sample in text.split("\n\n"):
        # Each line: "ADDRESS SYMBOL (LIBRARY)", the leaf first.
        frames = []
        for line in sample.strip().split("\n"):
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                symbol, _, library = parts[1].rpartition(" (")
                frames.append((symbol or parts[1], library.rstrip(")")))
        if frames:
            samples.append(frames)
    return samples


def shares(samples, pieces, names):
    """Each piece's share of `samples` in percent, in `pieces` order, then the kernel's and the runtime's."""
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
    total = max(1, len(samples))
    rows = [(name, count) for name, count in counts.items()] + [(KERNEL, kernel), (RUNTIME, runtime)]
    return {name: 100.0 * count / total for name, count in rows}


KERNEL = "the kernel, outside any piece (scheduling, wake-ups, I/O completions)"
RUNTIME = "the Swift runtime and libraries, outside any piece (idle threads, task switches)"


def main():
    kind, cpu_us = sys.argv[1], float(sys.argv[2])
    pieces = [(name, re.compile(pattern)) for name, pattern in PIECES[kind]]
    samples = read_samples(sys.stdin.read())
    peer = None
    if len(sys.argv) >= 5:
        peer_cpu_us = float(sys.argv[3])
        with open(sys.argv[4]) as peer_file:
            peer = (peer_cpu_us, read_samples(peer_file.read()))
    if not samples:
        return
    # Names without modules or parameter types (which would name other pieces), and each
    # frame's module from its mangled name (pieces that are whole libraries match on that).
    all_samples = samples + (peer[1] if peer else [])
    symbols = sorted({symbol for frames in all_samples for symbol, _ in frames})
    demangled = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(symbols), capture_output=True, text=True).stdout.split("\n")
    names = dict(zip(symbols, demangled)) if len(demangled) >= len(symbols) else {symbol: symbol for symbol in symbols}
    engine = shares(samples, pieces, names)
    other = shares(peer[1], pieces, names) if peer else None
    ordered = sorted((name for name, _ in pieces), key=lambda name: -engine[name]) + [KERNEL, RUNTIME]
    for name in ordered:
        if other is not None and engine[name] == 0 and other[name] == 0:
            continue
        row = f"| {name} | {engine[name]:.1f} % | {cpu_us * engine[name] / 100:.2f} |"
        if other is not None:
            row += f" {other[name]:.1f} % | {peer[0] * other[name] / 100:.2f} |"
        print(row)


main()
