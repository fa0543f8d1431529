-- wrk script: each request is a heartbeat from the next device in the token list.
-- Threads start at evenly spaced offsets so they never send the same device in step.
local tokens = {}
local index = 0
local body = '{"battery_level": 77, "wifi_strength": -60, "uptime_seconds": 1200}'
local threads = 0
-- With WRK_PACE_MS set, each connection waits that long after every answer, as
-- devices paced by their heartbeat interval do: the latencies then measure the
-- service, not the queue that a server driven flat out builds.
local pace = tonumber(os.getenv("WRK_PACE_MS") or "")
if pace then
  function delay()
    return pace
  end
end

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  index = math.floor(offset * #tokens / 2)
end

function request()
  index = index % #tokens + 1
  local headers = {}
  headers["Authorization"] = "Bearer " .. tokens[index]
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", "/api/devices/heartbeat", headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("P50_US %d\nP99_US %d\nNON2XX %d\n",
    latency:percentile(50), latency:percentile(99),
    summary.errors.status))
end
