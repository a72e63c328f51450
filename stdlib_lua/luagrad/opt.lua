-- luagrad.opt: the kernel optimizer. Transformations of a kernel graph (docs/kernel_ir.md) that
-- keep its results and change its loops, and a heuristic that picks them.
--
--   upcast(sink, axis, amount)  an output range r of size n becomes a range of n/amount and
--                               `amount` copies of the body with r := outer*amount + i
--                               (register blocking; gcc's SLP vectorizer turns copies along a
--                               contiguous axis into vector code)
--   unroll(sink, axis, amount)  the same for a reduce range: the REDUCE accumulates the sum (max,
--                               product) of the copies
--   pad(sink, axis, multiple)   a range grows to a multiple; gates keep the extra iterations out
--                               of memory and out of the reductions
--   swap(sink, a, b)            two ranges of one kind trade axes: their loops trade places
--   apply(sink, opts)           a list of {"upcast" | "unroll" | "pad" | "swap", x, y}, then
--                               the symbolic pass
--   heuristic(sink) -> opts     what optimize applies: a hand-written choice in the manner of
--                               tinygrad's hand_coded_optimizations
--   optimize(sink)              apply(sink, heuristic(sink))
--
-- Axes are the RANGE args' axis numbers: a transform keeps them (an outer range keeps its
-- range's axis; a range upcast or unrolled whole disappears). Upcast and unroll pad a range
-- whose size the amount does not divide.
local core = require "luagrad.core"
local rules = require "luagrad.rules"

local int32, void = core.dtypes.int32, core.dtypes.void
local M = {}

local function iconst(v) return core.const(int32, v) end

local function fail(fmt, ...) error("opt: " .. fmt:format(...), 3) end

-- ---- the graph ---------------------------------------------------------------------------

-- The RANGEs of a kernel by axis: {node =, axis =, kind =, size = (nil when not a constant)}.
function M.ranges(sink)
  local out = {}
  for _, u in ipairs(sink:toposort()) do
    if u.op == "RANGE" then
      local e = u.src[1]
      out[u.arg[1]] = { node = u, axis = u.arg[1], kind = u.arg[2], size = e.op == "CONST" and e.arg or nil }
    end
  end
  return out
end

local function range_of(sink, axis, kind, what)
  local r = M.ranges(sink)[axis]
  if not r then fail("%s: the kernel has no range of axis %s", what, tostring(axis)) end
  if kind and r.kind ~= kind then
    fail("%s: axis %d is a%s range", what, axis, r.kind == 0 and "n output" or " reduce")
  end
  if not r.size then fail("%s: axis %d has a size that is not a constant", what, axis) end
  return r
end

-- root with the nodes in `map` (node -> node) replaced, and everything above them rebuilt
local function substitute(root, map)
  local memo = {}
  for _, u in ipairs(root:toposort()) do
    local r = map[u]
    if not r then
      local srcs, changed = {}, false
      for i, s in ipairs(u.src) do
        srcs[i] = memo[s]
        changed = changed or srcs[i] ~= s
      end
      r = changed and u:replace({ src = srcs }) or u
    end
    memo[u] = r
  end
  return memo[root]
end

-- the nodes of `op` that close range r (an END's or REDUCE's sources after the first)
local function closers(sink, r, op)
  local out = {}
  for _, u in ipairs(sink:toposort()) do
    if u.op == op then
      for i = 2, #u.src do
        if u.src[i] == r then out[#out + 1] = u end
      end
    end
  end
  return out
end

-- an END or REDUCE with range r replaced by `outer` (dropped when nil), around `first`
local function reclose(u, first, r, outer)
  local srcs = { first }
  for i = 2, #u.src do
    local s = u.src[i]
    if s ~= r then srcs[#srcs + 1] = s elseif outer then srcs[#srcs + 1] = outer end
  end
  if #srcs == 1 then return nil end
  return u:replace({ src = srcs })
end

-- one effect for several: a GROUP (flattened), or the one itself
local function group(effects)
  local flat = {}
  for _, e in ipairs(effects) do
    if e.op == "GROUP" then
      for _, s in ipairs(e.src) do flat[#flat + 1] = s end
    else
      flat[#flat + 1] = e
    end
  end
  if #flat == 1 then return flat[1] end
  return core.uop("GROUP", void, flat)
end

-- the lowest value of a dtype (MAX's identity)
local function lowest(dt)
  if dt.kind == "float" then return -math.huge end
  if dt.kind == "bool" then return false end
  if dt.kind == "uint" then return 0 end
  return dt.itemsize == 8 and math.mininteger or -(1 << (dt.itemsize * 8 - 1))
end

local function identity(op, dt)
  if op == "MAX" then return core.const(dt, lowest(dt)) end
  return core.const(dt, op == "MUL" and 1 or 0)
end

-- a REDUCE op applied to a list of values, as a balanced tree
local function combine(op, vals)
  while #vals > 1 do
    local next_vals = {}
    for i = 1, #vals, 2 do
      local a, b = vals[i], vals[i + 1]
      if not b then
        next_vals[#next_vals + 1] = a
      elseif op == "MAX" then
        next_vals[#next_vals + 1] = a:max(b)
      elseif op == "MUL" then
        next_vals[#next_vals + 1] = a * b
      else
        next_vals[#next_vals + 1] = a + b
      end
    end
    vals = next_vals
  end
  return vals[1]
end

-- the nodes of root that depend on range r (a REDUCE or an END that closes r does not)
local function dependents(root, r)
  local dep = {}
  for _, u in ipairs(root:toposort()) do
    local d, closes = u == r, false
    if u.op == "REDUCE" or u.op == "END" then
      for i = 2, #u.src do closes = closes or u.src[i] == r end
    end
    if not closes then
      for _, s in ipairs(u.src) do d = d or dep[s] == true end
    end
    dep[u] = d
  end
  return dep
end

-- ---- transformations ------------------------------------------------------------------------

local function check_amount(what, amount)
  if math.type(amount) ~= "integer" or amount < 1 then
    fail("%s: the amount must be an integer >= 1, got %s", what, tostring(amount))
  end
end

function M.pad(sink, axis, multiple)
  local r = range_of(sink, axis, nil, "pad")
  if math.type(multiple) ~= "integer" or multiple < 1 then
    fail("pad: the multiple must be an integer >= 1, got %s", tostring(multiple))
  end
  local n = r.size
  local m = (n + multiple - 1) // multiple * multiple
  if m == n then return sink end
  local r2 = core.uop("RANGE", int32, { iconst(m) }, { axis, r.kind })
  sink = substitute(sink, { [r.node] = r2 })
  local valid, dep, map = r2:lt(n), dependents(sink, r2), {}
  for _, u in ipairs(sink:toposort()) do
    if u.op == "INDEX" and dep[u] then
      map[u] = u:replace({ src = { u.src[1], u.src[2], u.src[3] and (valid & u.src[3]) or valid } })
    end
  end
  sink = substitute(sink, map)
  map = {}
  for _, u in ipairs(closers(sink, r2, "REDUCE")) do
    local srcs = { valid:where(u.src[1], identity(u.arg, u.dtype)), table.unpack(u.src, 2) }
    map[u] = u:replace({ src = srcs })
  end
  return substitute(sink, map)
end

-- r := outer*amount + i in `amount` copies of each closer's first source; with `separate`, each
-- copy of a REDUCE's value gets an accumulator of its own, combined after the loop
local function split(sink, axis, kind, amount, what, separate)
  local r = range_of(sink, axis, kind, what)
  check_amount(what, amount)
  if r.size < 1 then fail("%s: axis %d has size %d", what, axis, r.size) end
  if r.size % amount ~= 0 then
    sink = M.pad(sink, axis, amount)
    r = range_of(sink, axis, kind, what)
  end
  local n = r.size
  local outer = n > amount and core.uop("RANGE", int32, { iconst(n // amount) }, { axis, kind }) or nil
  local base = outer and outer * amount or iconst(0)
  local function copies(x)
    local out = {}
    for i = 0, amount - 1 do out[#out + 1] = substitute(x, { [r.node] = base + i }) end
    return out
  end
  local map = {}
  if kind == 0 then
    local ends = closers(sink, r.node, "END")
    if #ends == 0 then fail("%s: no END closes axis %d", what, axis) end
    for _, e in ipairs(ends) do
      local body = group(copies(e.src[1]))
      map[e] = reclose(e, body, r.node, outer) or body
    end
  else
    local reds = closers(sink, r.node, "REDUCE")
    if #reds == 0 then fail("%s: no REDUCE closes axis %d", what, axis) end
    for _, red in ipairs(reds) do
      local vals = copies(red.src[1])
      if separate then
        for i, v in ipairs(vals) do vals[i] = reclose(red, v, r.node, outer) or v end
        map[red] = combine(red.arg, vals)
      else
        local value = combine(red.arg, vals)
        map[red] = reclose(red, value, r.node, outer) or value
      end
    end
  end
  return substitute(sink, map)
end

function M.upcast(sink, axis, amount) return split(sink, axis, 0, amount, "upcast") end

function M.unroll(sink, axis, amount) return split(sink, axis, 1, amount, "unroll") end

-- merge(a, b): two ranges of one kind (b's loop directly inside a's, closed by the same REDUCEs
-- and ENDs) become one range of their sizes' product, axis a: a := m // size(b), b := m % size(b).
-- Where every index steps by size(b) * (b's step) along a, the index math folds back to m: one
-- longer loop (a batch-norm sum over H and W gets accumulators over H*W)
function M.merge(sink, a, b)
  local ra, rb = range_of(sink, a, nil, "merge"), range_of(sink, b, nil, "merge")
  if ra.kind ~= rb.kind then fail("merge: axes %d and %d are ranges of different kinds", a, b) end
  local op = ra.kind == 0 and "END" or "REDUCE"
  local ca, cb = closers(sink, ra.node, op), closers(sink, rb.node, op)
  local same = #ca == #cb
  for i = 1, #ca do same = same and ca[i] == cb[i] end
  if not same then fail("merge: axes %d and %d are not closed together", a, b) end
  local m = core.uop("RANGE", int32, { iconst(ra.size * rb.size) }, { a, ra.kind })
  local map = {}
  for _, u in ipairs(ca) do
    local srcs = { u.src[1] }
    for i = 2, #u.src do
      local x = u.src[i]
      if x == ra.node then srcs[#srcs + 1] = m elseif x ~= rb.node then srcs[#srcs + 1] = x end
    end
    map[u] = u:replace({ src = srcs })
  end
  sink = substitute(sink, map)
  return substitute(sink, { [ra.node] = m // rb.size, [rb.node] = m % rb.size })
end

-- accumulate(axis, n): n accumulators over a reduce range, each summing every n-th element,
-- combined after the loop (independent chains of adds; contiguous ones become vector lanes)
function M.accumulate(sink, axis, amount) return split(sink, axis, 1, amount, "accumulate", true) end

function M.swap(sink, a, b)
  local ra, rb = range_of(sink, a, nil, "swap"), range_of(sink, b, nil, "swap")
  if ra.kind ~= rb.kind then fail("swap: axes %d and %d are ranges of different kinds", a, b) end
  return substitute(sink, {
    [ra.node] = ra.node:replace({ arg = { b, ra.kind } }),
    [rb.node] = rb.node:replace({ arg = { a, rb.kind } }),
  })
end

-- ---- simplification -----------------------------------------------------------------------------

-- the symbolic pass (core/symbolic.c splits coefficients around a divisor: the copies' index math
-- `(17*a + b) % 16` becomes `a + b`)
function M.simplify(sink) return rules.graph_rewrite(sink, "symbolic") end

local transforms = { upcast = M.upcast, unroll = M.unroll, accumulate = M.accumulate, merge = M.merge, pad = M.pad,
  swap = M.swap }

function M.apply(sink, opts)
  for i, o in ipairs(opts) do
    local f = transforms[o[1]]
    if not f then fail("apply: step %d is %s; expected upcast, unroll, accumulate, merge, pad or swap", i, tostring(o[1])) end
    sink = f(sink, o[2], o[3])
    -- a merge's m // s * s + m % s folds back to m before later steps split m again
    if o[1] == "merge" then sink = M.simplify(sink) end
  end
  return M.simplify(sink)
end

-- ---- the heuristic --------------------------------------------------------------------------------

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
-- when two samples agree, nil otherwise
local function stride(idx, r, size, ranges)
  local dep = dependents(idx, r.node)
  if not dep[idx] then return 0 end
  local diffs = {}
  for k, base in ipairs({ 0, 1 }) do
    local env = {}
    for _, o in pairs(ranges) do env[o.node] = math.min(base, (o.size or 1) - 1) end
    local v0 = evaluate(idx, env, {})
    env[r.node] = env[r.node] + 1
    if env[r.node] >= size then return nil end
    local v1 = evaluate(idx, env, {})
    if not v0 or not v1 then return nil end
    diffs[k] = v1 - v0
  end
  return diffs[1] == diffs[2] and diffs[1] or nil
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
local VECTORS = 16 -- vector registers the accumulators may take (of 32 on AVX-512)
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
--      VECTORS registers (by up to 4 within SCALARS values when step 1 found no vector);
--   3. without vectors, the innermost reduce axis gets up to 16 accumulators when it is
--      contiguous in a load; reduce axes of at most 4 are unrolled whole while the body stays
--      small;
--   4. a matmul whose B is larger than L2_BYTES swaps its two output loops (B's slices stay in
--      the caches).
-- Kernels without a reduction are left to gcc's loop vectorizer, and small ones (under SMALL
-- loop iterations) as they are.
local heuristic

-- Adjacent reduce ranges that every access walks as one (a's step is size(b) times b's) merge
-- first; the heuristic then works on the merged kernel.
function M.heuristic(sink)
  local merges = {}
  while true do
    local ranges, reds = M.ranges(sink), {}
    for _, r in pairs(ranges) do
      if r.kind == 1 then
        if not r.size then return heuristic(sink) end
        reds[#reds + 1] = r
      end
    end
    table.sort(reds, function(x, y) return x.axis < y.axis end)
    local found
    for i = 1, #reds - 1 do
      local a, b = reds[i], reds[i + 1]
      local ok = a.size > 1 and b.size > 1
      for _, acc in ipairs(accesses(sink)) do
        if not ok then break end
        local sa, sb = stride(acc.idx.src[2], a, a.size, ranges), stride(acc.idx.src[2], b, b.size, ranges)
        ok = sa ~= nil and sb ~= nil and sa == b.size * sb
      end
      if ok and pcall(M.merge, sink, a.axis, b.axis) then found = { "merge", a.axis, b.axis } break end
    end
    if not found then break end
    merges[#merges + 1] = found
    sink = M.simplify(M.merge(sink, found[2], found[3]))
  end
  local rest = heuristic(sink)
  for _, o in ipairs(rest) do merges[#merges + 1] = o end
  return merges
end

function heuristic(sink)
  local ranges, outs, reds, work = M.ranges(sink), {}, {}, 1
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
  -- a reduction inside another (a convolution fused into a pooling) keeps its loops as they are
  if not acc or nested then return {} end
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
  local vec
  for _, r in ipairs(outs) do
    local ok = r.size > 1 and strides[store][r.axis] == 1
    for _, a in ipairs(loads) do ok = ok and (strides[a][r.axis] == 0 or strides[a][r.axis] == 1) end
    if ok then vec = r end
  end
  if vec then
    local n, amount = vec.size, vec.size
    if n > lanes then
      amount = n % (2 * lanes) == 0 and 2 * lanes or lanes
    elseif 2 * n >= lanes then
      amount = pow2_at_least(n)
    end
    if amount >= lanes then budget = VECTORS * lanes end
    up[vec.axis], total = true, amount
    opts[#opts + 1] = { "upcast", vec.axis, amount }
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
  for _, c in ipairs(cands) do
    local n, best = c.r.size, nil
    for _, a in ipairs(budget == SCALARS and { 4, 3, 2 } or { 8, 7, 6, 5, 4, 3, 2 }) do
      if not best and n % a == 0 and total * a <= budget then best = a end
    end
    if best then
      total = total * best
      opts[#opts + 1] = { "upcast", c.r.axis, best }
    end
  end
  local copies = total
  local inner = reds[#reds]
  if inner and budget == SCALARS and inner.size > 4 then
    local contiguous = false
    for _, a in ipairs(loads) do contiguous = contiguous or strides[a][inner.axis] == 1 end
    local amount = inner.size <= 16 and inner.size or nil -- else the largest divisor from 16 to 4
    for a = 16, 4, -1 do amount = amount or (inner.size % a == 0 and a or nil) end
    if contiguous and amount then
      copies = copies * amount
      opts[#opts + 1] = { "accumulate", inner.axis, amount }
    end
  end
  for i = #reds, 1, -1 do
    local r = reds[i]
    if r.size >= 2 and r.size <= 4 and copies * r.size <= 4 * VECTORS * lanes then
      copies = copies * r.size
      opts[#opts + 1] = { "unroll", r.axis, r.size }
    end
  end
  -- a matmul whose B (the reduce axis by the vector axis) is larger than the caches: the vector
  -- axis's loop goes outside, so each slice of B stays cached while every row of A passes
  if vec and #outs == 2 and outs[2] == vec and #reds == 1 and reds[1].size * vec.size * acc.itemsize > L2_BYTES then
    opts[#opts + 1] = { "swap", outs[1].axis, outs[2].axis }
  end
  return opts
end

function M.optimize(sink) return M.apply(sink, M.heuristic(sink)) end

return M
