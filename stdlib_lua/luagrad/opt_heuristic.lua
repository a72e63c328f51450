-- luagrad.opt_heuristic: the kernel optimizer's default choice of transformations (luagrad.opt),
-- in the manner of tinygrad's hand_coded_optimizations.
local opt = require "luagrad.opt"

local H = {}

local EVAL = {
  ADD = function(a, b) return a + b end,
  SUB = function(a, b) return a - b end,
  MUL = function(a, b) return a * b end,
  NEG = function(a) return -a end,
  IDIV = function(a, b) return b ~= 0 and (a < 0) == (b < 0) and a // b or b ~= 0 and -(-a // b) or 0 end,
  MOD = function(a, b) return b ~= 0 and math.fmod(a, b) or 0 end,
  MAX = function(a, b) return math.max(a, b) end,
  CMPLT = function(a, b) return a < b and 1 or 0 end,
  CMPNE = function(a, b) return a ~= b and 1 or 0 end,
  CMPEQ = function(a, b) return a == b and 1 or 0 end,
  AND = function(a, b) return a & b end,
  OR = function(a, b) return a | b end,
  XOR = function(a, b) return a ~ b end,
  WHERE = function(c, a, b) if c ~= 0 then return a end return b end,
  CAST = function(a) return a end,
}

-- the value of integer index math at ranges `env` (range node -> value; others 0), or nil
local function evaluate(u, env, memo)
  local v = memo[u]
  if v ~= nil then return v end
  if u.op == "CONST" then
    v = u.arg == true and 1 or u.arg == false and 0 or u.arg
    if math.type(v) ~= "integer" then v = false end
  elseif u.op == "RANGE" then
    v = env[u] or 0
  elseif u.op == "DEFINE_VAR" then
    v = u.vmin or 0
  elseif EVAL[u.op] then
    local args = {}
    for i, s in ipairs(u.src) do
      args[i] = evaluate(s, env, memo)
      if not args[i] then v = false end
    end
    if v == nil then v = EVAL[u.op](table.unpack(args)) end
  else
    v = false
  end
  memo[u] = v
  return v
end

-- how the address `idx` moves when range r steps: 0 when it does not depend on r, the stride
-- when the steps from the first 17 values of r (the other ranges at 0, then at 1) agree, nil
-- otherwise (a merged (ci, kh, kw) axis steps by 1 along kw only)
local function stride(idx, r, size, ranges)
  local dep = opt.dependents(idx, r.node)
  if not dep[idx] then return 0 end
  if size < 2 then return nil end
  local step
  for base = 0, 1 do
    local env = {}
    for _, o in pairs(ranges) do env[o.node] = math.min(base, (o.size or 1) - 1) end
    env[r.node] = 0
    local prev = evaluate(idx, env, {})
    for v = 1, math.min(size - 1, 16) do
      env[r.node] = v
      local cur = evaluate(idx, env, {})
      if not prev or not cur or (step and cur - prev ~= step) then return nil end
      step, prev = cur - prev, cur
    end
  end
  return step
end

-- the kernel's memory accesses: {idx = INDEX node, store = bool}
local function accesses(sink)
  local out = {}
  for _, u in ipairs(sink:toposort()) do
    if u.op == "LOAD" or u.op == "STORE" then out[#out + 1] = { idx = u.src[1], store = u.op == "STORE" } end
  end
  return out
end

local SMALL = 4096 -- loop iterations of a kernel too small to gain anything
local VECTORS = 28 -- vector registers the accumulators may take (of 32 on AVX-512)
local SCALARS = 36 -- accumulators when no axis makes vectors
local L2_BYTES = 8 * 1024 * 1024 -- a matmul's B beyond this is not kept in the caches

local function pow2_at_least(n)
  local p = 1
  while p < n do p = p * 2 end
  return p
end

-- Register blocking for a kernel with reductions, in the manner of tinygrad's
-- hand_coded_optimizations:
--   1. the output axis contiguous in the store (and contiguous or broadcast in every load) is
--      upcast by the vector width (a smaller axis whole, padded to a power of two when that
--      makes it at least half a vector): gcc's SLP vectorizer makes vectors of its copies, which
--      it finds when they are the innermost;
--   2. output axes that a load does not depend on (the loaded value is shared by the copies;
--      a gated load counts twice, being dearer) are upcast by up to 8 while the accumulators fit
--      VECTORS registers (by up to 4 within SCALARS values when step 1 found no vector); with
--      vectors, the two best axes take the pair of amounts that fills the most registers (a
--      convolution: 4 output channels by 7 rows, whose windows share input rows);
--   3. without vectors, the innermost reduce axis, when it is contiguous in a load, becomes
--      vector lanes (a vector accumulator; whole when it is smaller); reduce axes of at most 4
--      are unrolled whole while the body stays small, and so is the loop over the lanes' vectors
--      when the last one is masked (a 28-wide row: 2 vectors; unrolled, the masks are constants:
--      the weight gradient of a 3x3 convolution on 28x28 went from 7.3 to 5.6 ms);
--   4. a matmul whose B is larger than L2_BYTES takes 2 vectors by 12 rows (a narrow slice of B)
--      and swaps its two output loops (B's slices stay in the caches).
-- A kernel without a reduction gets vector lanes on its output axis that every access walks
-- contiguously (or not at all). Small kernels (under SMALL loop iterations) stay as they are, and
-- so do kernels with 16-bit floats, which the renderers do not vectorize.
local heuristic

-- whether ranges a and b (adjacent, of one kind) can merge: every access walks them as one
-- (a's step is size(b) times b's) and no gate depends on them (a padded convolution's gates
-- would need the merged index's quotient and remainder)
local function mergeable(sink, ranges, a, b)
  if a.size < 2 or b.size < 2 then return false end
  local da, db = opt.dependents(sink, a.node), opt.dependents(sink, b.node)
  for _, acc in ipairs(accesses(sink)) do
    local gate = acc.idx.src[3]
    if gate and (da[gate] or db[gate]) then return false end
    local sa, sb = stride(acc.idx.src[2], a, a.size, ranges), stride(acc.idx.src[2], b, b.size, ranges)
    if sa == nil or sb == nil or sa ~= b.size * sb then return false end
  end
  return true
end

-- no quotient or remainder of range `axis` is left once merged and simplified
local function folded(sink, axis)
  local dep = opt.dependents(sink, opt.ranges(sink)[axis].node)
  for _, u in ipairs(sink:toposort()) do
    if (u.op == "IDIV" or u.op == "MOD") and dep[u] then return false end
  end
  return true
end

-- Adjacent ranges of one kind that can merge do, reduce ranges first (a batch norm's sum over
-- H and W gets one loop), then output ranges (an elementwise kernel over 128x16x28x28 gets one
-- loop that vector lanes divide); the heuristic then works on the merged kernel.
function H.heuristic(sink)
  local merges = {}
  for _, kind in ipairs({ 1, 0 }) do
    local tried = {}
    while true do
      local ranges, list = opt.ranges(sink), {}
      for _, r in pairs(ranges) do
        if r.kind == kind then
          if not r.size then return heuristic(sink) end
          list[#list + 1] = r
        end
      end
      table.sort(list, function(x, y) return x.axis < y.axis end)
      local found
      for i = 1, #list - 1 do
        local a, b = list[i], list[i + 1]
        local key = a.axis .. " " .. b.axis .. " " .. a.size .. " " .. b.size
        if not tried[key] and mergeable(sink, ranges, a, b) then
          tried[key] = true
          local ok, merged = pcall(opt.merge, sink, a.axis, b.axis)
          merged = ok and opt.simplify(merged)
          if merged and folded(merged, a.axis) then
            found, sink = { "merge", a.axis, b.axis }, merged
            break
          end
        end
      end
      if not found then break end
      merges[#merges + 1] = found
    end
  end
  local rest = heuristic(sink)
  for _, o in ipairs(rest) do merges[#merges + 1] = o end
  return merges
end

-- the lanes of a vector of 64 bytes (an AVX-512 register) of the kernel's widest dtype (16 at
-- most), or nil when the kernel has 16-bit floats
local function vector_width(sink)
  local widest = 1
  for _, u in ipairs(sink:toposort()) do
    local dt = u.op == "STORE" and u.src[2].dtype or u.dtype
    if dt.kind == "float" and dt.itemsize == 2 then return nil end
    if dt.kind ~= "void" and not dt.is_ptr then widest = math.max(widest, dt.kind == "bool" and 4 or dt.itemsize) end
  end
  return math.min(opt.MAX_LANES, 64 // widest) -- bool lanes are int32 masks
end

-- the lanes for an axis of n elements: the widest (down to 4) that pads n by at most a quarter
local function lanes_for(n, width)
  local w = width
  while w >= 4 do
    if (n + w - 1) // w * w <= n + n // 4 then return w end
    w = w // 2
  end
end

-- vector lanes on the innermost output axis that the store walks contiguously, preferably one
-- that every load walks with stride 1 or 0 too (other loads gather their lanes one by one)
local function elementwise(sink, ranges, outs)
  local width = vector_width(sink)
  if not width then return {} end
  for _, strict in ipairs({ true, false }) do
    for i = #outs, 1, -1 do
      local r, ok, stored = outs[i], true, false
      for _, a in ipairs(accesses(sink)) do
        local st = stride(a.idx.src[2], r, r.size, ranges)
        ok = ok and (a.store and st == 1 or not a.store and (not strict or st == 0 or st == 1))
        stored = stored or a.store
      end
      local w = ok and stored and lanes_for(r.size, width)
      if w then return { { "vectorize", r.axis, w } } end
    end
  end
  return {}
end

function heuristic(sink)
  local ranges, outs, reds, work = opt.ranges(sink), {}, {}, 1
  for _, r in pairs(ranges) do
    if not r.size then return {} end
    work = work * r.size
    if r.kind == 0 then outs[#outs + 1] = r else reds[#reds + 1] = r end
  end
  if work < SMALL then return {} end
  table.sort(outs, function(a, b) return a.axis < b.axis end)
  table.sort(reds, function(a, b) return a.axis < b.axis end)
  local acc, nested = nil, false
  for _, u in ipairs(sink:toposort()) do
    if u.op == "REDUCE" then
      acc = acc or u.dtype
      for _, x in ipairs(u.src[1]:toposort()) do nested = nested or x.op == "REDUCE" end
    end
  end
  if not acc then return elementwise(sink, ranges, outs) end
  -- a reduction inside another (a convolution fused into a pooling) keeps its loops as they are
  if nested then return {} end
  local lanes = math.max(1, 64 // acc.itemsize)
  local acs, loads, store = accesses(sink), {}, nil
  for _, a in ipairs(acs) do
    if a.store then store = store or a else loads[#loads + 1] = a end
  end
  if not store then return {} end
  local strides = {} -- access -> axis -> stride
  for _, a in ipairs(acs) do
    strides[a] = {}
    for _, r in pairs(ranges) do strides[a][r.axis] = stride(a.idx.src[2], r, r.size, ranges) end
  end
  local opts, up, total, budget = {}, {}, 1, SCALARS
  local vec, gather
  for _, r in ipairs(outs) do
    local ok = r.size > 1 and strides[store][r.axis] == 1
    if ok then gather = r end
    for _, a in ipairs(loads) do ok = ok and (strides[a][r.axis] == 0 or strides[a][r.axis] == 1) end
    if ok then vec = r end
  end
  -- else the store's contiguous axis, with loads that gather (a pooling's stride-2 windows),
  -- unless a long reduce axis is contiguous in a load (it takes the lanes in step 3)
  local inner, inner_contiguous = reds[#reds], false
  for _, a in ipairs(inner and loads or {}) do inner_contiguous = inner_contiguous or strides[a][inner.axis] == 1 end
  local long_inner = inner_contiguous and inner.size > 4
  local width = vector_width(sink)
  if not vec and gather and not long_inner and width and lanes_for(gather.size, width) then vec = gather end
  if vec and vec.size * 2 < lanes and long_inner then vec = nil end -- too short for the lanes
  local reduce_lanes = not vec and long_inner and width
  if reduce_lanes then budget = VECTORS end -- each accumulator below is a vector
  -- a matmul whose B (the reduce axis by the vector axis) is larger than the caches
  local big = vec and #outs == 2 and outs[2] == vec and #reds == 1 and reds[1].size * vec.size * acc.itemsize > L2_BYTES
  if vec then
    local n, amount = vec.size, vec.size
    if n > lanes then -- 3 vectors where that pads little (a matmul: 3 x 8 rows = 24 accumulators),
      -- 2 for a big matmul (2 x 12 rows: a narrower slice of B stays in L2)
      local v = big and 2 or (n % (3 * lanes) == 0 or n >= 32 * lanes) and 3 or n % (2 * lanes) == 0 and 2 or 1
      amount = v * lanes
    elseif 2 * n >= lanes then
      amount = pow2_at_least(n)
    end
    if amount >= lanes then budget = VECTORS * lanes end
    up[vec.axis], total = true, amount
    local short = amount < lanes and width and lanes_for(n, width) -- 7 outputs: 8 lanes, one masked
    if amount >= lanes and width then
      opts[#opts + 1] = { "vectorize", vec.axis, lanes }
      if amount > lanes then opts[#opts + 1] = { "upcast", vec.axis, amount // lanes } end
    elseif short then
      budget, total = VECTORS * short, short
      opts[#opts + 1] = { "vectorize", vec.axis, short }
    else
      opts[#opts + 1] = { "upcast", vec.axis, amount }
    end
  end
  local cands = {}
  for _, r in ipairs(outs) do
    if not up[r.axis] and r.size > 1 then
      local score = 0
      for _, a in ipairs(loads) do
        if strides[a][r.axis] == 0 then score = score + (a.idx.src[3] and 2 or 1) end
      end
      if score > 0 then cands[#cands + 1] = { r = r, score = score } end
    end
  end
  table.sort(cands, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a.r.axis > b.r.axis
  end)
  local amounts = (budget == SCALARS or reduce_lanes) and { 4, 3, 2, 1 } or { 8, 7, 6, 5, 4, 3, 2, 1 }
  if big then table.insert(amounts, 1, 12) end
  -- an amount that divides n, or pads it by at most a 64th (2048 rows by 12: 2052)
  local function fits(n, a) return (n + a - 1) // a * a - n <= n // 64 end
  local first = {} -- with vectors, the two best axes take the pair of amounts that fills most registers
  if vec and #cands >= 2 then
    local best, n1, n2 = 1, cands[1].r.size, cands[2].r.size
    for _, a in ipairs(amounts) do
      for _, b in ipairs(amounts) do
        if fits(n1, a) and fits(n2, b) and total * a * b <= budget and a * b > best then
          best, first[1], first[2] = a * b, a, b
        end
      end
    end
  end
  for i, c in ipairs(cands) do
    local n, best = c.r.size, first[i]
    for _, a in ipairs(amounts) do
      if not best and fits(n, a) and total * a <= budget then best = a end
    end
    if best and best > 1 then
      total = total * best
      opts[#opts + 1] = { "upcast", c.r.axis, best }
    end
  end
  local copies, size = total, {}
  for _, r in ipairs(reds) do size[r.axis] = r.size end
  if reduce_lanes then
    local amount = math.min(width, pow2_at_least(inner.size)) -- 14 takes 16 lanes, 2 of them masked
    opts[#opts + 1] = { "vectorize", inner.axis, amount }
    if inner.size % amount ~= 0 then size[inner.axis] = (inner.size + amount - 1) // amount end -- 28: 2 vectors
  end
  for i = #reds, 1, -1 do
    local axis, n = reds[i].axis, size[reds[i].axis]
    if n >= 2 and n <= 4 and copies * n <= 4 * VECTORS * lanes then
      copies = copies * n
      opts[#opts + 1] = { "unroll", axis, n }
    end
  end
  -- a big matmul: the vector axis's loop goes outside, so each slice of B stays cached while every
  -- row of A passes
  if big then
    opts[#opts + 1] = { "swap", outs[1].axis, outs[2].axis }
  end
  return opts
end

return H
