-- A POST load when BENCH_FORM is set (its value is the form body), as
-- `bench --big-store` uses for POST /login.
local form = os.getenv("BENCH_FORM")
if form then
  wrk.method = "POST"
  wrk.body = form
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

-- Prints wrk's summary as one JSON line (exact microseconds, every error kind),
-- so the benchmark does not have to parse wrk's human-readable report.
-- Only `done` is defined: per-request Lua callbacks would slow wrk down.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-SUMMARY {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
