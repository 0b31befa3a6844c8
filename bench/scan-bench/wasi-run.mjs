// Runs a wasm32-wasip1 command under Node's WASI, i.e. in V8, the engine
// Envoy runs the filter in. Usage:
//   node --single-threaded-gc wasi-run.mjs [--bodies DIR] MODULE.wasm ARGS...
// (node 20 crashes now and then, SIGSEGV in its concurrent GC, after the
// module has grown its memory to tens of MiB; --single-threaded-gc avoids it.)
// DIR is made visible to the module as /bodies; ARGS are the module's own.
// Two users: `make bench` times scan-bench.wasm with it, and `make
// unit-wasm` runs the unit tests built for wasm32-wasip1 with it (as
// cargo's runner for that target).
import { readFile } from "node:fs/promises";
import { WASI } from "node:wasi";
import process, { argv } from "node:process";

const rest = argv.slice(2);
const preopens = {};
if (rest[0] === "--bodies") {
  preopens["/bodies"] = rest[1];
  rest.splice(0, 2);
}
const [wasmPath, ...args] = rest;
const wasi = new WASI({
  version: "preview1",
  args: [wasmPath, ...args],
  preopens,
  returnOnExit: true,
});
const module = await WebAssembly.compile(await readFile(wasmPath));
// The crate links proxy-wasm, whose host calls (module "env") are imported
// but never called by the pure code run here: stub them to fail loudly.
const imports = wasi.getImportObject();
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (from === "env" && kind === "function") {
    imports.env ??= {};
    imports.env[name] = () => {
      throw new Error(`host call ${name} is not available outside Envoy`);
    };
  }
}
const instance = await WebAssembly.instantiate(module, imports);
// proxy-wasm also exports `_initialize` (a reactor entry), which Node's WASI
// refuses next to `_start`: hand it the command's exports only.
const { memory, _start } = instance.exports;
process.exitCode = wasi.start({ exports: { memory, _start } });
