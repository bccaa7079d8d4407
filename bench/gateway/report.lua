-- wrk: POST one small non-streaming chat completion for the model named in $BENCH_MODEL, and print the
-- run's figures as one JSON line at the end (latencies in microseconds).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. (os.getenv("BENCH_MODEL") or "bench-upstream") ..
  '","messages":[{"role":"user","content":"ping"}],"max_tokens":8}'

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"socket_errors":%d,"non2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
