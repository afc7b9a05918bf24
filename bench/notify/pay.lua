-- wrk: the buyer pays one fresh order per request, in turn
-- ($ORDERS_FILE: one out_trade_no per line), through the sandbox's
-- control API; the sandbox then signs and delivers the notification.
local lines = {}
for l in io.lines(os.getenv("ORDERS_FILE")) do lines[#lines + 1] = l end
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local n = 0
function request()
  n = n + 1
  local i = ((n - 1) * 2 + id) % #lines + 1
  return wrk.format("POST", "/sandbox/api/trades/pay", { ["Content-Type"] = "application/json" },
    '{"out_trade_no":"' .. lines[i] .. '"}')
end
