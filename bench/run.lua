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

do -- realizing an already compiled tiny kernel, in a loop (first: no tensor requires grad yet, so
  -- realize keeps no graphs for autograd, and no large graph has been built)
  local x = lg.Tensor({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 }, { dtype = lg.float32 })
  ;(x + 1):realize()
  local iters = 2000
  local t = best_of(5, function()
    for _ = 1, iters do (x + 1):realize() end
  end)
  row("(x+1):realize() on 16 floats, compiled", t / iters * 1e6, "us/iteration", "target: 10 us")
end

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

-- Section 2: tensors on $DEVICE (default CPU), on THREADS threads (default: the CPUs this process
-- may run on), each against a reference run in the same `make bench` on as many threads:
--   - C loops: hand-written C compiled by the CPU device (same cc and flags), each split over the
--     threads by core_id/ncores and launched on exactly THREADS cores of the device's pool;
--   - NumPy and PyTorch: bench/ref.py and bench/torch_cnn.py under /usr/bin/python3, with
--     OPENBLAS_NUM_THREADS and torch.set_num_threads set to THREADS.
-- Ours is timed through realize (what a program gets), best of a few runs after a warm-up that
-- compiles; each run must launch the same number of kernels (nothing is served from a cache).
-- ratio: ours relative to the reference, as speed (above 1: ours is faster).
local core, T = lg.core, lg.Tensor
local schedule, realize = require "luagrad.schedule", require "luagrad.realize"
local lua = os.getenv("LUA") or "lua5.4"

local function threads()
  local env = os.getenv("THREADS")
  if env and env ~= "" then return assert(math.tointeger(tonumber(env)), "bench: THREADS is not a count: " .. env) end
  local p = assert(io.popen("nproc"))
  local n = math.tointeger(tonumber(p:read("a")))
  p:close()
  return assert(n, "bench: nproc did not print a count")
end
local THREADS = threads()

-- a shell command's output; an error naming the command when it fails
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  if not ok then error(("bench: `%s` failed (status %s):\n%s"):format(cmd, tostring(code), out:sub(-2000)), 0) end
  return out
end

local function number_after(out, key)
  return (assert(tonumber(out:match(key:gsub("%p", "%%%0") .. " ([%d.e+-]+)")), "no '" .. key .. "' in:\n" .. out))
end

-- Best time of `runs` calls of f after one warm-up call; every call must launch kernels, the same
-- number each time. Returns the time and f's result of the last call.
local function timed(runs, f)
  local k0 = realize.kernels_run
  local res = f()
  local per = realize.kernels_run - k0
  assert(per > 0, "bench: the warm-up ran no kernel")
  local best = math.huge
  for _ = 1, runs do
    collectgarbage()
    k0 = realize.kernels_run
    local t0 = clock()
    res = f()
    best = math.min(best, clock() - t0)
    assert(realize.kernels_run - k0 == per, "bench: a run launched another number of kernels than the warm-up")
  end
  return best, res
end

-- best time of `runs` calls of a reference f, after one warm-up call
local function timed_ref(runs, f)
  f()
  return (best_of(runs, f))
end

-- a C reference: `body` runs the rows [lo, hi) of `n` (ints[0]) on this core. It is compiled
-- with gcc's loop vectorizer, which the CPU device turns off for its own kernels (cpu.c)
local function c_ref(name, body)
  return core.program("CPU", ([[
#include <stdint.h>
__attribute__((optimize("tree-loop-vectorize")))
void %s(void **bufs, const int64_t *ints, int32_t core_id, int32_t ncores) {
  const int64_t n = ints[0], lo = n * core_id / ncores, hi = n * (core_id + 1) / ncores;
%s
}]]):format(name, body), name)
end

-- a tensor's buffer (realized), to read results
local function buffer(t)
  local u = t:realize().uop
  return core.node_buffer(u.op == "BUFFER" and u or u.src[1])
end

-- a copy of a tensor's values in a CPU buffer, for the C references
local function on_cpu(t)
  local b = buffer(t)
  local c = core.buffer("CPU", b.dtype, #b)
  c:write_bytes(b:read_bytes())
  return c
end

local function close(a, b, what)
  if math.abs(a - b) > 1e-4 * math.max(math.abs(a), math.abs(b), 1) then
    error(("bench: %s: ours %.9g, the reference %.9g"):format(what, a, b), 0)
  end
end

local function speed(ours, ref) return ("%.2f"):format(ours / ref) end

T.manual_seed(0)
io.stderr:write(("bench: tensors on %s, %d threads\n"):format(realize.device, THREADS))


do -- a*b+c over 16M float32: GB/s (3 reads, 1 write)
  local n = 16 * 1024 * 1024
  local a, b, c = T.rand(n):realize(), T.rand(n):realize(), T.rand(n):realize()
  local t, out = timed(5, function() return (a * b + c):realize() end)
  local ref = c_ref("fma_loop", [[
  float *restrict out = bufs[0];
  const float *restrict a = bufs[1], *restrict b = bufs[2], *restrict c = bufs[3];
  for (int64_t i = lo; i < hi; i++) out[i] = a[i] * b[i] + c[i];]])
  local bufs = { core.buffer("CPU", lg.float32, n), on_cpu(a), on_cpu(b), on_cpu(c) }
  local t_ref = timed_ref(5, function() ref:launch(bufs, { n }, THREADS) end)
  for _, i in ipairs({ 1, n // 2, n }) do close(buffer(out):read(i, 1)[1], bufs[1]:read(i, 1)[1], "a*b+c") end
  local gb = 16 * n / 1e9
  row("a*b+c, 16M float32", gb / t, "GB/s", ("C loop: %.2f GB/s"):format(gb / t_ref), speed(t_ref, t))
end

do -- sums over 4096x4096 float32: GB/s of the input read
  local R, C = 4096, 4096
  local x = T.rand(R, C):realize()
  local gb = 4 * R * C / 1e9
  -- the C loops keep 16 partial sums (vectorizable without reassociation)
  local lanes = [[
    float acc[16] = {0};
    for (int64_t j = 0; j + 16 <= m; j += 16)
      for (int l = 0; l < 16; l++) acc[l] += row[j + l];
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];]]
  local t_rows, rows = timed(5, function() return x:sum(2):realize() end)
  local ref_rows = c_ref("row_sums", ([[
  float *restrict out = bufs[0];
  const float *restrict x = bufs[1];
  const int64_t m = ints[1];
  for (int64_t r = lo; r < hi; r++) {
    const float *row = x + r * m;
%s
    out[r] = s;
  }]]):format(lanes))
  local xc = on_cpu(x)
  local rbufs = { core.buffer("CPU", lg.float32, R), xc }
  local t_ref = timed_ref(5, function() ref_rows:launch(rbufs, { R, C }, THREADS) end)
  close(buffer(rows):read(R, 1)[1], rbufs[1]:read(R, 1)[1], "row sum")
  row("row sums of 4096x4096 float32", gb / t_rows, "GB/s", ("C loop: %.2f GB/s"):format(gb / t_ref),
    speed(t_ref, t_rows))

  -- three copies in turn: a sum of the same tensor again would read its 256 partial sums from
  -- the run before (realize reuses what the last runs computed)
  local xs, i = { x, (x + 0):realize(), (x + 0):realize() }, 0
  local t_all, all = timed(5, function()
    i = i % #xs + 1
    return xs[i]:sum():realize()
  end)
  -- each core sums its part of the 16M elements into out[core_id]; Lua adds the THREADS partials
  local ref_all = c_ref("full_sum", ([[
  float *restrict out = bufs[0];
  const float *restrict row = (const float *)bufs[1] + lo;
  const int64_t m = hi - lo;
%s
  for (int64_t j = m - m %% 16; j < m; j++) s += row[j];
  out[core_id] = s;]]):format(lanes))
  local abufs, xcs, j = { core.buffer("CPU", lg.float32, THREADS), xc }, { xc, on_cpu(xs[2]), on_cpu(xs[3]) }, 0
  local total
  local t_ref_all = timed_ref(5, function() -- the same three copies in turn: no more of them cached
    j = j % #xcs + 1
    abufs[2] = xcs[j]
    ref_all:launch(abufs, { R * C }, THREADS)
    total = 0
    for _, v in ipairs(abufs[1]:read()) do total = total + v end
  end)
  close(all:item(), total, "full sum")
  row("full sum of 4096x4096 float32", gb / t_all, "GB/s", ("C loop: %.2f GB/s"):format(gb / t_ref_all),
    speed(t_ref_all, t_all))
end

-- the references of bench/ref.py (NumPy and PyTorch), in one process
local ref = run(("OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d /usr/bin/python3 bench/ref.py --threads %d "
  .. "matmul1024 matmul2048 softmax conv"):format(THREADS, THREADS, THREADS))
local blas = ref:match("blas ([^\n]*)")
if not blas:find("openblas", 1, true) then io.stderr:write("bench: NumPy's BLAS is not OpenBLAS: " .. blas .. "\n") end

for _, n in ipairs({ 1024, 2048 }) do -- matmul: GFLOP/s (2 n^3)
  local a, b = T.rand(n, n):realize(), T.rand(n, n):realize()
  local t, c = timed(n <= 1024 and 5 or 2, function() return a:matmul(b):realize() end)
  local av, bb, want = buffer(a):read(1, n), buffer(b), 0 -- c[1][n], in double
  for k = 1, n do want = want + av[k] * bb:read((k - 1) * n + n, 1)[1] end
  close(buffer(c):read(n, 1)[1], want, "matmul")
  local flop = 2 * n ^ 3 / 1e9
  row(("matmul %dx%d @ %dx%d float32"):format(n, n, n, n), flop / t, "GFLOP/s",
    ("numpy: %.1f GFLOP/s"):format(flop / number_after(ref, "matmul" .. n)), speed(number_after(ref, "matmul" .. n), t))
end

do -- softmax over the rows of 4096x4096: several kernels, so the input changes from run to run
  local xs = { T.rand(4096, 4096):realize(), T.rand(4096, 4096):realize(), T.rand(4096, 4096):realize() }
  local i = 0
  local t, y = timed(3, function()
    i = i % #xs + 1
    return xs[i]:softmax(2):realize()
  end)
  local first, sum = buffer(y):read(1, 4096), 0
  for _, v in ipairs(first) do sum = sum + v end
  close(sum, 1, "softmax: the sum of row 1")
  local t_ref = number_after(ref, "softmax")
  row("softmax over the rows of 4096x4096 float32", t * 1e3, "ms", ("torch: %.1f ms"):format(t_ref * 1e3),
    speed(t_ref, t))
end

do -- conv2d forward + backward, from a fixed random upstream gradient
  local xs, gs = {}, {}
  for k = 1, 3 do xs[k], gs[k] = T.randn(32, 32, 28, 28):realize(), T.randn(32, 64, 28, 28):realize() end
  local w = T.randn(64, 32, 3, 3):realize()
  w.requires_grad = true
  for _, x in ipairs(xs) do x.requires_grad = true end
  local i = 0
  local t = timed(3, function()
    i = i % #xs + 1
    local x = xs[i]
    x.grad, w.grad = nil, nil
    x:conv2d(w, { padding = 1 }):backward(gs[i])
    return x.grad
  end)
  local t_ref = number_after(ref, "conv")
  row("conv2d 32x32x28x28 * 64x32x3x3, pad 1: fwd+bwd", t * 1e3, "ms", ("torch: %.1f ms"):format(t_ref * 1e3),
    speed(t_ref, t))
end

do -- the main job's CNN: training images/s, batch 128, after 3 warm-up steps; its step through
  -- lg.jit (as the main job runs it) and as it is (eager)
  local steps, batch = 20, 128
  -- lg.data works on the CPU device only: on another, every step trains on one random batch
  local data = realize.device == "CPU" and "" or " synthetic"
  -- three runs of each, taking turns (the machine's speed drifts), the best of each counted
  local jit, eager, theirs = 0, 0, 0
  local function ours(mode)
    return number_after(run(("THREADS=%d %s bench/cnn.lua %d %d 3%s%s"):format(THREADS, lua, steps, batch, data, mode)),
      "images/s")
  end
  for _ = 1, 3 do
    jit = math.max(jit, ours(""))
    theirs = math.max(theirs, number_after(run(("OPENBLAS_NUM_THREADS=%d /usr/bin/python3 bench/torch_cnn.py --steps %d"
      .. " --batch %d --threads %d"):format(THREADS, steps, batch, THREADS)), "images/s"))
    eager = math.max(eager, ours(" eager"))
  end
  local torch = ("torch: %.1f images/s"):format(theirs)
  row(("Fashion-MNIST CNN training, batch %d, %d steps%s, lg.jit"):format(batch, steps, data), jit, "images/s", torch,
    speed(jit, theirs))
  row("same, eager (no lg.jit)", eager, "images/s", torch, speed(eager, theirs))
end

do -- compile time per kernel, CPU (cc) against LLVM: the kernels of the CNN's first two training
  -- steps (the second compiles a few of its own), each device in a process with an empty cache
  local times = {}
  for _, dev in ipairs({ "CPU", "LLVM" }) do
    local dir = run("mktemp -d"):gsub("%s+$", "")
    local out = run(("CACHE_DIR=%s DEVICE=%s DEBUG=2 THREADS=%d %s bench/cnn.lua 0 128 2 synthetic eager"):format(dir, dev,
      THREADS, lua))
    run("rm -rf " .. dir)
    local ms, from = {}, out:find("\nsteps:\n", 1, true)
    assert(from, "bench: bench/cnn.lua printed no 'steps:' line")
    for line in out:sub(from):gmatch("[^\n]+") do
      local v = line:match("^%*%*%* compile %S+%s+%S+%s+([%d.]+) ms$")
      if v then ms[#ms + 1] = tonumber(v) end
    end
    assert(#ms > 0, "bench: no kernel compiled on " .. dev)
    table.sort(ms)
    local sum = 0
    for _, v in ipairs(ms) do sum = sum + v end
    times[dev] = { median = ms[(#ms + 1) // 2], n = #ms, sum = sum }
  end
  local c, l = times.CPU, times.LLVM
  assert(c.n == l.n, ("bench: %d kernels compiled on the CPU, %d on LLVM"):format(c.n, l.n))
  row(("compile, LLVM backend: median of %d CNN-step kernels"):format(l.n), l.median, "ms/kernel",
    ("C backend (cc): %.1f ms"):format(c.median), speed(c.median, l.median))
  row(("compile, LLVM backend: all %d kernels of a CNN step"):format(l.n), l.sum / 1e3, "s",
    ("C backend (cc): %.2f s"):format(c.sum / 1e3), speed(c.sum, l.sum))
end

-- a tensor over a fresh, uninitialized buffer (its pages are never touched here)
local function weights(...)
  local shape, n = { ... }, 1
  for _, d in ipairs(shape) do n = n * d end
  return T.wrap(core.buffer_node(core.buffer("CPU", lg.float32, n))):reshape(shape)
end

-- scheduling and code generation (no C compiler) of model forward graphs
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

print(("%-52s %9s  %-13s %-34s %s"):format("benchmark", "value", "unit", "reference", "ratio"))
for _, r in ipairs(rows) do
  print(("%-52s %9.3f  %-13s %-34s %s"):format(r[1], r[2], r[3], r[4], r[5]))
end
