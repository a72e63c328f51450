-- luagrad.autograd: reverse-mode automatic differentiation over the lazy tensor graph, in the
-- tinygrad way: gradients are new lazy graphs built by the rules of rewrite_rules/gradient.lua
-- (one per primitive op, found on the rules path like any rule file), so they fuse and schedule
-- like any other computation.
--
-- * t.requires_grad = true (or the option requires_grad = true) marks t: backward fills t.grad.
--   Only float tensors can require gradients. A marked tensor is found in the graph by its node
--   (t.uop at the time of backward). A tensor marked while it depends on no other marked tensor
--   is a leaf: gradients stop there, and so that two equal leaves (two zero biases, say) stay
--   two, it is realized into a buffer of its own first unless it is one already. A tensor marked
--   while it depends on marked ones gets its own .grad and lets gradients through. Reading
--   t.requires_grad of an unmarked tensor says whether its graph depends on a marked one.
-- * Realizing a tensor points it at a buffer; while any tensor is marked, the graph it was
--   computed by is kept with that buffer (outside no_grad, at least until the next backward), so
--   gradients flow through realized tensors too (loss:item() before loss:backward()). Gradients
--   themselves keep no graph.
-- * out:backward([grad]): the gradients of out (grad: of out's shape; only a one-element out may
--   leave it out, then it is 1) with respect to every marked tensor that out depends on, ADDED to
--   their .grad (t.grad = nil zeroes it), and all realized together in one realize_all. A marked
--   tensor that out depends on only through zero-gradient ops (floor, comparisons) gets zeros.
-- * lg.grad(out, {inputs...} [, grad]) -> {gradient...}: the same gradients for any float inputs,
--   lazy, without touching .grad; an input that out does not depend on gets zeros. The results
--   are ordinary graphs, so they can be differentiated again (higher order).
-- * t:detach() is t's value with no gradient flowing back (a DETACH node).
-- * lg.no_grad(fn, ...) runs fn(...) and returns its results; every tensor made or re-pointed
--   (assign, t[k] = v) inside is detached when it ends, so p:assign(p - lr * g) leaves p a leaf.
--   Outside no_grad tracking costs nothing: a tensor carries no tape, only its graph.
-- Ties: MAX (maximum, relu, clip, max) gives each tied side half the gradient, so relu'(0) and
-- abs'(0) differ from PyTorch (1/2 and 1 vs 0); the max reduction shares it among the ties.
local core = require "luagrad.core"
local rules = require "luagrad.rules"
local Tensor = require "luagrad.tensor"

local wrap, raise, shape_str, is_tensor = Tensor.wrap, Tensor.raise, Tensor.shape_str, Tensor.is_tensor

local M = {}

-- M.rules: op -> rule, from gradient.lua on the rules path; M.reload() reads the file again
function M.reload() M.rules = rules.load("gradient") end
M.reload()

-- marked tensors: t -> "leaf" (gradients stop there) or "node" (marked while it depended on
-- other marked tensors: gradients go on through it)
local marked = setmetatable({}, { __mode = "k" })
local grads = setmetatable({}, { __mode = "k" })   -- tensor -> its .grad
local history = setmetatable({}, { __mode = "k" }) -- realized node -> the graph it was computed by

local function is_view(u) return u.op == "BUFFER" or (u.op == "RESHAPE" and u.src[1].op == "BUFFER") end

-- the marked tensors by node (node -> {tensor...}), and the set of the leaves' nodes
local function marked_nodes()
  local by, leaves = {}, {}
  for t, kind in pairs(marked) do
    local u = t.uop
    local list = by[u]
    if list then list[#list + 1] = t else by[u] = { t } end
    if kind == "leaf" then leaves[u] = true end
  end
  return by, leaves
end

-- Realizing a tensor points it at a buffer; so that gradients still flow through it (loss:item()
-- before loss:backward()), the graph it was computed by is kept with the buffer's node, while any
-- tensor is marked, outside no_grad. A node's Lua value lives as long as Lua holds it, so the
-- graphs are also pinned until the next backward (a graph may hold the node when Lua no longer
-- does). A graph under a DETACH carries no gradient and is not kept.
local realize_all, pinned, quiet = Tensor.realize_all, {}, 0 -- quiet > 0: keep no graphs
function Tensor.realize_all(list)
  if quiet > 0 or next(marked) == nil then return realize_all(list) end
  local before = {}
  for i, t in ipairs(list) do before[i] = is_tensor(t) and t.uop end
  realize_all(list)
  for i, t in ipairs(list) do
    local old, new = before[i], t.uop
    if old and old ~= new and old.op ~= "DETACH" then
      history[new] = old
      pinned[#pinned + 1] = new
    end
  end
  return list
end

local function realize_fresh(list)
  quiet = quiet + 1
  local ok, err = pcall(Tensor.realize_all, list)
  quiet = quiet - 1
  if not ok then error(err, 0) end
end

-- the sources a gradient flows to: a realized node's graph, else the node's sources
local function sources(u)
  local h = history[u]
  return h and { h } or u.src
end

-- the nodes of root's graph (through the graphs of realized nodes, not past the leaves in
-- `stop`), sources first, and the set of those through which a gradient reaches targets: a
-- target, or a float node (not DETACH) with such a source
local function reaching(root, targets, stop)
  local topo, seen, on = {}, {}, {}
  local function add(r)
    for _, u in ipairs(r:toposort()) do
      if not seen[u] then
        seen[u] = true
        local h = not stop[u] and history[u]
        if h then add(h) end
        topo[#topo + 1] = u
        local hit = targets[u] ~= nil
        if not hit and not stop[u] and u.op ~= "DETACH" and u.dtype.kind == "float" then
          for _, s in ipairs(sources(u)) do
            if on[s] then
              hit = true
              break
            end
          end
        end
        on[u] = hit or nil
      end
    end
  end
  add(root)
  return topo, on
end

local function describe(v)
  if is_tensor(v) then return ("a %s tensor of shape %s"):format(tostring(v.dtype), shape_str(v.shape)) end
  return "a " .. type(v)
end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  return true
end

-- node -> gradient Tensor for the nodes of root's graph that lead to targets, from the
-- gradient g of root (nil when root leads to none), and the graph's nodes in order
local function backprop(root, g, targets, stop)
  local topo, on = reaching(root, targets, stop)
  if not on[root] then return nil, topo end
  local acc = { [root] = g }
  for i = #topo, 1, -1 do
    local u = topo[i]
    local gu = not stop[u] and acc[u]
    local h = gu and history[u]
    if h then
      acc[h] = acc[h] and acc[h] + gu or gu
    elseif gu and #u.src > 0 then
      local rule = M.rules[u.op]
      if not rule then raise("backward: no gradient rule for %s (rewrite_rules/gradient.lua)", u.op) end
      local src, args = u.src, {}
      for j, s in ipairs(src) do args[j] = wrap(s) end
      local out = { rule(gu, wrap(u), table.unpack(args)) }
      for j, s in ipairs(src) do
        local d = out[j]
        if d ~= nil and on[s] then
          if not is_tensor(d) or d.dtype ~= s.dtype or not same_shape(d.shape, s.shape or {}) then
            raise("backward: the %s rule gave %s for source %d, expected a %s tensor of shape %s", u.op, describe(d),
              j, tostring(s.dtype), shape_str(s.shape or {}))
          end
          acc[s] = acc[s] and acc[s] + d or d
        end
      end
    end
  end
  return acc, topo
end

-- the gradient that starts backward from out: grad (a tensor of out's shape, or a number), or 1
-- for a one-element out
local function seed(what, out, grad)
  if not is_tensor(out) then raise("%s: expected a Tensor, got a %s", what, type(out)) end
  if out.dtype.kind ~= "float" then
    raise("%s: the output has dtype %s; only float outputs have gradients", what, tostring(out.dtype))
  end
  if grad == nil then
    if out:numel() ~= 1 then
      raise("%s: a gradient can be left out only for a one-element output, this one has shape %s; "
        .. "pass one of that shape", what, shape_str(out.shape))
    end
    return Tensor.full(out.shape, 1, { dtype = out.dtype })
  end
  if type(grad) == "number" then return Tensor.full(out.shape, grad, { dtype = out.dtype }) end
  if not is_tensor(grad) then raise("%s: the gradient is a %s, expected a Tensor or a number", what, type(grad)) end
  if not same_shape(grad.shape, out.shape) then
    raise("%s: the gradient has shape %s, the output %s", what, shape_str(grad.shape), shape_str(out.shape))
  end
  return grad:cast(out.dtype)
end

-- out:backward([grad]): see the header
function Tensor:backward(grad)
  local g = seed("backward", self, grad)
  local by, leaves = marked_nodes()
  local acc, topo = backprop(self.uop, g, by, leaves)
  if not acc then raise("backward: the output does not depend on any tensor with requires_grad") end
  local ts, list = {}, {}
  for _, u in ipairs(topo) do -- graph order, so that the schedule of every step is the same
    for _, t in ipairs(by[u] or {}) do
      local d = acc[u] and wrap(acc[u].uop) or Tensor.zeros_like(t)
      local old = grads[t]
      ts[#ts + 1], list[#list + 1] = t, old and old + d or d
    end
  end
  -- with the gradients: the output itself, and the running statistics a forward in training
  -- mode left to update (luagrad.nn), which read the same forward values
  local out, all = wrap(self.uop), { table.unpack(list) }
  all[#all + 1] = out
  local nn = package.loaded["luagrad.nn"]
  if nn then
    for _, t in ipairs(nn.take_pending()) do all[#all + 1] = t end
  end
  realize_fresh(all)
  for i, t in ipairs(ts) do grads[t] = list[i] end
  pinned = {}
  if out.uop ~= self.uop then -- the output reads its buffer now, and keeps its graph for gradients
    history[out.uop], pinned[1] = self.uop, out.uop
    self.uop = out.uop
  end
end

-- lg.grad(out, {inputs...} [, grad]) -> {gradient...}: see the header
function M.grad(out, inputs, grad)
  local g = seed("grad", out, grad)
  if type(inputs) ~= "table" or is_tensor(inputs) then
    raise("grad: inputs is a %s, expected a list of Tensors", type(inputs))
  end
  local targets = {}
  for i, t in ipairs(inputs) do
    if not is_tensor(t) then raise("grad: input %d is a %s, expected a Tensor", i, type(t)) end
    if t.dtype.kind ~= "float" then
      raise("grad: input %d has dtype %s; only float tensors have gradients", i, tostring(t.dtype))
    end
    targets[t.uop] = true
  end
  local _, leaves = marked_nodes()
  local acc = backprop(out.uop, g, targets, leaves) or {}
  local res = {}
  for i, t in ipairs(inputs) do
    local d = acc[t.uop]
    res[i] = d and wrap(d.uop) or Tensor.zeros_like(t)
  end
  return res
end

-- whether t's graph depends on a marked tensor (a view of a buffer of its own, or a graph of
-- constants and random numbers, cannot: those are told at once, so marking many parameters is
-- not quadratic)
local function tracked(t)
  local u = t.uop
  if is_view(u) and not history[u] then return false end
  local buffers = false
  for _, v in ipairs(u:toposort()) do
    if v.op == "BUFFER" or history[v] then
      buffers = true
      break
    end
  end
  if not buffers then return false end
  local by, leaves = marked_nodes()
  if next(by) == nil then return false end
  local _, on = reaching(u, by, leaves)
  return on[u] ~= nil
end

Tensor.add_field("requires_grad", function(t) return marked[t] ~= nil or tracked(t) end, function(t, v)
  if not v then
    marked[t] = nil
    return
  end
  if t.dtype.kind ~= "float" then
    raise("requires_grad: only float tensors can require gradients, this one is %s", tostring(t.dtype))
  end
  if marked[t] then return end
  if tracked(t) then
    marked[t] = "node"
    return
  end
  if not is_view(t.uop) then realize_fresh({ t }) end
  marked[t] = "leaf"
end)

Tensor.add_field("grad", function(t) return grads[t] end, function(t, v)
  if v ~= nil and (not is_tensor(v) or v.dtype ~= t.dtype or not same_shape(v.shape, t.shape)) then
    raise("grad: expected nil or a %s tensor of shape %s, got %s", tostring(t.dtype), shape_str(t.shape), describe(v))
  end
  grads[t] = v
end)

-- lg.autograd.grads() -> {tensor -> its .grad}: every tensor that has one, in a new table
function M.grads()
  local out = {}
  for t, g in pairs(grads) do out[t] = g end
  return out
end

-- a handle made inside no_grad, detached (buffers and constants carry no history already)
local function detach_made(t)
  local u = rawget(t, "uop")
  if u and not is_view(u) and u.op ~= "DETACH" and #u.src > 0 then
    rawset(t, "uop", core.uop("DETACH", u.dtype, { u }))
  end
end

-- lg.no_grad(fn, ...) -> fn's results: see the header
function M.no_grad(fn, ...)
  local outer = Tensor.track_made(nil)
  local made = outer or {}
  Tensor.track_made(made)
  quiet = quiet + 1
  local res = table.pack(pcall(fn, ...))
  quiet = quiet - 1
  Tensor.track_made(outer)
  if not outer then
    for t in pairs(made) do detach_made(t) end
  end
  if not res[1] then error(res[2], 0) end
  return table.unpack(res, 2, res.n)
end

return M
