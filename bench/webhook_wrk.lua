-- wrk script of bench/webhook.py: replays pre-built, pre-signed WeChat webhook requests and
-- checks every response.
--
--   wrk -t T -c C -d Ds --timeout 10s -s bench/webhook_wrk.lua URL -- FILE T EXPECT REJECT
--
-- FILE holds one request a line: "<path?query>\t<body>", built and signed by
-- bench/webhook.py right before the run. Thread k (1-based) of T sends the lines k, k+T,
-- k+2T … in order, so no two requests of one run share a MsgId unless a thread runs out of
-- lines and starts over (counted as "wraps"). A response counts as good when its status is
-- 200, its body contains EXPECT ("<Content>", or "<Encrypt>" for safe-mode replies) and,
-- when REJECT is not empty, does not contain REJECT (the bot's apology for an error).
-- done() prints one line "QIYI_RESULT {json}" for the benchmark to read.

local threads = {}
local count = 0

function setup(thread)
   count = count + 1
   thread:set("tid", count)
   table.insert(threads, thread)
end

function init(args)
   local file, nthreads = args[1], tonumber(args[2])
   expected = args[3]
   rejected = args[4] or ""
   requests_ = {}
   local line_no = 0
   for line in io.lines(file) do
      if line_no % nthreads == tid - 1 then
         local tab = line:find("\t", 1, true)
         requests_[#requests_ + 1] = wrk.format(
            "POST", line:sub(1, tab - 1), { ["Content-Type"] = "text/xml" }, line:sub(tab + 1)
         )
      end
      line_no = line_no + 1
   end
   position = 0
   wraps = 0
   bad = 0
   first_bad = ""
end

function request()
   position = position + 1
   if position > #requests_ then
      position = 1
      wraps = wraps + 1
   end
   return requests_[position]
end

function response(status, headers, body)
   if status ~= 200 or not body:find(expected, 1, true)
      or (rejected ~= "" and body:find(rejected, 1, true)) then
      bad = bad + 1
      if first_bad == "" then
         first_bad = tostring(status) .. " " .. body:sub(1, 160)
      end
   end
end

local function quoted(text)
   return '"' .. text:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

function done(summary, latency, requests)
   local bad_total, wraps_total, sample = 0, 0, ""
   for _, thread in ipairs(threads) do
      bad_total = bad_total + thread:get("bad")
      wraps_total = wraps_total + thread:get("wraps")
      if sample == "" then sample = thread:get("first_bad") end
   end
   local e = summary.errors
   io.write(string.format(
      'QIYI_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
         .. '"max_us": %d, "mean_us": %.1f, "bad": %d, "connect": %d, "read": %d, '
         .. '"write": %d, "timeout": %d, "status": %d, "wraps": %d, "sample": %s}\n',
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency.max, latency.mean, bad_total, e.connect, e.read, e.write, e.timeout, e.status,
      wraps_total, quoted(sample)
   ))
end
