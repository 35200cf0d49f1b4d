#!/usr/bin/env python3
"""Checks the module arrows README's "Layout" promises, from `swift package describe`.

Fails (exit 1) naming each arrow that should not exist: a role module (Routing, Initiators,
Services, Reaper, Discovery) depending on another role or on a registry driver; SkyLib depending on
Hummingbird, GRDB or CMongoc; anything but the node runtime, `sky` and tests linking a driver;
a module other than those holding a whole `Registry` rather than the roles it calls; library
code reading the process's environment (only `sky` does); library code reaching for NIO's
process-wide event loops, thread pool or HTTP client (only NodeContext chooses them); a metrics
API other than swift-metrics outside the Prometheus backend.
"""
import json
import subprocess
import sys

ROLES = {"Routing", "Initiators", "Services", "Reaper", "Discovery"}
DRIVERS = {"RegistrySQLite", "RegistryMongo", "RegistryMemory"}
DRIVER_USERS = {"NodeRuntime", "sky"}

described = json.loads(subprocess.run(
    ["swift", "package", "describe", "--type", "json"], check=True, capture_output=True, text=True
).stdout)
targets = {t["name"]: t for t in described["targets"]}


def depends(name):
    target = targets[name]
    return set(target.get("target_dependencies", [])) | set(target.get("product_dependencies", []))


problems = []
for role in sorted(ROLES):
    for dependency in sorted(depends(role) & (ROLES | DRIVERS | {"GRDB", "CMongoc"})):
        problems.append(f"{role} depends on {dependency}")
for dependency in sorted(depends("SkyLib") & {"Hummingbird", "HummingbirdCore", "GRDB", "CMongoc", "RegistryKit", "AdminHTTP", "ServiceLifecycle", "TLS", "NIOSSL", "Yams", "Prometheus", "NIOPosix", "RouteModel"}):
    problems.append(f"SkyLib depends on {dependency}")
# The route model (and its YAML parser) is its own module: what never reads a route does not link it.
for name in sorted({"TLS", "Telemetry", "RegistryKit", "Reaper", "Discovery", "AdminHTTP", "Services"} | DRIVERS):
    for dependency in sorted(depends(name) & {"RouteModel", "Yams"}):
        problems.append(f"{name} depends on {dependency} (only what runs or reads routes does)")
# TLS sits just above SkyLib: it knows no HTTP server, registry or role.
for dependency in sorted(depends("TLS") & (ROLES | DRIVERS | {"RegistryKit", "AdminHTTP", "Hummingbird", "HummingbirdCore"})):
    problems.append(f"TLS depends on {dependency}")
for name, target in sorted(targets.items()):
    if target["type"] == "test" or name in DRIVER_USERS or name in DRIVERS:
        continue
    for dependency in sorted(depends(name) & (DRIVERS | {"GRDB", "CMongoc"})):
        problems.append(f"{name} links the registry driver {dependency} (only {', '.join(sorted(DRIVER_USERS))} and tests may)")

import pathlib
import re
ROOT = pathlib.Path(__file__).resolve().parent.parent


def library_lines(excluding=(), test_support=False):
    """Every line of the library targets' Swift sources but those of the modules in
    `excluding`, as (module, file relative to the root, line number, line); the test support
    target (a library under Tests/) only when asked for."""
    for name, target in sorted(targets.items()):
        if target["type"] == "test" or name in excluding or "path" not in target:
            continue
        if target["path"].startswith("Tests/") and not test_support:
            continue
        for source in sorted((ROOT / target["path"]).rglob("*.swift")):
            relative = str(source.relative_to(ROOT))
            for number, line in enumerate(source.read_text().splitlines(), 1):
                yield name, relative, number, line


def code(line):
    return not line.strip().startswith("//")


# Each consumer takes only the registry roles it calls: a whole `Registry` is held only where
# parts are assembled (the node runtime, `sky`) and where it is defined and implemented.
WHOLE_REGISTRY_ALLOWED = DRIVER_USERS | DRIVERS | {"RegistryKit"}
for _, relative, number, line in library_lines(WHOLE_REGISTRY_ALLOWED, test_support=True):
    if re.search(r"\bany Registry\b(?!\w)", line) and code(line):
        problems.append(f"{relative}:{number} takes a whole Registry; take the roles it calls")

# The event loops, the thread pool and the HTTP client come from the node (NodeContext), which
# is the one place that may choose NIO's process-wide ones: library code is handed them.
SHARED_RESOURCES = re.compile(r"MultiThreadedEventLoopGroup\.singleton|NIOThreadPool\.singleton|HTTPClient\.shared|eventLoopGroupProvider: \.singleton|: NIOThreadPool = \.singleton")
CHOOSES_RESOURCES = {"Sources/NodeRuntime/NodeContext.swift"}
# swift-metrics is the one metrics API of the libraries; the Prometheus registry is one backend
# (Telemetry), chosen by the node runtime, which alone bootstraps swift-metrics' global system.
METRICS_BACKEND = {"Sources/Telemetry/Metrics/PrometheusBackend.swift"}
for name, relative, number, line in library_lines():
    if name != "sky":
        # Only the command line reads the process's environment: library code is given the values.
        if ("ProcessInfo.processInfo.environment" in line or "setenv(" in line) and code(line):
            problems.append(f"{relative}:{number} reads the environment; take the value from the command line (NodeContext.variables)")
        if SHARED_RESOURCES.search(line) and code(line) and relative not in CHOOSES_RESOURCES:
            problems.append(f"{relative}:{number} reaches for a process-wide NIO resource; take it from NodeContext (eventLoopGroup, threadPool)")
    if re.match(r"\s*(public |internal |package )?import Prometheus\b", line) and relative not in METRICS_BACKEND:
        problems.append(f"{relative}:{number} imports Prometheus; record through swift-metrics (Counters.backend.factory)")
    if "MetricsSystem.bootstrap" in line and code(line) and relative not in CHOOSES_RESOURCES:
        problems.append(f"{relative}:{number} bootstraps swift-metrics; only the node runtime chooses the backend")

for problem in problems:
    print(f"layout: {problem}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"layout: {len(targets)} targets; roles, SkyLib and drivers keep to README's arrows")
