#!/usr/bin/env python3
"""Where a routed chat request's instructions go: the filter against builds
of itself that differ in one place each.

`make bench` counts what a whole request costs the front Envoy. This counts
the same (callgrind, scenario e of bench/run.py: the ~1 KiB chat for a
Gemini model, scanned and forwarded unchanged, with the bench's
`Authorization`, from a client that asks for gzip) for the filter as it is and for variants of it, each built
from a copy of the crate with one change to its source:

- a part left out (the response's `:status` read, the counters, the
  lifecycle lookup, the credential work, the free lists of small blocks):
  the difference is what that part costs (or saves);
- the `accept-encoding` removal done by the filter as well as by the route
  (the bench's fronts remove it on the route, as the shipped configs do):
  what leaving it to the route saves;
- the request body's step left out (all of it, or all but its scan): what
  that step costs at most, the decision and the response's handling
  included (a request that goes on unrouted reads no `:status`);
- a part done twice (the request header map read, the scan, the decision):
  the difference is what doing it once costs.

Each change is a literal replacement in the source; a replacement that no
longer matches the code stops the run and names the variant (update it with
the code). The variants measure; none of them is a correct filter.

With `--cache-sim` (as `make bench-parts` runs it) valgrind also simulates
the caches, and each build's first-level instruction-cache misses per
request are reported beside its instructions.

For the filter and the two minimal modules (with and without the `:status`
read), the costs are also split by the object whose code runs: Envoy's
executable, the code V8 generates (the module's compiled functions and the
wrappers and builtins V8 places beside them) and the shared libraries. That
says whether a difference is in what the module asks of Envoy or in the
module's own code.

Prints a Markdown table (and writes bench/parts.md); about 6 minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (bench/run.py: bodies, upstream, callgrind)

ROOT = R.ROOT
WORK = R.WORK / "parts"
# The crate's files a build needs.
CRATE = ["Cargo.toml", "Cargo.lock", "src", "data", ".cargo"]


@dataclass
class Variant:
    key: str
    what: str
    # (file under src/, text in it, replacement)
    edits: list[tuple[str, str, str]]


FILTER = "filter/mod.rs"
FLOW = "flow.rs"
POOLS = "filter/pools.rs"

VARIANTS = [
    Variant("status", "no response `:status` read (taken as 200)", [
        (FILTER, 'None => self.host.header(RESP, ":status"),', 'None => Some(b"200".to_vec()),'),
    ]),
    Variant("accept-encoding", "`accept-encoding` removed by the filter too (the filter's default; the route "
            "removes it as shipped): a request header write, after which Envoy matches the route again", [
        (FLOW, "let ask = (!config.route_removes_accept_encoding).then_some(&ASK_UNCOMPRESSED);",
         "let ask = Some(&ASK_UNCOMPRESSED);"),
    ]),
    Variant("counters", "no counters (`requests_total`, `unchanged.<family>`)", [
        (FILTER, "self.metrics.requests.inc(&self.host);", ""),
        (FILTER, "Verdict::Unchanged => self.metrics.unchanged(plan.family).inc(&self.host),",
         "Verdict::Unchanged => {}"),
    ]),
    Variant("lifecycle", "no lifecycle lookup", [
        (FLOW, "let notice = config.lifecycle.notice_at(&requested.id, || head.now.get());",
         "let notice: Option<crate::lifecycle::Notice> = None;"),
    ]),
    Variant("credentials", "no credential check, and the credential headers not kept", [
        (FLOW, "credentials: Credentials::new(",
         "credentials: (|_: Auth<'_>, _: bool| Credentials::default())("),
        (FLOW, "if let Err(e) = route::check_credentials(head.auth, query) {",
         "if let Err(e) = std::hint::black_box(Ok::<(), route::CredentialError>(())) {"),
    ]),
    Variant("allocator", "the system allocator (`dlmalloc`) for every block, no free lists", [
        (POOLS, "#[global_allocator]\n", ""),
    ]),
    # Upper bounds: what the request body's step costs, with everything
    # after it (the decision, the header writes, the response's `:status`
    # read and its handling) and then with the scan alone kept.
    Variant("body", "the body's step left out: the request goes on unrouted once its body is read", [
        (FILTER, "let Some(pending) = self.pending_body.take() else {",
         "let Some(pending) = self.pending_body.take().filter(|_| std::hint::black_box(body.is_empty())) else {"),
    ]),
    Variant("scan-only", "of the body's step, the scan alone: the request goes on unrouted after it", [
        (FLOW, 'let scanned = top_level_fields_noting(body, ["model", "stream", "tools"], notes);',
         'let scanned = top_level_fields_noting(body, ["model", "stream", "tools"], notes);\n'
         '    if std::hint::black_box(scanned.is_ok()) {\n'
         '        return BodyStep::Pass(PassReason::NoModel);\n'
         '    }'),
    ]),
    Variant("map", "the request header map read twice", [
        (FILTER, "self.head = RequestHead::read(&self.host);",
         "std::hint::black_box(RequestHead::read(&self.host));\n"
         "        self.head = RequestHead::read(&self.host);"),
    ]),
    Variant("scan", "the body scanned twice", [
        (FLOW, 'let scanned = top_level_fields_noting(body, ["model", "stream", "tools"], notes);',
         'std::hint::black_box(top_level_fields_noting(std::hint::black_box(body), '
         '["model", "stream", "tools"], notes).is_ok());\n'
         '    let scanned = top_level_fields_noting(body, ["model", "stream", "tools"], notes);'),
    ]),
    Variant("decide", "the decision (`flow::decide`) made twice", [
        (FLOW, 'let mut routed = decide(config, client, model, stream == Some(&b"true"[..]), head);',
         'std::hint::black_box(decide(config, client, std::hint::black_box(model.clone()), '
         'stream == Some(&b"true"[..]), head));\n'
         '    let mut routed = decide(config, client, model, stream == Some(&b"true"[..]), head);'),
    ]),
]


# The row of the shipped build (with its branch hints), among the variants'.
HINTED = "hinted"


def build_variant(variant: Variant, target_dir: Path) -> Path:
    """The module built from a copy of the crate with `variant`'s edits."""
    crate = WORK / variant.key
    shutil.rmtree(crate, ignore_errors=True)
    crate.mkdir(parents=True)
    for name in CRATE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, crate / name)
        elif source.exists():
            shutil.copy2(source, crate / name)
    for file, old, new in variant.edits:
        path = crate / "src" / file
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"parts: variant {variant.key!r}: src/{file} no longer has exactly one {old!r}; "
                             "update the variant in bench/parts.py")
        path.write_text(text.replace(old, new))
    R.log(f"building variant {variant.key}")
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
                    "--target-dir", str(target_dir)], cwd=crate, check=True)
    out = WORK / f"{variant.key}.wasm"
    shutil.copy2(target_dir / "wasm32-wasip1" / "release" / "gemini_router.wasm", out)
    return out


def split_report(split: dict[str, dict[str, dict[str, float]]], with_misses: bool) -> list[str]:
    """The table of where the three modules' costs are: by the object the
    executed code belongs to (bench/run.py's OBJECT_GROUPS)."""
    names = ["minimal", R.FLOOR, "filter"]

    def cell(group: str, event: str) -> str:
        values = [split[n][group].get(event, 0.0) for n in names]
        fmt = (lambda v: f"{v / 1000:.1f}k") if event == "Ir" else (lambda v: f"{v:,.0f}")
        sign = (lambda v: f"{v / 1000:+.1f}k") if event == "Ir" else (lambda v: f"{v:+,.0f}")
        return " / ".join(fmt(v) for v in values) + f" | {sign(values[2] - values[1])}"

    lines = [
        "",
        "Where those costs are, by the object whose code runs: Envoy's executable, the code V8 generates "
        "(the module's compiled functions, with the wrappers and builtins V8 places beside them: callgrind's "
        "`???`), and the shared libraries. Each cell: the minimal module / the one that reads `:status` / "
        "the filter, then the filter minus the one that reads `:status`.",
        "",
        "| code | instructions per request | filter − reads `:status`"
        + (" | misses per request | filter − reads `:status` |" if with_misses else " |"),
        "|---|---:|---:|" + ("---:|---:|" if with_misses else ""),
    ]
    for group in R.OBJECT_GROUPS:
        row = f"| {group} | {cell(group, 'Ir')} |"
        if with_misses:
            row += f" {cell(group, 'I1mr')} |"
        lines.append(row)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wasm", type=Path, default=ROOT / "target/wasm32-wasip1/release/gemini_router.wasm",
                        help="the filter as cargo builds it, as the variants are (default: cargo's output)")
    parser.add_argument("--envoy", type=Path, default=ROOT / ".venv/bin/envoy")
    parser.add_argument("--requests", type=int, default=1000, help="requests counted per build (default 1000; at 200 the counts move by about 1k)")
    parser.add_argument("--only", nargs="*", help="variant keys (default: all; `--only` alone: none, the filter "
                                                  "of --wasm and the minimal modules, with and without the `:status` read, alone)")
    parser.add_argument("--cache-sim", action="store_true",
                        help="also count first-level instruction-cache misses (valgrind's cache simulation; slower)")
    parser.add_argument("--out", default=str(R.BENCH / "parts.md"), help="Markdown report ('-' for none)")
    args = parser.parse_args()
    if not R.ensure_tools(need_node=False):
        return 1
    os.environ["ENVOY_BIN"] = str(args.envoy)
    variants = [v for v in VARIANTS if args.only is None or v.key in args.only]
    WORK.mkdir(parents=True, exist_ok=True)
    # The variants are cargo's builds, without the branch hints `make build`
    # adds (build/hints.py profiles requests that a variant may not serve):
    # the filter is counted without them too, so that a variant differs
    # from it by its edit alone.
    # The shipped build, with its hints, is one more row: what they save.
    filter_module = R.without_branch_hints(args.wasm, WORK / "filter.wasm")
    rows = [(v.key, v.what) for v in variants]
    if filter_module.read_bytes() != args.wasm.read_bytes():
        rows.insert(0, (HINTED, "the filter as `make build` ships it, with its branch hints"))
    modules = {"filter": filter_module, HINTED: args.wasm,
               **{v.key: build_variant(v, WORK / "target") for v in variants}}
    modules.update(R.build_ref_modules())
    bodies = R.write_bodies()
    scenario = R.Scenario("e", "chat, gemini model, ~1 KiB, from a client that asks for gzip", "POST", R.CHAT_PATH,
                          bodies.small, gzip=True)
    upstream = R.start_upstream()
    counts: dict[str, float] = {}
    misses: dict[str, float] = {}
    # The filter's and the two minimal modules' costs by where their code is.
    split: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for name in ["minimal", R.FLOOR, "filter", *(key for key, _ in rows)]:
            R.log(f"callgrind: {name}")
            by_object: dict[str, dict[str, dict[str, float]]] = {}
            events = R.callgrind_front(name, upstream.port, modules, [scenario], args.requests,
                                       cache_sim=args.cache_sim, by_object=by_object)["e"]
            split[name] = by_object["e"]
            counts[name] = events["Ir"]
            if "I1mr" in events:
                misses[name] = events["I1mr"]
    finally:
        upstream.stop()
    base, minimal, floor = counts["filter"], counts["minimal"], counts[R.FLOOR]
    lines = [
        "# Where a routed chat's instructions go",
        "",
        f"Generated by `bench/parts.py` (`make bench-parts`) on gemini-router {R.revision()}: the front "
        f"Envoy's instructions per request (callgrind, {args.requests} requests of `make bench`'s scenario e "
        "one at a time), for the filter and for builds of it changed in one place each (see the script), "
        "all without branch hints (`build/hints.py`), and for the filter as shipped, with them.",
        "",
        f"The filter: {base / 1000:.1f}k; the minimal module: {minimal / 1000:.1f}k "
        f"({base / minimal:.3f}×, {(base - minimal) / 1000:+.1f}k); the minimal module that also reads the "
        f"response's `:status` (bench/run.py's floor of a filter that maps upstream errors): {floor / 1000:.1f}k "
        f"(the filter {base / floor:.3f}× that, {(base - floor) / 1000:+.1f}k).",
    ]
    if misses:
        lines.append(f"First-level instruction-cache misses per request (`--cache-sim`): the filter "
                     f"{misses['filter']:,.0f}, the minimal module {misses['minimal']:,.0f} "
                     f"({misses['filter'] - misses['minimal']:+,.0f}), the one that reads `:status` "
                     f"{misses[R.FLOOR]:,.0f} ({misses['filter'] - misses[R.FLOOR]:+,.0f}).")
    lines += split_report(split, bool(misses))
    miss_head = " | misses | against the filter | of which in V8's code" if misses else ""
    lines += [
        "",
        f"| build | instructions per request | against the filter{miss_head} |",
        "|---|---:|---:|" + ("---:|---:|---:|" if misses else ""),
    ]
    v8 = R.OBJECT_GROUPS[1]
    for key, what in rows:
        row = f"| {what} | {counts[key] / 1000:.1f}k | {(counts[key] - base) / 1000:+.1f}k |"
        if misses:
            in_v8 = split[key][v8].get("I1mr", 0.0) - split["filter"][v8].get("I1mr", 0.0)
            row += f" {misses[key]:,.0f} | {misses[key] - misses['filter']:+,.0f} | {in_v8:+,.0f} |"
        lines.append(row)
    R.emit("\n".join(lines) + "\n", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
