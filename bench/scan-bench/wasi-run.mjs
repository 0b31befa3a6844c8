// Runs scan-bench.wasm (wasm32-wasip1) under Node's WASI, i.e. in V8, the
// engine Envoy runs the filter in. Usage:
//   node --single-threaded-gc wasi-run.mjs scan-bench.wasm DIR ARGS...
// (node 20 crashes now and then, SIGSEGV in its concurrent GC, after the
// module has grown its memory to tens of MiB; --single-threaded-gc avoids it.)
// DIR is made visible to the module as /bodies; ARGS are scan-bench's own.
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process, { argv } from "node:process";

const [wasmPath, dir, ...args] = argv.slice(2);
const wasi = new WASI({
  version: "preview1",
  args: ["scan-bench", ...args],
  preopens: { "/bodies": dir },
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
// The crate links proxy-wasm, whose host calls (module "env") are imported
// but never called by the pure code measured here: stub them to fail loudly.
const imports = wasi.getImportObject();
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from === "env" && kind === "function") {
    imports.env ??= {};
    imports.env[name] = () => {
      throw new Error(`host call ${name} is not available in the benchmark`);
    };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// proxy-wasm also exports `_initialize` (a reactor entry), which Node's WASI
// refuses next to `_start`: hand it the command's exports only.
const { memory, _start } = instance.exports;
process.exitCode = wasi.start({ exports: { memory, _start } });
