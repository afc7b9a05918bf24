-- wrk: POST one form per request from $BODIES_FILE (one per line), each of
-- the 2 threads taking every other line: every body is sent once while
-- they last.
local bodies = {}
for l in io.lines(os.getenv("BODIES_FILE")) do bodies[#bodies + 1] = l end
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end
local n = 0
function request()
  n = n + 1
  local i = ((n - 1) * 2 + id) % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8" }, bodies[i])
end
