#!/usr/bin/env python3
"""Markdown tables for ./scripts/bench.

  report.py criterion DIR
      criterion's estimates under DIR (target/criterion): median per benchmark, with
      its 95% confidence interval.
  report.py loops NATIVE3 NATIVE WASM
      the timing loop of bench/ natively at opt-level 3, natively with the filter's
      profile, and in Node's V8 with the filter's profile: ns per call and the ratios.
  report.py levels LEVEL=SIZE=FILE ...
      per opt-level of the filter: its .wasm size and the V8 timings of that level.

The loop files hold `name ns_per_call` lines, as bench/src/main.rs prints them.
"""

import json
import pathlib
import sys


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def criterion(root):
    rows = []
    for bench in sorted(pathlib.Path(root).glob("**/new/benchmark.json")):
        estimates = json.loads((bench.parent / "estimates.json").read_text())
        median = estimates["median"]
        interval = median["confidence_interval"]
        rows.append((
            json.loads(bench.read_text())["full_id"],
            median["point_estimate"],
            interval["lower_bound"],
            interval["upper_bound"],
        ))
    print("| benchmark | median | 95% interval |")
    print("| --- | ---: | ---: |")
    for name, point, low, high in rows:
        print(f"| `{name}` | {fmt_ns(point)} | {fmt_ns(low)} – {fmt_ns(high)} |")


def read_loop(path):
    results = {}
    for line in pathlib.Path(path).read_text().splitlines():
        name, ns = line.split()
        results[name] = float(ns)
    return results


def loops(native3, native, wasm):
    native3, native, wasm = read_loop(native3), read_loop(native), read_loop(wasm)
    print("| measurement | native, opt-level 3 | native, filter profile | V8, filter profile "
          "| V8 ÷ native 3 | V8 ÷ native, same profile |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, ns in wasm.items():
        print(f"| `{name}` | {fmt_ns(native3[name])} | {fmt_ns(native[name])} | {fmt_ns(ns)} "
              f"| {ns / native3[name]:.1f}× | {ns / native[name]:.1f}× |")


def verify(wasm):
    """The core's signature verifiers beside the ones jwt-compact ships, in V8."""
    results = read_loop(wasm)
    print("| algorithm | scopegate (V8) | jwt-compact's crate (V8) | speed-up |")
    print("| --- | ---: | ---: | ---: |")
    for name, ns in results.items():
        if name.startswith("verify/"):
            alg = name.split("/", 1)[1]
            crate = results.get(f"verify_jwt_compact/{alg}")
            if crate:
                print(f"| {alg} | {fmt_ns(ns)} | {fmt_ns(crate)} | {crate / ns:.1f}× |")


def levels(specs):
    runs = []
    for spec in specs:
        level, size, path = spec.split("=", 2)
        runs.append((level, int(size), read_loop(path)))
    names = list(runs[0][2])
    print("| filter opt-level | filter .wasm | " + " | ".join(f"`{n}`" for n in names) + " |")
    print("| --- | ---: |" + " ---: |" * len(names))
    for level, size, results in runs:
        cells = " | ".join(fmt_ns(results[n]) for n in names)
        print(f"| `{level}` | {size:,} B ({size / 1024:.0f} KiB) | {cells} |")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"criterion": lambda: criterion(*args), "loops": lambda: loops(*args),
     "levels": lambda: levels(args), "verify": lambda: verify(*args)}[command]()
