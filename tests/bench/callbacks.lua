-- callbacks.lua: wrk script that sends each callback path of a file once (one fresh session a request), never twice
--
--   wrk -t T -c C -d SECS -s callbacks.lua https://127.0.0.1:PORT -- PATHS_FILE T
--
-- PATHS_FILE holds one path a line (flow_bench --urls writes it). Thread k of T takes the lines k, k + T, k + 2T, ...
-- and formats its requests before the run starts, so a request costs the client no Lua work but a table lookup.
-- Once a thread has used all its lines it sends them again (the relay then answers 409, which wrk counts as
-- "Non-2xx or 3xx responses"); done() prints "CALLBACKS used=N have=M" so the caller can tell a run that ran out.
-- Extra headers (-H "Connection: close") go into every request.

local threads = {}

function setup(thread)
    thread:set("tid", #threads)
    table.insert(threads, thread)
end

function init(args)
    -- each thread has its own interpreter: setup() ran in the main one, so the thread count comes as an argument
    local file, nthreads = args[1], tonumber(args[2] or "1")
    reqs = {}
    local i = 0
    for line in io.lines(file) do
        if i % nthreads == tid then
            reqs[#reqs + 1] = wrk.format("GET", line)
        end
        i = i + 1
    end
    have = #reqs
    used = 0
    if have == 0 then
        error("callbacks.lua: no paths for thread " .. tid .. " in " .. file)
    end
end

function request()
    used = used + 1
    return reqs[(used - 1) % have + 1]
end

function done(summary, latency, requests)
    local u, h = 0, 0
    for _, t in ipairs(threads) do
        u = u + t:get("used")
        h = h + t:get("have")
    end
    io.write(string.format("CALLBACKS used=%d have=%d\n", u, h))
end
