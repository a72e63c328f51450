-- make bench: prints one table; each row names what it measured and its reference run.
-- Section 1: graph_rewrite throughput of the symbolic rules on a generated graph of index
-- expressions (the kind of math lowering produces), against the same walk with no rules.
local lg = require "luagrad"
local U = lg.uop

local clock = lg.core.clock

-- n index expressions as lowering makes them: loop ranges of assorted sizes, a view reshaped
-- and permuted into div/mod chains, a padding mask; every kernel has its own sizes, so little
-- is shared, and about half of the nodes simplify away.
local function index_graph(n)
  local out = {}
  for t = 1, n do
    local s1, s2, s3 = t % 7 + 2, t % 5 + 3, t % 11 + 4
    local r = {}
    for k = 1, 4 do r[k] = U.new("RANGE", lg.int32, { U.const(lg.int32, (t * k) % 13 + 2) }, { k, 0 }) end
    local flat = (r[1] * s1 + r[2]) * s2 + r[3]
    local idx = (flat // s2) % s1 * (s2 * s3) + flat % s2 * s3 + r[4] % s3 + 0
    local valid = (r[1] * s1 + r[2]):lt(s1 * 13) & (r[4] + 1):lt(s3 + t % 3)
    out[t] = valid:where(idx * 1 + (r[3] - r[3]) + t * 4096, U.const(lg.int32, -1))
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
  local g = index_graph(21000)
  local sym = lg.rules.pass("symbolic")
  local function rate(graph, rules)
    local t, o = best_of(3, function()
      local o = {}
      o.out = lg.graph_rewrite(graph, rules, o)
      return o
    end)
    return o, t
  end
  local o1, t1 = rate(g, sym)
  local o2, t2 = rate(o1.out, sym)
  local o0, t0 = rate(g, lg.rules.compile({}, "empty"))
  local base = o0.nodes / t0 / 1e6
  row(("symbolic, %d nodes -> %d"):format(g:size(), o1.out:size()), o1.nodes / t1 / 1e6, "M nodes/s",
    ("no rules: %.2f M nodes/s"):format(base), ("%.2f"):format(o1.nodes / t1 / 1e6 / base))
  row("  same: rule tries at a node", o1.visits / t1 / 1e6, "M visits/s")
  row("  same: rewrites", o1.rewrites / t1 / 1e6, "M rewrites/s")
  row(("symbolic on its result (%d nodes, a fixed point)"):format(o1.out:size()), o2.nodes / t2 / 1e6, "M nodes/s")
  local s = { stats = true }
  lg.graph_rewrite(g, sym, s)
  local matches = 0
  for _, st in ipairs(sym:stats()) do matches = matches + st.matches end
  row("  matches (from a run with stats)", matches / t1 / 1e6, "M matches/s")
end

-- Section 2: tensors on the CPU (one thread).
local core, T = lg.core, lg.Tensor
local schedule, realize = require "luagrad.schedule", require "luagrad.realize"

-- the compiled kernel of a one-kernel graph, and its buffers in slot order
local function one_kernel(t)
  local ks = schedule.schedule({ t.uop })
  assert(#ks == 1, "expected one kernel")
  local k = ks[1]
  local n = 1
  for _, d in ipairs(k.output.shape) do n = n * d end
  local bufs = { core.buffer("CPU", k.output.dtype, n) }
  for i, inp in ipairs(k.inputs) do bufs[i + 1] = core.node_buffer(schedule.base(inp).op == "BUFFER" and
    schedule.base(inp) or inp.src[1]) end
  return core.program("CPU", core.render_c(k.sink, "fused"), "fused"), bufs
end

do -- a) a*b+c over 16M float32: GB/s against a hand-written C loop, same compiler and flags
  local n = 16 * 1024 * 1024
  local a, b, c = T.rand(n):realize(), T.rand(n):realize(), T.rand(n):realize()
  local prog, bufs = one_kernel(a * b + c)
  local ref = core.program("CPU", [[
#include <stdint.h>
void loop(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {
  float *restrict out = bufs[0];
  const float *restrict a = bufs[1], *restrict b = bufs[2], *restrict c = bufs[3];
  for (int64_t i = 0; i < ints[0]; i++) out[i] = a[i] * b[i] + c[i];
}]], "loop")
  local t_ours = best_of(5, function() prog:launch(bufs) end)
  local t_ref = best_of(5, function() ref:launch(bufs, { n }) end)
  local gb = 16 * n / 1e9
  row("a*b+c, 16M float32, fused kernel", gb / t_ours, "GB/s", ("C loop: %.2f GB/s"):format(gb / t_ref),
    ("%.2f"):format(t_ref / t_ours))
end

do -- b) realizing an already compiled tiny kernel, in a loop
  local x = T({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, { dtype = lg.float32 })
  ;(x + 1):realize()
  local iters = 200
  local t = best_of(3, function()
    for _ = 1, iters do (x + 1):realize() end
  end)
  row("(x+1):realize() on 16 floats, compiled", t / iters * 1e6, "us/iteration", "target: 10 us")
end

-- a tensor over a fresh, uninitialized buffer (its pages are never touched here)
local function weights(...)
  local shape, n = { ... }, 1
  for _, d in ipairs(shape) do n = n * d end
  return T.wrap(core.buffer_node(core.buffer("CPU", lg.float32, n))):reshape(shape)
end

-- c) scheduling and code generation (no C compiler) of model forward graphs
local function schedule_time(name, out)
  local t0 = clock()
  local ks = schedule.schedule({ out.uop })
  for i, k in ipairs(ks) do core.render_c(k.sink, "k" .. i) end
  row(("%s: schedule+render, %d kernels"):format(name, #ks), (clock() - t0) * 1e3, "ms")
end

do -- GPT-2 small: 12 layers, d 768, 12 heads, MLP 3072, vocabulary 50257, 128 tokens
  local L, D, H, S, V = 12, 768, 12, 128, 50257
  local function layernorm(x)
    local mu = x:mean(-1, true)
    local xc = x - mu
    return xc * ((xc * xc):mean(-1, true) + 1e-5):rsqrt() * weights(D) + weights(D)
  end
  local x = weights(S, D)
  local mask = T.arange(S):reshape(S, 1):ge(T.arange(S):reshape(1, S)) -- causal
  for _ = 1, L do
    local h = layernorm(x)
    local q = (h:matmul(weights(D, D)) + weights(D)):reshape(S, H, D // H):permute(2, 1, 3)
    local k = (h:matmul(weights(D, D)) + weights(D)):reshape(S, H, D // H):permute(2, 3, 1)
    local v = (h:matmul(weights(D, D)) + weights(D)):reshape(S, H, D // H):permute(2, 1, 3)
    local att = mask:where(q:matmul(k) * (1 / math.sqrt(D // H)), -math.huge):softmax(-1)
    local o = att:matmul(v):permute(2, 1, 3):reshape(S, D)
    x = x + o:matmul(weights(D, D)) + weights(D)
    local m = layernorm(x):matmul(weights(D, 4 * D)) + weights(4 * D)
    x = x + m:gelu():matmul(weights(4 * D, D)) + weights(D)
  end
  schedule_time("GPT-2 small, 128 tokens", layernorm(x):matmul(weights(D, V)))
end

do -- a 50-layer MLP forward (16 x 64, matmul + bias + relu)
  local h = weights(16, 64)
  for _ = 1, 50 do h = (h:matmul(weights(64, 64)) + weights(64)):relu() end
  schedule_time("MLP, 50 layers", h)
end

print(("%-52s %9s  %-13s %-26s %s"):format("benchmark", "value", "unit", "reference", "ratio"))
for _, r in ipairs(rows) do
  print(("%-52s %9.3f  %-13s %-26s %s"):format(r[1], r[2], r[3], r[4], r[5]))
end
