// bench/footprint.mjs: drives a proxy-wasm module through routed chat
// requests, with a host of its own in place of Envoy, for bench/footprint.py
// (which runs it under callgrind and reads V8's perf map).
//
//   node --no-liftoff --no-wasm-lazy-compilation --perf-basic-prof \
//     bench/footprint.mjs MODULE WARM_UP REQUESTS BODY CONFIG
//
// Each request is what Envoy asks of the module for a POST of BODY to
// /v1beta/openai/chat/completions answered 200: context created, request
// headers, the whole body, response headers, the response body, context
// deleted. The host answers the ABI calls the module makes on that path
// (header maps, buffers, one header, the clock, metrics); any other call
// gets a failure status, and a call the module makes that this host does
// not define stops the run. It checks nothing of what the module does:
// bench/footprint.py only counts the code it runs.
import fs from 'fs';
import { Guest, NOT_FOUND, OK, fixedHost, instantiate, wire } from '../build/host.mjs';

const [file, warmUp, requests, bodyFile, configText] = process.argv.slice(2);
const body = fs.readFileSync(bodyFile);
const config = Buffer.from(configText);

// The ABI's numbers (proxy-wasm 0.2.1).
const REQUEST_BODY = 0, PLUGIN_CONFIGURATION = 7;
const REQUEST_HEADERS = 0;

const requestHeaders = [
  [':authority', '127.0.0.1:10000'], [':path', '/v1beta/openai/chat/completions'], [':method', 'POST'],
  [':scheme', 'http'], ['user-agent', 'hey/0.0.1'], ['content-length', String(body.length)],
  ['content-type', 'application/json'], ['authorization', 'Bearer bench-key'], ['x-forwarded-proto', 'http'],
  ['x-request-id', '0b8a2f4e-1d2c-4a57-9a43-2c6b5f1f9e10'],
];
const responseHeaders = [
  [':status', '200'], ['content-type', 'application/json'], ['content-length', '250'],
  ['date', 'Sat, 05 Dec 2026 00:00:00 GMT'], ['server', 'envoy'], ['x-envoy-upstream-service-time', '0'],
];

const guest = new Guest();

const headersOf = (map) => (map === REQUEST_HEADERS ? requestHeaders : responseHeaders);
// Header reads by name, printed at the end (bench/footprint.py checks that
// the filter read `:status` once per request: that it routed the chat).
const reads = {};
const fails = () => NOT_FOUND;

const env = {
  ...fixedHost(guest),
  proxy_get_buffer_bytes: (type, start, max, addressAt, sizeAt) => {
    if (type === REQUEST_BODY) return guest.give(body.subarray(start, start + max), addressAt, sizeAt);
    if (type === PLUGIN_CONFIGURATION) return guest.give(config, addressAt, sizeAt);
    return NOT_FOUND;
  },
  proxy_get_header_map_pairs: (map, addressAt, sizeAt) => guest.give(wire(headersOf(map)), addressAt, sizeAt),
  proxy_get_header_map_value: (map, name, size, addressAt, sizeAt) => {
    const wanted = guest.text(name, size);
    reads[wanted] = (reads[wanted] || 0) + 1;
    const found = headersOf(map).find(([n]) => n === wanted);
    return found ? guest.give(Buffer.from(found[1]), addressAt, sizeAt) : NOT_FOUND;
  },
  proxy_replace_header_map_value: () => OK,
  proxy_remove_header_map_value: () => OK,
  proxy_get_property: fails,
  proxy_get_shared_data: fails,
  proxy_set_shared_data: () => OK,
};
const exports = instantiate(file, env, guest);

(exports._initialize || (() => {}))();
exports.proxy_on_context_create(1, 0);
if (exports.proxy_on_vm_start) exports.proxy_on_vm_start(1, 0);
if (!exports.proxy_on_configure(1, config.length)) throw new Error('the configuration was refused');

let id = 2;
function request() {
  const context = id++;
  exports.proxy_on_context_create(context, 1);
  exports.proxy_on_request_headers(context, requestHeaders.length, 0);
  exports.proxy_on_request_body(context, body.length, 1);
  exports.proxy_on_response_headers(context, responseHeaders.length, 0);
  exports.proxy_on_response_body(context, 250, 1);
  if (exports.proxy_on_done) exports.proxy_on_done(context);
  if (exports.proxy_on_log) exports.proxy_on_log(context);
  exports.proxy_on_delete(context);
}
for (let i = 0; i < Number(warmUp) + Number(requests); i++) request();
console.log(JSON.stringify(reads));
