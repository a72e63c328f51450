-- luagrad.beam: BEAM search over kernel optimizations (BEAM=n, n the beam's width), in the manner
-- of tinygrad's beam_search. For one kernel:
--   the beam starts as the kernel without opts; each round extends every entry of the beam by
--   every single step that applies (upcast of an output range, unroll or accumulate of a reduce
--   range, by each of AMOUNTS that divides its size or pads it by at most a quarter; swap of two
--   ranges of a kind), plus in the first round the heuristic's whole list (luagrad.opt); the
--   candidates are compiled at once (core.programs), run on buffers of the kernel's sizes holding
--   random data, and kept when their output is the unoptimized kernel's (exactly for integers and
--   booleans, within a tolerance for floats) and they ran in time (a first run over LIMIT seconds,
--   or over twice the best so far and SHORT, drops them; the others get the best of RUNS more
--   runs; on the CPU, when the kernel without opts takes over PROBE seconds, a candidate first
--   runs 1/PART of its split loop, and one whose whole run would take too long by that is
--   dropped without it); the `width` fastest make the next beam. The search stops when a round finds nothing
--   faster than the best so far, or after ROUNDS rounds.
-- The winner (its opts list) is cached on disk under the device cache's root,
-- core.cache_path(device, "beam", the unoptimized source and the width): one text file per
-- kernel, a step a line, written under a temporary name and renamed into place; later runs apply
-- it without searching.
--
--   search(sink, job) -> result       the search; job (below) says how to compile and run
--   optimize(sink, job) -> sink        the cached opts applied, else search and cache them
-- job: {device =, name = (the kernel's entry), width =, buffers = {{dtype =, n =}...} (the
-- kernel's parameters in order: the output first), lower = (optional) passes after the opts
-- (sink -> sink), render = (optional) sink, opts -> source (default core.render of the lowered
-- sink), rounds = (optional, default ROUNDS), debug = (optional) a level as DEBUG}.
-- result: {opts =, time =, base_time =, heuristic_time =, candidates = (compiled), seconds =,
-- rounds =, kept = {{opts =, time =}...}, dropped = {{opts =, why =}...}}.
-- Kernels the search cannot run alone (sizes or parameters not known until launch, addresses
-- read from memory) get the heuristic's opts.
local core = require "luagrad.core"
local opt = require "luagrad.opt"

local M = {}

local AMOUNTS = { 2, 3, 4, 8, 16 }
local WIDTHS = { 4, 8, 16 } -- vector lanes a candidate may get (one axis per kernel)
local ROUNDS = 6      -- rounds at most
local MAX_COPIES = 256 -- copies of the body (product of the amounts) a candidate may have
local LIMIT = 1.0     -- seconds: a slower first run drops a candidate
local RUNS = 3        -- timed runs of a candidate after the one checked, the best counts
local SHORT = 1e-3    -- seconds: a first run this short is not dropped for being slow (noise)
local PROBE = 1e-2    -- seconds: over this, the kernel without opts has CPU candidates probed first
local PART = 64       -- the part of a kernel's split loop a probe runs: 1/PART (at least THREADS trips)
local CHUNK = 65536   -- elements written or compared at a time
local CACHE_FORMAT = "luagrad beam 1"

local function fail(fmt, ...) error("beam: " .. fmt:format(...), 3) end

-- ---- the candidates -------------------------------------------------------------------------

local function copies_of(opts)
  local n = 1
  for _, o in ipairs(opts) do
    if o[1] ~= "swap" and o[1] ~= "pad" then n = n * o[3] end
  end
  return n
end

local function extended(opts, step)
  local out = { table.unpack(opts) }
  out[#out + 1] = step
  return out
end

local function opts_text(opts)
  local parts = {}
  for i, o in ipairs(opts) do parts[i] = table.concat(o, " ") end
  return #parts > 0 and table.concat(parts, ", ") or "none"
end

-- the single steps that apply to a kernel (its ranges after `opts`)
local function steps(sink, opts)
  local ranges, out, lanes = {}, {}, false
  for _, r in pairs(opt.ranges(sink)) do
    if r.kind == opt.LANES then lanes = true else ranges[#ranges + 1] = r end
  end
  table.sort(ranges, function(a, b) return a.axis < b.axis end)
  local copies = copies_of(opts)
  for _, r in ipairs(ranges) do
    for _, w in ipairs(lanes and {} or WIDTHS) do
      if r.size % w == 0 then out[#out + 1] = { "vectorize", r.axis, w } end
    end
    for _, a in ipairs(AMOUNTS) do
      local padded = (r.size + a - 1) // a * a
      if a <= r.size and padded - r.size <= r.size // 4 and copies * a <= MAX_COPIES then
        if r.kind == 0 then
          out[#out + 1] = { "upcast", r.axis, a }
        else
          out[#out + 1] = { "unroll", r.axis, a }
          out[#out + 1] = { "accumulate", r.axis, a }
        end
      end
    end
  end
  for i = 1, #ranges do
    for j = i + 1, #ranges do
      if ranges[i].kind == ranges[j].kind then out[#out + 1] = { "swap", ranges[i].axis, ranges[j].axis } end
    end
  end
  return out
end

-- why the search cannot run the kernel on its own, or nil
local function unsearchable(sink)
  for _, r in pairs(opt.ranges(sink)) do
    if not r.size then return "a range of a size known at launch" end
  end
  local loaded = {}
  for _, u in ipairs(sink:toposort()) do
    if u.op == "DEFINE_VAR" then return "a scalar parameter" end
    local l = u.op == "LOAD"
    for _, s in ipairs(u.src) do l = l or loaded[s] end
    loaded[u] = l
    if u.op == "INDEX" and loaded[u.src[2]] then return "an address read from memory" end
  end
end

-- ---- buffers ----------------------------------------------------------------------------------

-- a generator of pseudo-random 53-bit fractions (a PCG-style LCG: the data are the same each run)
local function rng(seed)
  local x = seed
  return function()
    x = x * 6364136223846793005 + 1442695040888963407
    return (x >> 11) * 2.0 ^ -53
  end
end

-- fill buf (n elements of dtype dt) with random values: floats in [-1, 1), integers in [1, 8]
-- (never a divisor of 0), booleans
local function fill_random(buf, dt, n, rand)
  for first = 1, n, CHUNK do
    local vals = {}
    for i = 1, math.min(CHUNK, n - first + 1) do
      local r = rand()
      if dt.kind == "float" then
        vals[i] = r * 2 - 1
      elseif dt.kind == "bool" then
        vals[i] = r < 0.5
      else
        vals[i] = 1 + math.floor(r * 8)
      end
    end
    buf:write(vals, first)
  end
end

-- relative tolerance of a float dtype's results, whose additions a candidate may reorder
local function tolerance(dt) return dt.itemsize >= 4 and 1e-4 or 1e-2 end

-- the largest finite magnitude in a float buffer: the scale of the tolerance
local function magnitude(buf, n)
  local scale = 0
  for first = 1, n, CHUNK do
    for _, v in ipairs(buf:read(first, math.min(CHUNK, n - first + 1))) do
      if v == v and math.abs(v) ~= math.huge then scale = math.max(scale, math.abs(v)) end
    end
  end
  return scale
end

-- nil when got holds what want holds (exactly, or for floats within tol * (|want| + scale)),
-- else why not
local function compare(want, got, dt, n, scale)
  if want:read_bytes() == got:read_bytes() then return nil end
  if dt.kind ~= "float" then return "a different result" end
  local tol = tolerance(dt)
  for first = 1, n, CHUNK do
    local count = math.min(CHUNK, n - first + 1)
    local w, g = want:read(first, count), got:read(first, count)
    for i = 1, count do
      local a, b = w[i], g[i]
      if a ~= b and not (a ~= a and b ~= b) and not (math.abs(a - b) <= tol * (math.abs(a) + scale)) then
        return ("a different result at element %d: %s, not %s"):format(first + i - 1, tostring(b), tostring(a))
      end
    end
  end
end

-- ---- the search -------------------------------------------------------------------------------

-- the threads of the CPU device's pool: THREADS, else the processors
local function threads()
  local n = math.tointeger(tonumber(os.getenv("THREADS") or ""))
  if n and n >= 1 then return n end
  n = 0
  local f = io.open("/proc/cpuinfo")
  if f then
    for line in f:lines() do
      if line:match("^processor%s*:") then n = n + 1 end
    end
    f:close()
  end
  return math.max(n, 1)
end

local function default_render(job)
  return function(sink)
    if job.lower then sink = job.lower(sink) end
    return core.render(job.device, sink, job.name)
  end
end

-- the byte 0x5a all over a buffer: what a candidate must overwrite
local function poison(buf) buf:write_bytes(string.rep("\x5a", buf.nbytes)) end

function M.search(sink, job)
  local why = unsearchable(sink)
  if why then fail("kernel %s has %s", job.name, why) end
  local render = job.render or default_render(job)
  local debug = job.debug or 0
  local t_start = core.clock()
  local out_spec = job.buffers[1]
  local out = core.buffer(job.device, out_spec.dtype, math.max(1, out_spec.n))
  local ref = core.buffer(job.device, out_spec.dtype, math.max(1, out_spec.n))
  local args, rand = { out }, rng(0x5eed)
  for i = 2, #job.buffers do
    local b = job.buffers[i]
    args[i] = core.buffer(job.device, b.dtype, math.max(1, b.n))
    fill_random(args[i], b.dtype, math.max(1, b.n), rand)
  end

  local result = { kept = {}, dropped = {}, candidates = 0 }
  local function drop(c, reason)
    result.dropped[#result.dropped + 1] = { opts = c.opts, why = reason }
    if debug >= 3 then print(("    beam %s: dropped %s: %s"):format(job.name, opts_text(c.opts), reason)) end
  end

  -- the reference: the kernel without opts
  local base_src = render(opt.apply(sink, {}), {})
  local base = core.programs(job.device, { base_src }, { job.name })[1]
  if type(base) == "string" then fail("kernel %s without opts does not compile: %s", job.name, base) end
  result.candidates = 1
  local ref_args, n_out = { ref, table.unpack(args, 2) }, math.max(1, out_spec.n)
  poison(ref)
  local t0 = core.clock()
  base:launch(ref_args)
  local best_time = core.clock() - t0
  for _ = 2, best_time <= LIMIT and RUNS or 1 do
    t0 = core.clock()
    base:launch(ref_args)
    best_time = math.min(best_time, core.clock() - t0)
  end
  local scale = out_spec.dtype.kind == "float" and magnitude(ref, n_out) or 0
  local best = { opts = {}, time = best_time }
  result.base_time = best_time
  local times = { [base_src] = best_time } -- source -> time (of the first run when dropped for it)
  local seen = { [base_src] = true }

  -- A probe of a CPU candidate: the first trips of its split loop (the C source says how many it
  -- has) on the pool, each a core of its own; the seconds a whole run would take, or nil.
  local probing, nthreads = job.device:upper():match("^CPU") and best_time > PROBE, threads()
  local function probe(c)
    local trips = probing and math.tointeger(tonumber(c.src:match("_split%[2%] = {(%d+), %d+}") or ""))
    local part = trips and math.max(nthreads, trips // PART)
    if not part or part >= trips then return nil end
    local t0 = core.clock()
    c.prog:launch(args, nil, trips, part)
    return (core.clock() - t0) * trips / part
  end

  -- the time of a candidate {opts =, src =, prog =}, or nil when it is dropped
  local function measure(c)
    local guess = probe(c)
    if guess and (guess > LIMIT or guess > 2 * best.time) then
      times[c.src] = guess
      return drop(c, ("too slow: about %.1f us"):format(guess * 1e6))
    end
    poison(out)
    local t0 = core.clock()
    c.prog:launch(args)
    local t = core.clock() - t0
    times[c.src] = t
    if t > LIMIT or (t > 2 * best.time and t > SHORT) then return drop(c, ("too slow: %.1f us"):format(t * 1e6)) end
    local wrong = compare(ref, out, out_spec.dtype, n_out, scale)
    if wrong then return drop(c, wrong) end
    t = math.huge
    for _ = 1, RUNS do
      t0 = core.clock()
      c.prog:launch(args)
      t = math.min(t, core.clock() - t0)
    end
    times[c.src] = t
    return t
  end

  -- the candidates kept, fastest first
  local function run_all(cands)
    local kept = {}
    for _, c in ipairs(cands) do
      c.time = measure(c)
      c.prog = nil
      if c.time then
        kept[#kept + 1] = c
        result.kept[#result.kept + 1] = { opts = c.opts, time = c.time }
      end
    end
    table.sort(kept, function(a, b) return a.time < b.time end)
    return kept
  end

  local heuristic = opt.heuristic(sink)
  local heuristic_src
  local beam = { best }
  local rounds = 0
  for round = 1, job.rounds or ROUNDS do
    local cands, srcs, names = {}, {}, {}
    local function add(opts)
      local ok, s = pcall(opt.apply, sink, opts)
      if not ok then return drop({ opts = opts }, tostring(s)) end
      local ok2, src = pcall(render, s, opts)
      if not ok2 then return drop({ opts = opts }, tostring(src)) end
      if opts == heuristic then heuristic_src = src end
      if seen[src] then return end
      seen[src] = true
      cands[#cands + 1] = { opts = opts, src = src }
      srcs[#srcs + 1], names[#names + 1] = src, job.name
    end
    if round == 1 then add(heuristic) end
    for _, entry in ipairs(beam) do
      local s = opt.apply(sink, entry.opts)
      for _, step in ipairs(steps(s, entry.opts)) do add(extended(entry.opts, step)) end
    end
    if #cands == 0 then break end
    rounds = round
    local progs = core.programs(job.device, srcs, names)
    local compiled = {}
    for i, c in ipairs(cands) do
      if type(progs[i]) == "string" then
        drop(c, "does not compile: " .. progs[i])
      else
        c.prog = progs[i]
        compiled[#compiled + 1] = c
      end
    end
    result.candidates = result.candidates + #cands
    progs = nil
    local kept = run_all(compiled)
    if debug >= 3 then
      print(("    beam %s round %d: %d candidates, %d kept, fastest %s"):format(job.name, round, #cands, #kept,
        kept[1] and ("%.1f us (%s)"):format(kept[1].time * 1e6, opts_text(kept[1].opts)) or "none"))
    end
    if #kept == 0 or kept[1].time >= best.time then break end
    best = kept[1]
    beam = {}
    for i = 1, math.min(job.width, #kept) do beam[i] = kept[i] end
  end
  result.opts, result.time, result.rounds = best.opts, best.time, rounds
  result.heuristic_time = heuristic_src and times[heuristic_src]
  result.seconds = core.clock() - t_start
  return result
end

-- ---- the cache ----------------------------------------------------------------------------------

local KINDS = { upcast = true, unroll = true, accumulate = true, merge = true, pad = true, swap = true, vectorize = true }

-- the opts list in a cache file, or nil when the file is missing or not one of ours
local function read_cache(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  local lines = {}
  for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
  if lines[1] ~= CACHE_FORMAT then return nil end
  local opts = {}
  for i = 2, #lines do
    local kind, x, y = lines[i]:match("^(%a+) (%-?%d+) (%-?%d+)$")
    if not kind or not KINDS[kind] then return nil end
    opts[#opts + 1] = { kind, math.tointeger(tonumber(x)), math.tointeger(tonumber(y)) }
  end
  return opts
end

local function write_cache(path, opts)
  local lines = { CACHE_FORMAT }
  for _, o in ipairs(opts) do lines[#lines + 1] = table.concat(o, " ") end
  local tmp = ("%s.tmp-%d-%d"):format(path, os.time(), math.random(1 << 30))
  local f, err = io.open(tmp, "w")
  if not f then fail("cannot write %s: %s", tmp, err) end
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then
    os.remove(tmp)
    fail("cannot rename %s to %s: %s", tmp, path, rerr)
  end
end

-- the file that holds the winner of a kernel's search at this width
function M.cache_file(sink, job)
  local render = job.render or default_render(job)
  return core.cache_path(job.device, "beam", ("BEAM=%d\n%s"):format(job.width, render(sink, {})))
end

function M.optimize(sink, job)
  local debug = job.debug or 0
  if unsearchable(sink) then return opt.optimize(sink) end
  local path = M.cache_file(sink, job)
  local opts = read_cache(path)
  if opts then
    local ok, s = pcall(opt.apply, sink, opts)
    if ok then
      if debug >= 2 then print(("*** beam %-18s cached: %s"):format(job.name, opts_text(opts))) end
      return s
    end
  end
  local r = M.search(sink, job)
  write_cache(path, r.opts)
  if debug >= 2 then
    local h = r.heuristic_time
    print(("*** beam %-18s BEAM=%d: %d candidates, %d rounds, %.2f s; %.1f us, %s the heuristic's, %.2fx"
      .. " the unoptimized; %s"):format(job.name, job.width, r.candidates, r.rounds, r.seconds, r.time * 1e6,
      h and ("%.2fx"):format(h / r.time) or "(no time for)", r.base_time / r.time, opts_text(r.opts)))
  end
  return opt.apply(sink, r.opts)
end

return M
