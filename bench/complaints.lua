-- wrk script used by bench/complaints.py: each wrk thread sends exactly its share of
-- POST /api/v1/complaints requests, every one with its own email address and order number.
--
-- Arguments (after `--`): total-requests threads run-prefix api-token
-- A thread that has sent its share answers further request() calls with an empty string (nothing
-- is written to the socket), prints "THREAD_DONE" once all its responses are in and stops; the
-- Python driver then interrupts wrk (SIGINT), which prints the figures from done().

local thread_count = 0
local threads = {}

-- Runs in the main Lua state, once per wrk thread.
function setup(thread)
   thread:set("thread_id", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

-- Runs in each thread's own Lua state.
local quota, sent, received, prefix = 0, 0, 0, "m"
statuses = {}

local TEMPLATE = '{"category":"refund","kind":"complaint","name":"Bench Customer",'
   .. '"email":"bench+%s-%s@example.com",'
   .. '"description":"My refund has not arrived after three weeks",'
   .. '"desired_resolution":"Refund please","order_number":"A-%s-%s",'
   .. '"purchase_date":"2026-10-01","amount":"12.50","accept_privacy":true}'

function init(args)
   local total, nthreads = tonumber(args[1]), tonumber(args[2])
   prefix = args[3]
   quota = math.floor(total / nthreads)
   if thread_id < total % nthreads then
      quota = quota + 1
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[4]
end

function request()
   if sent >= quota then
      return ""
   end
   sent = sent + 1
   local id = thread_id .. "-" .. sent
   return wrk.format(nil, nil, nil, string.format(TEMPLATE, prefix, id, prefix, id))
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   received = received + 1
   if received == quota then
      io.stdout:write("THREAD_DONE\n")
      io.stdout:flush()
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   io.write(string.format("BENCH duration_us %d\n", summary.duration))
   io.write(string.format("BENCH completed %d\n", summary.requests))
   for _, kind in ipairs({"connect", "read", "write", "status", "timeout"}) do
      io.write(string.format("BENCH error %s %d\n", kind, summary.errors[kind]))
   end
   for _, p in ipairs({50, 95, 99}) do
      io.write(string.format("BENCH p%d_us %d\n", p, latency:percentile(p)))
   end
   io.write(string.format("BENCH max_us %d\n", latency.max))
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         io.write(string.format("BENCH status %d %d\n", status, count))
      end
   end
end
