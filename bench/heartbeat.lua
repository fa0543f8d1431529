-- wrk script: each request is a heartbeat from the next device in the token list.
local tokens = {}
local index = 0
local body = '{"battery_level": 77, "wifi_strength": -60, "uptime_seconds": 1200}'

function init(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  -- Spread threads over the list so they do not send the same devices in step.
  index = math.random(#tokens)
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
