-- luagrad.schedule: from a tensor graph to kernels. Decides which nodes get a buffer of their
-- own, lowers each such node to one kernel in the kernel IR (docs/kernel_ir.md): loops over its
-- shape, loads of its inputs through the index math of the movement ops between them, and
-- simplifies the kernel with the symbolic pass.
--
-- What fuses: elementwise chains and movement ops, elementwise producers of a reduction, and
-- elementwise consumers of a reduction that does not need broadcasting (M.realized).
local core = require "luagrad.core"
local rules = require "luagrad.rules"

local int32 = core.dtypes.int32
local M = {}

local MOVEMENT = { RESHAPE = true, PERMUTE = true, EXPAND = true, PAD = true, SHRINK = true, FLIP = true }

local function iconst(v) return core.const(int32, v) end

-- the strides of a contiguous row-major shape
local function strides(shape)
  local st, acc = {}, 1
  for i = #shape, 1, -1 do
    st[i] = acc
    acc = acc * shape[i]
  end
  return st
end

local function flat_index(idx, shape)
  local st, out = strides(shape), iconst(0)
  for i, r in ipairs(idx) do
    if shape[i] ~= 1 then out = out + r * st[i] end
  end
  return out
end

local ALU_FREE = { CONST = true, BUFFER = true, IOTA = true, CAST = true, CONTIGUOUS = true, DETACH = true,
  FUNCTION = true }
local RECOMPUTE_LIMIT = 4 -- ALU ops a kernel may recompute for each broadcast copy of a value

-- Which nodes get a buffer: the roots, CONTIGUOUS and COPY (BUFFERs have one already), and
--   * a REDUCE_AXIS that more than one kernel uses (it would be computed once per kernel), that
--     a kernel reads through an EXPAND (it would be computed again for every broadcast copy), or
--     that another reduction reads (a convolution under a pooling: each gets loops of its own,
--     which the optimizer blocks; nested, they are left as they are);
--   * an elementwise node that costs RECOMPUTE_LIMIT or more ALU ops and is read through an EXPAND
--     or by more than one kernel (a gradient several reductions of a batch norm read), unless
--     its cost is under the limit once the buffers decided below it count as free (max pooling's
--     gradient compares the activation, which gets a buffer, with the maximum: the comparison
--     fuses into both its readers instead of getting a bool buffer of its own).
-- Everything else fuses into the kernel that uses it. Users are visited before their sources,
-- so when a node is decided, the kernels that read it are known.
function M.realized(roots)
  local set, order, seen = {}, {}, {}
  for _, r in ipairs(roots) do
    set[r] = true
    for _, u in ipairs(r:toposort()) do
      if not seen[u] then
        seen[u] = true
        order[#order + 1] = u
      end
      if u.op == "CONTIGUOUS" or u.op == "COPY" then set[u] = true end
    end
  end
  -- the sources a kernel computes: a FUNCTION's value, not its inputs
  local function computed(u) return u.op == "FUNCTION" and { u.src[1] } or u.src end
  local cost = {} -- ALU ops under a node, up to reductions and buffers (shared ones counted again)
  for _, u in ipairs(order) do
    local c = (ALU_FREE[u.op] or MOVEMENT[u.op] or u.op == "REDUCE_AXIS") and 0 or 1
    if u.op ~= "REDUCE_AXIS" then
      for _, s in ipairs(computed(u)) do c = c + (cost[s] or 0) end
    end
    cost[u] = math.min(c, RECOMPUTE_LIMIT)
  end
  local expanded = {} -- reached from its kernel's root through an EXPAND
  local reduced = {}  -- reached from its kernel's root through a REDUCE_AXIS
  local owner = {}    -- the kernel (its root) a node is computed in, or false for several
  local costly = {}   -- given a buffer for its cost alone
  for i = #order, 1, -1 do
    local u = order[i]
    if not set[u] and u.shape and not MOVEMENT[u.op] and not ALU_FREE[u.op] then
      if u.op == "REDUCE_AXIS" and (owner[u] == false or reduced[u]) then set[u] = true end
      if (expanded[u] or owner[u] == false) and (u.op == "REDUCE_AXIS" or cost[u] >= RECOMPUTE_LIMIT) then
        set[u], costly[u] = true, u.op ~= "REDUCE_AXIS"
      end
    end
    local mine = set[u] and u or owner[u]
    local through = (not set[u] and expanded[u]) or u.op == "EXPAND"
    local under = (not set[u] and reduced[u]) or u.op == "REDUCE_AXIS"
    for _, src in ipairs(computed(u)) do
      if through then expanded[src] = true end
      if under then reduced[src] = true end
      if owner[src] == nil then
        owner[src] = mine
      elseif owner[src] ~= mine then
        owner[src] = false
      end
    end
  end
  local below = {} -- ALU ops under a node up to buffers
  for _, u in ipairs(order) do
    local c = (ALU_FREE[u.op] or MOVEMENT[u.op] or u.op == "REDUCE_AXIS") and 0 or 1
    if u.op ~= "REDUCE_AXIS" then
      for _, s in ipairs(computed(u)) do c = c + (set[s] and 0 or below[s] or 0) end
    end
    below[u] = c
    if costly[u] and c < RECOMPUTE_LIMIT then set[u] = nil end
  end
  return set
end

-- index math of a movement op: the source's index list from the node's (for a RESHAPE, `src`
-- may be the source of a chain of reshapes: their row-major order is one)
local function move(u, idx, gate, src)
  src = src or u.src[1]
  local arg = u.arg
  local ishape = src.shape or {}
  local out = {}
  if u.op == "RESHAPE" then
    local flat, ist = flat_index(idx, u.shape), strides(ishape)
    for i = 1, #ishape do out[i] = ishape[i] == 1 and iconst(0) or (flat // ist[i]) % ishape[i] end
  elseif u.op == "PERMUTE" then
    for i, p in ipairs(arg) do out[p + 1] = idx[i] end
  elseif u.op == "EXPAND" then
    for i = 1, #ishape do out[i] = (ishape[i] == 1 and u.shape[i] ~= 1) and iconst(0) or idx[i] end
  elseif u.op == "SHRINK" then
    for i = 1, #ishape do out[i] = idx[i] + arg[2 * i - 1] end
  elseif u.op == "FLIP" then
    for i = 1, #ishape do out[i] = arg[i] ~= 0 and (ishape[i] - 1) - idx[i] or idx[i] end
  else -- PAD: out of the source's range reads nothing (the value there is 0)
    local valid
    for i = 1, #ishape do
      local before = arg[2 * i - 1]
      out[i] = idx[i] - before
      if before > 0 or arg[2 * i] > 0 then
        local inside = (idx[i]:lt(before + ishape[i])) & ((idx[i] + 1):gt(before))
        valid = valid and (valid & inside) or inside
      end
    end
    return out, valid and (gate and (gate & valid) or valid) or gate, valid
  end
  return out, gate
end

-- u with the nodes of `map` (hash -> node) replaced; memo: a table for the call
local function substitute(u, map, memo)
  local h = u.hash
  local r = map[h] or memo[h]
  if r then return r end
  local src, changed = {}, false
  for i, x in ipairs(u.src) do
    src[i] = substitute(x, map, memo)
    changed = changed or src[i].hash ~= x.hash
  end
  r = changed and core.uop(u.op, u.dtype, src, u.arg) or u
  memo[h] = r
  return r
end

M.substitute = substitute

-- The index of a load, simplified where its gate holds: each clause `e < c` or `c < e` of the
-- gate (an AND of comparisons) bounds the expression e; e is swapped for a variable with those
-- bounds, the index simplified, and e put back. A pad's `x - 1` then divides like x would.
local symbolic
local function given_gate(index, gate)
  symbolic = symbolic or rules.pass("symbolic")
  index, gate = rules.graph_rewrite(index, symbolic), rules.graph_rewrite(gate, symbolic)
  local bounds, stack = {}, { gate }
  while #stack > 0 do
    local g = table.remove(stack)
    if g.op == "AND" then
      stack[#stack + 1], stack[#stack + 2] = g.src[1], g.src[2]
    elseif g.op == "CMPLT" and g.src[1].dtype == int32 then
      local a, b = g.src[1], g.src[2]
      local e, lo, hi
      if b.op == "CONST" and a.op ~= "CONST" then e, hi = a, b.arg - 1 end
      if a.op == "CONST" and b.op ~= "CONST" then e, lo = b, a.arg + 1 end
      while e and e.op == "ADD" and e.src[2].op == "CONST" do -- x + k < c: x < c - k
        local k = e.src[2].arg
        e, lo, hi = e.src[1], lo and lo - k, hi and hi - k
      end
      if e then
        local bd = bounds[e.hash] or { e = e, lo = e.vmin, hi = e.vmax }
        bd.lo, bd.hi = math.max(bd.lo, lo or bd.lo), math.min(bd.hi, hi or bd.hi)
        bounds[e.hash] = bd
      end
    end
  end
  -- smaller expressions first, so that a larger one is bounded with the smaller ones inside it
  -- already narrowed (r < 30 makes r // 6 at most 4)
  local list = {}
  for _, bd in pairs(bounds) do list[#list + 1] = bd end
  table.sort(list, function(x, y) return x.e:size() < y.e:size() end)
  local to, back, n = {}, {}, 0
  for _, bd in ipairs(list) do
    local e = substitute(bd.e, to, {})
    local lo, hi = math.max(bd.lo, e.vmin), math.min(bd.hi, e.vmax)
    if (lo > bd.e.vmin or hi < bd.e.vmax) and lo <= hi then
      n = n + 1
      local v = core.var("gate" .. n, lo, hi)
      to[bd.e.hash], back[v.hash] = v, bd.e
    end
  end
  if n == 0 then return index end
  return substitute(rules.graph_rewrite(substitute(index, to, {}), symbolic), back, {})
end

-- A kernel for the realized node `root`: {sink =, inputs = {node...}, output = root}; the
-- kernel's buffer slot 0 is the output, slots 1.. the inputs in order of first use.
local function kernel(root, realized)
  local inputs, slot_of = {}, {}
  local nranges = 0
  local function new_range(size, kind)
    local r = core.uop("RANGE", int32, { iconst(size) }, { nranges, kind })
    nranges = nranges + 1
    return r
  end
  local function slot(u)
    if not slot_of[u] then
      inputs[#inputs + 1] = u
      slot_of[u] = #inputs
    end
    return slot_of[u]
  end
  local memo = {}
  local lower
  -- a load of realized node u at index list idx of `shape` (u's own; or a reshape's of it, as a
  -- buffer holds its values in row-major order whatever the shape)
  local function load(u, idx, gate, shape)
    local buf = core.uop("DEFINE_GLOBAL", u.dtype:ptr(), {}, slot(u))
    shape = shape or (u.op == "BUFFER" and { u.arg[1] } or u.shape)
    local srcs = { buf, flat_index(idx, shape) }
    if gate then srcs[2], srcs[3] = given_gate(srcs[2], gate), gate end
    return core.uop("LOAD", u.dtype, { core.uop("INDEX", buf.dtype, srcs) })
  end
  function lower(u, idx, gate)
    local key = { u, gate or false, table.unpack(idx) }
    local k = table.concat((function()
      local t = {}
      for i, v in ipairs(key) do t[i] = v and tostring(v.hash) or "-" end
      return t
    end)(), ",")
    if memo[k] then return memo[k] end
    local out
    if u ~= root and (realized[u] or u.op == "BUFFER") then
      out = load(u, idx, gate)
    elseif u.op == "IOTA" then
      out = idx[1]
    elseif u.op == "CONST" or not u.shape then
      out = u
    elseif MOVEMENT[u.op] then
      if u.op == "RESHAPE" and not u.src[1].shape then
        out = lower(u.src[1], {}, gate)
      else
        local src = u.src[1]
        while u.op == "RESHAPE" and src.op == "RESHAPE" and not realized[src] and src.src[1].shape do
          src = src.src[1] -- a chain of reshapes: no index math through the shapes between
        end
        if u.op == "RESHAPE" and (realized[src] or src.op == "BUFFER") then
          out = load(src, idx, gate, u.shape) -- a reshaped buffer: the same flat index
        else
          local sidx, sgate, valid = move(u, idx, gate, src)
          out = lower(src, sidx, sgate)
          if valid then out = valid:where(out, core.const(u.dtype, 0)) end
        end
      end
    elseif u.op == "REDUCE_AXIS" then -- arg {"ADD" | "MAX" | "MUL", axis...}
      local op, axes = u.arg[1], {}
      for i = 2, #u.arg do axes[u.arg[i] + 1] = true end
      local sshape, sidx, rr = u.src[1].shape, {}, {}
      for i = 1, #sshape do
        if axes[i] then
          sidx[i] = new_range(sshape[i], 1)
          rr[#rr + 1] = sidx[i]
        else
          sidx[i] = idx[i]
        end
      end
      local srcs = { lower(u.src[1], sidx, gate) }
      for _, r in ipairs(rr) do srcs[#srcs + 1] = r end
      out = core.uop("REDUCE", u.dtype, srcs, op)
    elseif u.op == "CONTIGUOUS" or u.op == "DETACH" or u.op == "FUNCTION" then
      out = lower(u.src[1], idx, gate) -- a FUNCTION's other sources are its inputs, for gradients
    else -- elementwise
      local srcs = {}
      for i, s in ipairs(u.src) do srcs[i] = lower(s, idx, gate) end
      out = core.uop(u.op, u.dtype, srcs, u.arg)
    end
    memo[k] = out
    return out
  end

  local shape = root.shape or {}
  local idx, outer = {}, {}
  for i, n in ipairs(shape) do
    idx[i] = n == 1 and iconst(0) or new_range(n, 0)
    if n ~= 1 then outer[#outer + 1] = idx[i] end
  end
  local value = lower(root, idx)
  local out = core.uop("DEFINE_GLOBAL", root.dtype:ptr(), {}, 0)
  local store = core.uop("STORE", core.dtypes.void, { core.uop("INDEX", out.dtype, { out, flat_index(idx, shape) }), value })
  local body = #outer > 0 and core.uop("END", core.dtypes.void, { store, table.unpack(outer) }) or store
  -- slots: the output is 0, inputs follow in order of first use
  local sink = core.uop("SINK", core.dtypes.void, { body })
  return { sink = rules.graph_rewrite(sink, rules.pass("symbolic")), inputs = inputs, output = root }
end

-- What a root's value is a view of: a reshape keeps the element order, so the node under a
-- chain of them is what needs a buffer.
function M.base(root)
  while root.op == "RESHAPE" and root.src[1].shape do root = root.src[1] end
  return root
end

-- The kernels that realize `roots` (their bases, see M.base), producers first. A root that is
-- already a BUFFER needs none.
function M.schedule(roots)
  local bases = {}
  for _, r in ipairs(roots) do
    r = M.base(r)
    if r.op ~= "BUFFER" then bases[#bases + 1] = r end
  end
  roots = bases
  local realized, order, kernels = M.realized(roots), {}, {}
  local seen = {}
  for _, r in ipairs(roots) do
    for _, u in ipairs(r:toposort()) do
      if realized[u] and not seen[u] then
        seen[u] = true
        order[#order + 1] = u
      end
    end
  end
  for _, u in ipairs(order) do kernels[#kernels + 1] = kernel(u, realized) end
  return kernels
end

return M
