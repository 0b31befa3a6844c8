-- wrk script for bench/run.py.
--   wrk ... -s bench/wrk.lua URL -- METHOD [BODY_FILE [BEARER_TOKEN [gzip]]]
-- Sends METHOD with the body read from BODY_FILE (if given),
-- "Authorization: Bearer BEARER_TOKEN" (default bench-key) and, with "gzip",
-- "Accept-Encoding: gzip" (as the SDKs' HTTP clients send it; without it no
-- Accept-Encoding), and prints one line "BENCH-JSON {...}" with the totals
-- and latency percentiles (µs), so run.py does not parse wrk's human-readable
-- report.

function init(args)
  wrk.method = args[1] or "GET"
  local token = args[3] or ""
  if token == "" then token = "bench-key" end
  wrk.headers["Authorization"] = "Bearer " .. token
  if args[4] == "gzip" then
    wrk.headers["Accept-Encoding"] = "gzip"
  end
  if args[2] and args[2] ~= "" then
    local f = assert(io.open(args[2], "rb"))
    wrk.body = f:read("*a")
    f:close()
    wrk.headers["Content-Type"] = "application/json"
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-JSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
