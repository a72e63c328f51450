-- make bench: prints one table; each row names what it measured and its reference run.
-- Section 1: graph_rewrite throughput of the symbolic rules on a generated graph of index
-- expressions (the kind of math lowering produces), against the same walk with no rules.
local lg = require "luagrad"
local U = lg.uop

local function clock() return os.clock() end

-- n unsimplified index expressions over six loop ranges, under one SINK
local function index_graph(n)
  local r = {}
  for k = 0, 5 do r[k] = U.new("RANGE", lg.int32, { U.const(lg.int32, 4 << (k % 3)) }, { k, 0 }) end
  local out = {}
  for t = 1, n do
    local a, b, c, d = r[t % 6], r[(t + 1) % 6], r[(t + 2) % 6], r[(t + 3) % 6]
    local flat = (a * 16 + b * 4 + c) + t * 64
    local e = (flat // 4) % 16 + (d + 0) * 1 + (a * 2) * 3 + ((flat % 64) // 16) * 16 + (b + t) - t
    out[t] = (flat:lt(t * 64 + 1024)):where(e, U.const(lg.int32, 0))
  end
  return U.new("SINK", lg.void, out)
end

local function best_of(runs, f)
  local best = math.huge
  local res
  for _ = 1, runs do
    collectgarbage()
    local t0 = clock()
    res = f()
    best = math.min(best, clock() - t0)
  end
  return best, res
end

local rows = {}
local function row(name, value, unit, ref, ratio) rows[#rows + 1] = { name, value, unit, ref or "", ratio or "" } end

do
  local g = index_graph(6000)
  local nodes = g:size()
  local empty = lg.rules.compile({}, "empty")
  local t_null, o_null = best_of(3, function()
    local o = {}
    lg.graph_rewrite(g, empty, o)
    return o
  end)
  local sym = lg.rules.pass("symbolic")
  local t_sym, o_sym = best_of(3, function()
    local o = {}
    local out = lg.graph_rewrite(g, sym, o)
    o.size = out:size()
    return o
  end)
  local o = { stats = true }
  lg.graph_rewrite(g, sym, o)
  local matches = 0
  for _, s in ipairs(sym:stats()) do matches = matches + s.matches end
  row(("symbolic rewrite, %d nodes -> %d"):format(nodes, o_sym.size), o_sym.visits / t_sym / 1e6, "M visits/s",
    ("no rules: %.2f M visits/s"):format(o_null.visits / t_null / 1e6), ("%.2f"):format(t_null / t_sym))
  row("symbolic rewrite matches", matches / t_sym / 1e6, "M matches/s")
  row("symbolic rewrite rewrites", o_sym.rewrites / t_sym / 1e6, "M rewrites/s")
end

print(("%-44s %12s  %-14s %-28s %s"):format("benchmark", "value", "unit", "reference", "ratio"))
for _, r in ipairs(rows) do
  print(("%-44s %12.3f  %-14s %-28s %s"):format(r[1], r[2], r[3], r[4], r[5]))
end
