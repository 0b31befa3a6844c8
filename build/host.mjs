// build/host.mjs: what the hosts of build/profile.mjs and
// bench/footprint.mjs share, each standing in for Envoy around a
// proxy-wasm module: the module's memory as the ABI reads and writes it,
// header maps in the ABI's wire form, WASI's few calls, and the module
// instantiated with a host's functions bound by name.
import fs from 'fs';

// The ABI's status codes (proxy-wasm 0.2.1).
export const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2;

// The instantiated module's exports and memory, as the host functions see them.
export class Guest {
  constructor() { this.exports = null; }
  get bytes() { return new Uint8Array(this.exports.memory.buffer); }
  get view() { return new DataView(this.exports.memory.buffer); }
  text(address, size) { return Buffer.from(this.exports.memory.buffer, address, size).toString(); }
  copy(address, size) { return Buffer.from(Buffer.from(this.exports.memory.buffer, address, size)); }

  // Hands `value` to the module as the host does: in memory the module
  // allocates, its address and size written to the two out-parameters.
  give(value, addressAt, sizeAt) {
    const allocate = this.exports.proxy_on_memory_allocate || this.exports.malloc;
    const address = value.length ? allocate(value.length) : 0;
    if (value.length) this.bytes.set(value, address);
    this.view.setUint32(addressAt, address, true);
    this.view.setUint32(sizeAt, value.length, true);
    return OK;
  }
}

// The host functions whose answers do not depend on the request: a log
// that drops lines (at level info), a tick, a fixed clock (2026-12-02, in
// nanoseconds), and metrics that count nothing.
export function fixedHost(guest) {
  return {
    proxy_log: () => OK,
    proxy_get_log_level: (at) => { guest.view.setUint32(at, 2, true); return OK; },
    proxy_set_tick_period_milliseconds: () => OK,
    proxy_get_current_time_nanoseconds: (at) => { guest.view.setBigUint64(at, 1796169600000000000n, true); return OK; },
    proxy_define_metric: (kind, name, size, idAt) => { guest.view.setUint32(idAt, 1, true); return OK; },
    proxy_increment_metric: () => OK,
  };
}

// A header map in the ABI's wire form: the count, each name's and value's
// length, then each name and value with a NUL after it.
export function wire(pairs) {
  const head = Buffer.alloc(4 + 8 * pairs.length);
  head.writeUInt32LE(pairs.length, 0);
  pairs.forEach(([name, value], i) => {
    head.writeUInt32LE(Buffer.byteLength(name), 4 + 8 * i);
    head.writeUInt32LE(Buffer.byteLength(value), 8 + 8 * i);
  });
  return Buffer.concat([head, ...pairs.flatMap(([n, v]) => [Buffer.from(n + '\0'), Buffer.from(v + '\0')])]);
}

// The module of `file` instantiated with `env`'s functions for its `env`
// imports and a minimal WASI for the others (an import neither has throws
// when called, naming it); `guest` gets its exports, which are returned.
export function instantiate(file, env, guest) {
  const wasi = {
    environ_sizes_get: (count, size) => { guest.view.setUint32(count, 0, true); guest.view.setUint32(size, 0, true); return OK; },
    environ_get: () => OK,
    fd_write: () => OK,
    proc_exit: (code) => { throw new Error(`the module exited (${code})`); },
  };
  const module = new WebAssembly.Module(fs.readFileSync(file));
  const imports = {};
  for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
    if (kind !== 'function') continue;
    const table = from === 'env' ? env : wasi;
    imports[from] ??= {};
    imports[from][name] = table[name] || (() => { throw new Error(`the host has no ${from}.${name}`); });
  }
  guest.exports = new WebAssembly.Instance(module, imports).exports;
  return guest.exports;
}
