// build/profile.mjs: runs a module through the requests the filter serves
// most, with a host of its own in place of Envoy, for build/hints.py.
//
//   node build/profile.mjs MODULE OUT
//
// MODULE is the filter built by build/hints.py with a counter on each
// conditional branch (exported i64 globals `b0`, `b1`, ...: the times the
// condition was true in the high 32 bits, the times it was tested in the
// low). Each workload below is sent as Envoy sends it (context created,
// request headers, body, response headers, response body in chunks,
// context deleted), and its outcome is checked (routed: the filter read
// the answer's status; the path it sent; what the client got): a profile
// of a request that went wrong would lay out the wrong code, so a workload that does not
// end as expected stops the run. OUT gets the counters that moved, as JSON
// ({"b12": [true, tested], ...}).
import fs from 'fs';
import { BAD_ARGUMENT, Guest, NOT_FOUND, OK, fixedHost, instantiate, wire } from './host.mjs';

const [file, out] = process.argv.slice(2);
if (!file || !out) throw new Error('usage: node build/profile.mjs MODULE OUT');

// The ABI's numbers (proxy-wasm 0.2.1).
const REQUEST_BODY = 0, RESPONSE_BODY = 1, PLUGIN_CONFIGURATION = 7;
const REQUEST_HEADERS = 0, RESPONSE_HEADERS = 2;
const CONTINUE = 0;

const CONFIG = Buffer.from(JSON.stringify({ api_style: 'openai' }));
const CHAT_PATH = '/v1beta/openai/chat/completions';

// The workloads: an OpenAI chat for a Gemini model (forwarded unchanged),
// streamed and not, with and without `Accept-Encoding`, with a large inline
// image (the scanner's long strings), a chat for an image model
// (translated to generateContent and its answer back), and the native
// API's generateContent, streamed and not. Their branches that
// go one way in all of them get a hint; a branch that goes both ways gets
// none.
function chat(model, { image = 0, stream = false } = {}) {
  const messages = [{ role: 'system', content: 'You are a concise assistant.' }];
  if (image) {
    const data = Buffer.alloc(image * 3 / 4, 7).toString('base64');
    messages.push({ role: 'user', content: [
      { type: 'text', text: 'What is in this picture?' },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${data}` } },
    ] });
  } else {
    const text = 'Summarise this paragraph in one sentence. ' + 'The quick brown fox jumps over the lazy dog. '.repeat(18);
    messages.push({ role: 'user', content: text });
  }
  return Buffer.from(JSON.stringify({ messages, temperature: 0.2, max_tokens: 256, ...(stream ? { stream } : {}), model }));
}
const completion = Buffer.from(JSON.stringify({
  id: 'chatcmpl-1', object: 'chat.completion', created: 1796169600, model: 'gemini-3.5-flash',
  choices: [{ index: 0, message: { role: 'assistant', content: 'A fox jumps over a dog.' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 120, completion_tokens: 8, total_tokens: 128 },
}));
const sse = (n) => Array.from({ length: n }, (_, i) => Buffer.from(`data: ${JSON.stringify({
  id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1796169600, model: 'gemini-3.5-flash',
  choices: [{ index: 0, delta: i === 0 ? { role: 'assistant', content: 'A fox' } : { content: ' jumps.' }, finish_reason: i === n - 1 ? 'stop' : null }],
})}\n\n`)).concat([Buffer.from('data: [DONE]\n\n')]);
const generated = Buffer.from(JSON.stringify({
  candidates: [{ content: { role: 'model', parts: [
    { text: 'Here is the picture.' },
    { inlineData: { mimeType: 'image/png', data: Buffer.alloc(3000, 9).toString('base64') } },
  ] }, finishReason: 'STOP', index: 0 }],
  usageMetadata: { promptTokenCount: 12, candidatesTokenCount: 1290, totalTokenCount: 1302 },
  modelVersion: 'gemini-3.1-flash-image',
}));

// The native API's requests, as the Google SDKs send them: the model in
// the path, the key in `x-goog-api-key`.
const contents = Buffer.from(JSON.stringify({
  contents: [{ role: 'user', parts: [{ text: 'Summarise this paragraph in one sentence. ' + 'The quick brown fox jumps over the lazy dog. '.repeat(18) }] }],
  generationConfig: { temperature: 0.2, maxOutputTokens: 256 },
}));
const answered = Buffer.from(JSON.stringify({
  candidates: [{ content: { role: 'model', parts: [{ text: 'A fox jumps over a dog.' }] }, finishReason: 'STOP', index: 0 }],
  usageMetadata: { promptTokenCount: 120, candidatesTokenCount: 8, totalTokenCount: 128 }, modelVersion: 'gemini-3.5-flash',
}));
const answeredSse = [0, 1, 2].map((i) => Buffer.from(`data: ${JSON.stringify({
  candidates: [{ content: { role: 'model', parts: [{ text: i ? ' jumps.' : 'A fox' }] }, ...(i === 2 ? { finishReason: 'STOP' } : {}), index: 0 }],
  modelVersion: 'gemini-3.5-flash',
})}\r\n\r\n`));
const NATIVE = '/v1beta/models/gemini-3.5-flash:generateContent';
const NATIVE_SSE = '/v1beta/models/gemini-3.5-flash:streamGenerateContent?alt=sse';

const WORKLOADS = [
  { name: 'chat', times: 40, body: chat('gemini-3.5-flash'), answer: [completion],
    expect: { path: CHAT_PATH, answer: 'chat.completion"' } },
  { name: 'chat asking for gzip', times: 20, body: chat('gemini-3.5-flash'), gzip: true, answer: [completion],
    expect: { path: CHAT_PATH, answer: 'chat.completion"', removed: 'accept-encoding' } },
  { name: 'streamed chat', times: 40, body: chat('gemini-3.5-flash', { stream: true }), answer: sse(4),
    contentType: 'text/event-stream', expect: { path: CHAT_PATH, answer: '[DONE]' } },
  { name: 'chat with a 256 KiB image', times: 4, body: chat('gemini-3.5-flash', { image: 256 * 1024 }), answer: [completion],
    expect: { path: CHAT_PATH, answer: 'chat.completion"' } },
  { name: 'chat for an image model', times: 20, body: chat('gemini-3.1-flash-image'), answer: [generated],
    expect: { path: '/v1beta/models/gemini-3.1-flash-image:generateContent', answer: 'chat.completion"' } },
  { name: 'native generateContent', times: 40, path: NATIVE, native: true, body: contents, answer: [answered],
    expect: { path: NATIVE, answer: '"candidates"' } },
  { name: 'native streamGenerateContent', times: 20, path: NATIVE_SSE, native: true, body: contents, answer: answeredSse,
    contentType: 'text/event-stream', expect: { path: NATIVE_SSE, answer: 'STOP' } },
];

const guest = new Guest();

// The request in flight: its header maps and buffers, as Envoy holds them.
let stream;
const maps = (map) => (map === REQUEST_HEADERS ? stream.request : map === RESPONSE_HEADERS ? stream.response : null);
const buffers = (type) => (type === REQUEST_BODY ? 'body' : type === RESPONSE_BODY ? 'chunk' : null);
const shared = new Map();

const env = {
  ...fixedHost(guest),
  proxy_get_buffer_bytes: (type, start, max, addressAt, sizeAt) => {
    if (type === PLUGIN_CONFIGURATION) return guest.give(CONFIG.subarray(start, start + max), addressAt, sizeAt);
    const key = buffers(type);
    if (!key || !stream[key]) return NOT_FOUND;
    return guest.give(stream[key].subarray(start, start + max), addressAt, sizeAt);
  },
  proxy_set_buffer_bytes: (type, start, size, data, dataSize) => {
    const key = buffers(type);
    if (!key || !stream[key]) return NOT_FOUND;
    const old = stream[key];
    stream[key] = Buffer.concat([old.subarray(0, start), guest.copy(data, dataSize), old.subarray(Math.min(old.length, start + size))]);
    return OK;
  },
  proxy_get_header_map_pairs: (map, addressAt, sizeAt) => {
    const pairs = maps(map);
    if (map === RESPONSE_HEADERS) stream.statusRead = true;
    return pairs ? guest.give(wire(pairs), addressAt, sizeAt) : BAD_ARGUMENT;
  },
  proxy_get_header_map_value: (map, name, size, addressAt, sizeAt) => {
    const wanted = guest.text(name, size);
    if (map === RESPONSE_HEADERS && wanted === ':status') stream.statusRead = true;
    const found = (maps(map) || []).find(([n]) => n === wanted);
    return found ? guest.give(Buffer.from(found[1]), addressAt, sizeAt) : NOT_FOUND;
  },
  proxy_replace_header_map_value: (map, name, size, value, valueSize) => {
    const pairs = maps(map);
    if (!pairs) return BAD_ARGUMENT;
    const key = guest.text(name, size);
    const kept = pairs.filter(([n]) => n !== key);
    kept.push([key, guest.text(value, valueSize)]);
    pairs.splice(0, pairs.length, ...kept);
    return OK;
  },
  proxy_add_header_map_value: (map, name, size, value, valueSize) => {
    const pairs = maps(map);
    if (!pairs) return BAD_ARGUMENT;
    pairs.push([guest.text(name, size), guest.text(value, valueSize)]);
    return OK;
  },
  proxy_remove_header_map_value: (map, name, size) => {
    const pairs = maps(map);
    if (!pairs) return BAD_ARGUMENT;
    const key = guest.text(name, size);
    pairs.splice(0, pairs.length, ...pairs.filter(([n]) => n !== key));
    return OK;
  },
  proxy_send_local_response: (status) => { stream.reply = status; return OK; },
  proxy_get_property: () => NOT_FOUND,
  proxy_get_shared_data: (key, size, addressAt, sizeAt, casAt) => {
    const value = shared.get(guest.text(key, size));
    if (!value) return NOT_FOUND;
    guest.view.setUint32(casAt, 1, true);
    return guest.give(value, addressAt, sizeAt);
  },
  proxy_set_shared_data: (key, size, value, valueSize) => { shared.set(guest.text(key, size), guest.copy(value, valueSize)); return OK; },
  proxy_continue_stream: () => OK,
};
const exports = instantiate(file, env, guest);

(exports._initialize || (() => {}))();
exports.proxy_on_context_create(1, 0);
if (!exports.proxy_on_configure(1, CONFIG.length)) throw new Error('profile: the configuration was refused');

// One request of `workload` through context `id`; what the client got.
function request(workload, id) {
  const request = [
    [':authority', 'gemini.example'], [':path', workload.path || CHAT_PATH], [':method', 'POST'], [':scheme', 'http'],
    ['user-agent', 'profile'], ['content-length', String(workload.body.length)],
    ['content-type', 'application/json'], workload.native ? ['x-goog-api-key', 'profile-key'] : ['authorization', 'Bearer profile-key'],
    ...(workload.gzip ? [['accept-encoding', 'gzip']] : []), ['x-request-id', `profile-${id}`],
  ];
  stream = { request, response: null, body: workload.body, chunk: null, reply: null, statusRead: false };
  exports.proxy_on_context_create(id, 1);
  exports.proxy_on_request_headers(id, request.length, 0);
  exports.proxy_on_request_body(id, workload.body.length, 1);
  if (stream.reply !== null) throw new Error(`profile: ${workload.name}: answered ${stream.reply} by the filter`);
  const answer = Buffer.concat(workload.answer);
  stream.response = [
    [':status', '200'], ['content-type', workload.contentType || 'application/json'],
    ...(workload.contentType ? [] : [['content-length', String(answer.length)]]),
    ['date', 'Sat, 05 Dec 2026 00:00:00 GMT'], ['server', 'envoy'],
  ];
  exports.proxy_on_response_headers(id, stream.response.length, 0);
  const sent = [];
  let held = [];
  workload.answer.forEach((chunk, i) => {
    stream.chunk = Buffer.concat([...held, chunk]);
    const end = i === workload.answer.length - 1;
    if (exports.proxy_on_response_body(id, stream.chunk.length, end ? 1 : 0) === CONTINUE) {
      sent.push(stream.chunk); held = [];
    } else {
      held = [stream.chunk];
    }
  });
  sent.push(...held);
  exports.proxy_on_delete(id);
  const path = (request.find(([n]) => n === ':path') || [])[1];
  return { path, answer: Buffer.concat(sent).toString(), request, routed: stream.statusRead };
}

let id = 2;
for (const workload of WORKLOADS) {
  for (let i = 0; i < workload.times; i++) {
    const got = request(workload, id++);
    const { expect } = workload;
    // A request the filter routes is one whose answer's status it reads
    // (`:status` alone, or the whole header map).
    const wrong = !got.routed ? 'not routed (the answer\'s status was not read)'
      : got.path !== expect.path ? `path ${got.path}`
      : !got.answer.includes(expect.answer) ? `answer ${got.answer.slice(0, 200)}`
      : expect.removed && got.request.some(([n]) => n === expect.removed) ? `${expect.removed} kept`
      : null;
    if (wrong) throw new Error(`profile: ${workload.name}: not served as expected: ${wrong}`);
  }
}

const counts = {};
for (const [name, global] of Object.entries(exports)) {
  if (!/^b\d+$/.test(name) || global.value === 0n) continue;
  counts[name] = [Number(global.value >> 32n), Number(global.value & 0xffffffffn)];
}
fs.writeFileSync(out, JSON.stringify(counts));
