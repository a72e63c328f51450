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
--   accumulate(sink, axis, n)   like unroll, with an accumulator of its own per copy, combined
--                               after the loop
--   merge(sink, a, b)           two ranges walked as one become one range of their sizes' product
--   swap(sink, a, b)            two ranges of one kind trade axes: their loops trade places
--   vectorize(sink, axis, w)    a range r of size n becomes a range of n/w and w vector lanes
--                               (a RANGE of kind 2): r := outer*w + lane; the renderers make
--                               every value that depends on the lanes a vector of w
--   apply(sink, opts)           a list of {"upcast" | "unroll" | "accumulate" | "merge" | "pad" |
--                               "swap" | "vectorize", x, y}, then the symbolic pass
--   heuristic(sink) -> opts     what optimize applies: a hand-written choice in the manner of
--                               tinygrad's hand_coded_optimizations (luagrad/opt_heuristic.lua)
--   optimize(sink)              apply(sink, heuristic(sink))
--
-- Axes are the RANGE args' axis numbers: a transform keeps them (an outer range keeps its
-- range's axis; a range upcast or unrolled whole disappears). Upcast and unroll pad a range
-- whose size the amount does not divide.
local core = require "luagrad.core"
local rules = require "luagrad.rules"

local int32, void = core.dtypes.int32, core.dtypes.void
local M = {}

local LANES = 2 -- the RANGE kind of vector lanes (lg_range_kind in luagrad_enums.h)
M.LANES = LANES
M.MAX_LANES = 16

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
  if r.kind == LANES or (kind and r.kind ~= kind) then
    fail("%s: axis %d is a%s range", what, axis, ({ [0] = "n output", " reduce", " vector lanes" })[r.kind])
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
function M.dependents(root, r)
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
  local valid, dep, map = r2:lt(n), M.dependents(sink, r2), {}
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

-- vectorize(axis, w): r := outer*w + lane, where lane is a RANGE of kind LANES (no loop: the
-- renderers compute the w lanes at once). The END or REDUCE that closed r closes outer and lane.
function M.vectorize(sink, axis, width)
  local r = range_of(sink, axis, nil, "vectorize")
  if math.type(width) ~= "integer" or width < 2 or width > M.MAX_LANES or width & (width - 1) ~= 0 then
    fail("vectorize: the width must be a power of 2 from 2 to %d, got %s", M.MAX_LANES, tostring(width))
  end
  local last = -1
  for a, x in pairs(M.ranges(sink)) do
    if x.kind == LANES then fail("vectorize: the kernel has vector lanes already (axis %d)", a) end
    last = math.max(last, a)
  end
  if r.size % width ~= 0 then
    sink = M.pad(sink, axis, width)
    r = range_of(sink, axis, nil, "vectorize")
  end
  local lane = core.uop("RANGE", int32, { iconst(width) }, { last + 1, LANES })
  local outer = r.size > width and core.uop("RANGE", int32, { iconst(r.size // width) }, { axis, r.kind }) or nil
  local map = {}
  for _, u in ipairs(closers(sink, r.node, r.kind == 0 and "END" or "REDUCE")) do
    local srcs = {}
    for i, s in ipairs(u.src) do
      if s ~= r.node then srcs[#srcs + 1] = s elseif outer then srcs[#srcs + 1] = outer end
      if i == #u.src then srcs[#srcs + 1] = lane end
    end
    map[u] = u:replace({ src = srcs })
  end
  sink = substitute(sink, map)
  return substitute(sink, { [r.node] = outer and outer * width + lane or lane })
end

-- the lanes' coefficient in an int node that is affine in them (+, -, * by a constant), or nil
-- (dep: the nodes that depend on the lanes)
local function lane_coef(u, lane, dep, memo)
  if memo[u] ~= nil then return memo[u] or nil end
  local c
  if u == lane then
    c = 1
  elseif not dep[u] then
    c = 0
  elseif u.op == "ADD" or u.op == "SUB" then
    local a, b = lane_coef(u.src[1], lane, dep, memo), lane_coef(u.src[2], lane, dep, memo)
    c = a and b and (u.op == "ADD" and a + b or a - b)
  elseif u.op == "MUL" then
    local a, b = lane_coef(u.src[1], lane, dep, memo), lane_coef(u.src[2], lane, dep, memo)
    if a and u.src[2].op == "CONST" then c = a * u.src[2].arg elseif b and u.src[1].op == "CONST" then c = b * u.src[1].arg end
  end
  memo[u] = c or false
  return c
end

-- Every INDEX whose index is `base + lane` once simplified (a contiguous access) gets exactly
-- that form, ADD(base, lane), which the renderers turn into one vector load or store.
local function contiguous_lanes(sink)
  local lane
  for _, x in pairs(M.ranges(sink)) do if x.kind == LANES then lane = x.node end end
  if not lane then return sink end
  local map, memo, dep = {}, {}, M.dependents(sink, lane)
  for _, u in ipairs(sink:toposort()) do
    local i = u.op == "INDEX" and u.src[2]
    if i and i ~= lane and lane_coef(i, lane, dep, memo) == 1 then
      local base = M.simplify(substitute(i, { [lane] = iconst(0) }))
      map[u] = u:replace({ src = { u.src[1], core.uop("ADD", int32, { base, lane }), u.src[3] } })
    end
  end
  return substitute(sink, map)
end

-- ---- simplification -----------------------------------------------------------------------------

-- the symbolic pass (core/symbolic.c splits coefficients around a divisor: the copies' index math
-- `(17*a + b) % 16` becomes `a + b`)
function M.simplify(sink) return rules.graph_rewrite(sink, "symbolic") end

local transforms = { upcast = M.upcast, unroll = M.unroll, accumulate = M.accumulate, merge = M.merge, pad = M.pad,
  swap = M.swap, vectorize = M.vectorize }

function M.apply(sink, opts)
  for i, o in ipairs(opts) do
    local f = transforms[o[1]]
    if not f then
      fail("apply: step %d is %s; expected upcast, unroll, accumulate, merge, pad, swap or vectorize", i, tostring(o[1]))
    end
    sink = f(sink, o[2], o[3])
    -- a merge's m // s * s + m % s folds back to m before later steps split m again
    if o[1] == "merge" then sink = M.simplify(sink) end
  end
  return contiguous_lanes(M.simplify(sink))
end

-- ---- the heuristic (luagrad/opt_heuristic.lua) ------------------------------------------------

function M.heuristic(sink) return require("luagrad.opt_heuristic").heuristic(sink) end

function M.optimize(sink) return M.apply(sink, M.heuristic(sink)) end

return M
