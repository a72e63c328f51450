-- luagrad.jit: lg.jit(fn) -> a function that runs fn's kernels again without running fn, as
-- tinygrad's TinyJit does. A training step builds hundreds of graph nodes in Lua and schedules
-- them each time; a replay only launches the step's compiled kernels on the same buffers.
--
--   local step = lg.jit(function(x, y)
--     local loss = net(x):cross_entropy(y)
--     opt:zero_grad(); loss:backward(); opt:step()
--     return loss
--   end)
--   for x, y in batches do print(step(x, y):item()) end
--
-- For each signature of the call (the shapes and dtypes of the tensor arguments, the values of
-- the others, Tensor.training), the first call runs fn as it is, the second and third run it
-- while recording their launches, and the calls after replay them. The two recordings tell what
-- every kernel input is:
--   * an argument: a replay reads the buffer of the tensor passed now;
--   * a value a kernel of the same call computed;
--   * state: the value a tensor held before the call, which fn assigns (p:assign(...), as the
--     optimizers, their moments and batch norm's running statistics are updated) and realizes;
--   * the keys of a random draw (lg.rand, dropout): a replay writes those of the generator's next
--     draws, in the order fn draws them, so it gives the numbers running fn would;
--   * a buffer fn only reads (a weight it does not train, a constant).
-- Anything else is an error: fn makes a tensor from host values that change each call, or keeps a
-- value from call to call in a Lua variable instead of assigning a tensor; a replay would repeat
-- or miss it. So is a value fn assigns but leaves lazy.
--
-- A replay reads each state tensor's buffer as it is when the replay starts, writes the new value
-- into the one of two buffers the tensor does not view, and points the tensor at it, as running
-- fn would; a buffer fn only reads is read through the tensor that held it, if that tensor was
-- given a new value since. So replays of several signatures, steps run without the jit and
-- load_state_dict can be mixed, and a jitted evaluation sees the weights training gave. The
-- .grad fields fn set are set again (to the gradients the replay wrote).
--
-- fn's results must be tensors; a replay returns the same tensor objects, holding the new values
-- (the buffers of values that are not state are written again by each replay). Arguments are
-- realized before the call. What fn does in Lua besides building tensors is not replayed: Lua
-- values it reads are frozen at the recording (a learning rate in a Lua number, an upvalue).
-- Values that change between calls go in as tensor arguments or as buffers written in place (the
-- optimizers' opt.lr is one). DEBUG=1 prints a line when a replay is made and at each replay;
-- JIT=0 (read once, as tinygrad's) runs fn at every call instead.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"
local realize = require "luagrad.realize"
local autograd = require "luagrad.autograd"

local is_tensor, shape_str = Tensor.is_tensor, Tensor.shape_str
local debug_level = tonumber(os.getenv("DEBUG") or "0") or 0
local enabled = os.getenv("JIT") ~= "0"

local M = {}

local function fail(fmt, ...) error("jit: " .. fmt:format(...), 0) end

-- the buffer handle behind a node that views one, or nil
local function node_buffer(u)
  if u.op == "RESHAPE" then u = u.src[1] end
  if u.op == "BUFFER" then return core.node_buffer(u) end
end

-- the buffer handle behind a realized tensor, made one first if it is a constant
local function buffer_of(t)
  local b = node_buffer(t.uop)
  if b then return b end
  t:realize()
  if t.uop.op == "CONST" then t:assign(t:contiguous()):realize() end
  return buffer_of(t)
end

-- What writes tell (Tensor.set_on_write): `written`, the tensors assigned while a call is
-- recorded, with the node each held before (nil when no call is); `watched`, buffers that
-- replays read as fixed, by id -> {by = the tensor that held it and was given another value}.
-- A replay reads the buffer that tensor holds now instead (a weight trained by other code).
-- `moves`: for each signature between its two recordings, the id of each buffer the first
-- recording read -> the first tensor that held it and was given another value (a weight that
-- changed between the two calls), false until then.
local written, watched, moves = nil, setmetatable({}, { __mode = "v" }), setmetatable({}, { __mode = "k" })
local function on_write(t, old)
  if written and not written[t] then written[t] = old end
  if next(watched) or next(moves) then
    local b = node_buffer(old)
    if not b then return end
    local e = watched[b.id]
    if e then e.by = t end
    for m in pairs(moves) do
      if m[b.id] == false then m[b.id] = t end
    end
  end
end
Tensor.set_on_write(on_write)

-- the signature of a call: its arguments (the shapes and dtypes of tensors, which of them are
-- one buffer, the values of others: floats exactly) and the mode (Tensor.training); and the
-- arguments' buffers (by position, nil for non-tensors)
local function signature(args)
  local parts, bufs, first = { Tensor.training and "training" or "eval" }, {}, {}
  for i = 1, args.n do
    local a = args[i]
    if is_tensor(a) then
      bufs[i] = buffer_of(a)
      local id = bufs[i].id
      parts[i + 1] = first[id] and ("=" .. first[id]) or tostring(a.dtype) .. shape_str(a.shape) -- one tensor twice
      first[id] = first[id] or i
    elseif math.type(a) == "float" then
      parts[i + 1] = ("%a"):format(a)
    elseif type(a) == "string" then
      parts[i + 1] = ("%q"):format(a)
    elseif a == nil or type(a) == "number" or type(a) == "boolean" then
      parts[i + 1] = tostring(a)
    else
      fail("argument %d is a %s; a jitted function takes tensors, numbers, strings and booleans", i, type(a))
    end
  end
  return table.concat(parts, ","), bufs
end

-- fn's results, checked and realized (inside the recording, if there is one)
local function results(res)
  for i = 1, res.n do
    if not is_tensor(res[i]) then
      fail("result %d is a %s: a replay cannot compute Lua values again, return tensors", i, type(res[i]))
    end
  end
  Tensor.realize_all({ table.unpack(res, 1, res.n) })
  return res
end

-- What the kernel inputs of a recorded call are (see the header): per kernel, per input slot,
-- {arg = k} (the k-th argument), {now = j} (kernel j's output), {before = j} (the value a
-- tensor held before the call, which kernel j computes anew: state), {draw = n, buf =} (the keys
-- of the call's n-th random draw, counted from 0) or {fixed = buffer}; and the tensors that
-- hold state: j -> {tensor...}.
local function sources(rec)
  local made, arg, state, held = {}, {}, {}, {}
  for i, l in ipairs(rec.launches) do made[l.args[1].id] = i end
  for k, buf in pairs(rec.bufs) do arg[buf.id] = arg[buf.id] or k end
  for t, w in pairs(rec.written) do
    local new, old = node_buffer(w.new), w.old
    local j = new and made[new.id]
    if not j then
      fail("fn gives a tensor of shape %s a value that no kernel of the call computes (assigned, not realized)",
        shape_str(t.shape))
    end
    old = node_buffer(old)
    if old and arg[old.id] then
      fail("fn assigns its argument %d; a replay writes only the tensors fn keeps from call to call", arg[old.id])
    end
    if old then
      state[old.id] = state[old.id] or j
      held[j] = held[j] or {}
      table.insert(held[j], t)
    end
  end
  local ins = {}
  for i, l in ipairs(rec.launches) do
    ins[i] = {}
    for s = 2, #l.args do
      local y = l.args[s].id
      local d = rec.draws[y]
      ins[i][s] = arg[y] and { arg = arg[y] } or made[y] and { now = made[y] } or state[y] and { before = state[y] }
        or d and { draw = d.n, buf = d.buf } or { fixed = l.args[s] }
    end
  end
  return ins, held
end

-- run fn on args, recording its launches: {launches = {{prog, args, name}...}, bufs, res,
-- written = {tensor fn assigned -> {old =, new =}: the nodes it held before and after the call},
-- grads = {tensor whose .grad fn changed -> its .grad after the call, or false}, draws = {id of
-- the keys buffer of a random draw -> {buf =, n = the draw's number from the call's first}},
-- ndraws = how many}
local function record(fn, args, bufs)
  local launches, outer, outer_written, mine = {}, realize.recorder, written, {}
  realize.recorder = function(prog, a, name)
    launches[#launches + 1] = { prog = prog, args = a, name = name }
    if outer then outer(prog, a, name) end
  end
  written = mine
  local grads, draws, c0 = autograd.grads(), {}, Tensor.random_counter()
  local outer_draw
  outer_draw = Tensor.on_draw(function(keys, c)
    draws[node_buffer(keys.uop).id] = { buf = node_buffer(keys.uop), n = c - c0 }
    if outer_draw then outer_draw(keys, c) end
  end)
  local ok, res = pcall(function() return results(table.pack(fn(table.unpack(args, 1, args.n)))) end)
  realize.recorder, written = outer, outer_written
  Tensor.on_draw(outer_draw)
  if outer_written then
    for t, old in pairs(mine) do outer_written[t] = outer_written[t] or old end
  end
  if not ok then error(res, 0) end
  for t, old in pairs(mine) do mine[t] = { old = old, new = t.uop } end
  local now, set = autograd.grads(), {} -- the .grad fields fn changed, with their new values
  for t, g in pairs(now) do
    if grads[t] ~= g then set[t] = g end
  end
  for t in pairs(grads) do
    if not now[t] then set[t] = false end
  end
  return { launches = launches, bufs = bufs, res = res, written = mine, grads = set, draws = draws,
    ndraws = Tensor.random_counter() - c0 }
end

local function kind(src)
  return src.arg and "arg" or src.now and "now" or src.before and "before" or src.draw and "draw" or "fixed"
end

-- b's source of a kernel input, checked against a's: the same, or a buffer that a tensor held
-- in call a and gave up for the one call b read (it follows that tensor); nil if neither
local function match(x, y, moved)
  if kind(x) ~= kind(y) then return end
  if not x.fixed then return (x.arg or x.now or x.before or x.draw) == (y.arg or y.now or y.before or y.draw) and y or nil end
  if x.fixed.id == y.fixed.id then return y end
  local t = moved[x.fixed.id]
  local now = t and node_buffer(t.uop)
  if now and now.id == y.fixed.id then return { fixed = y.fixed, by = t } end
end

-- The replay of two recorded calls a and b: b's steps, each {prog, name, out = b's output
-- buffer, ins = sources}, checked against a's; the carried steps (j -> the tensors holding their
-- value); and where the results come from ({arg = k} or {tensor = t}).
local function plan(a, b)
  local la, lb = a.launches, b.launches
  if #la ~= #lb then fail("the two recorded calls ran %d and %d kernels; fn must run the same kernels each call", #la, #lb) end
  local ins_a = sources(a)
  local ins_b, held = sources(b)
  local steps = {}
  for i, l in ipairs(lb) do
    if la[i].prog ~= l.prog then
      fail("kernel %d of the two recorded calls differs (%s, then %s); fn must run the same kernels each call", i,
        la[i].name, l.name)
    end
    for s = 2, #l.args do
      ins_b[i][s] = match(ins_a[i][s], ins_b[i][s], a.moved)
      if not ins_b[i][s] then
        fail("kernel %d (%s) reads, as its input %d, a buffer that is neither an argument, nor computed by fn's kernels, "
          .. "nor state that fn assigns, nor random keys, nor the same each call: fn makes a tensor from host values "
          .. "each call (Tensor.new of numbers that change), or keeps a value from call to call in a Lua variable "
          .. "(assign a tensor instead), which a replay would not do again", i, l.name, s - 1)
      end
    end
    steps[i] = { prog = l.prog, name = l.name, out = l.args[1], ins = ins_b[i] }
  end
  local outs = {}
  for i = 1, b.res.n do
    local id = buffer_of(b.res[i]).id
    local k
    for pos, buf in pairs(b.bufs) do
      if buf.id == id then k = pos end
    end
    outs[i] = k and { arg = k } or { tensor = b.res[i] }
  end
  return steps, held, outs
end

-- A replay of the steps (see plan). A carried value has two buffers: the step writes the one its
-- handles do not view now, and the handles then take it (a new node each time, as a realize does).
-- The handles' buffer is read anew each call, so state that code outside the replays gave new
-- values (an eager step, a load_state_dict) is where the replay starts from. The .grad fields
-- fn set take the same values again (the gradient buffers the replay wrote).
local function replayer(steps, carried, outs, grads, ndraws)
  local pair, mine = {}, {}
  for j in pairs(carried) do
    local x = steps[j].out
    pair[j] = { x, core.buffer(realize.device, x.dtype, #x) }
    mine[pair[j][2].id] = true
  end
  local launches, holes, watches = {}, {}, {} -- holes: {step, slot, source} filled per call
  local keys = {} -- buffer id -> the draw whose keys it holds
  for i, st in ipairs(steps) do
    local args = { st.out }
    if carried[i] then holes[#holes + 1] = { i, 1, { out = i } } end
    for s, src in pairs(st.ins) do
      if src.arg or src.before or (src.now and carried[src.now]) then
        holes[#holes + 1] = { i, s, src }
      elseif src.now then
        args[s] = steps[src.now].out
      elseif src.draw then
        args[s] = src.buf
        keys[src.buf.id] = src
      else
        args[s] = src.fixed
        local id = src.fixed.id
        watches[id] = watches[id] or watched[id] or { by = src.by }
        watched[id] = watches[id]
        holes[#holes + 1] = { i, s, { fixed = src.fixed, watch = watches[id] } }
      end
    end
    launches[i] = args
    mine[st.out.id] = true
  end
  local cur, out = {}, {}
  return function(args, bufs)
    for k, buf in pairs(bufs) do -- an argument that is one of the replay's own buffers is copied first
      if mine[buf.id] then bufs[k] = buffer_of(args[k]:contiguous():realize()) end
    end
    for j, hs in pairs(carried) do
      cur[j] = buffer_of(hs[1])
      for h = 2, #hs do
        if buffer_of(hs[h]).id ~= cur[j].id then
          fail("the tensors that hold kernel %d's value (%s) were given different values outside the function", j,
            steps[j].name)
        end
      end
      out[j] = cur[j].id == pair[j][1].id and pair[j][2] or pair[j][1]
    end
    local first = Tensor.random_counter() -- this call's draws, as running fn would make them
    for _, d in pairs(keys) do d.buf:write({ Tensor.random_keys(first + d.draw) }) end
    Tensor.random_counter(first + ndraws)
    for _, h in ipairs(holes) do
      local src = h[3]
      local by = src.watch and src.watch.by
      launches[h[1]][h[2]] = src.arg and bufs[src.arg] or src.before and cur[src.before]
        or src.fixed and (by and buffer_of(by) or src.fixed) or out[src.out or src.now]
    end
    local recorder, t0 = realize.recorder, debug_level >= 1 and core.clock()
    for i, st in ipairs(steps) do
      st.prog:launch(launches[i])
      if recorder then recorder(st.prog, table.move(launches[i], 1, #launches[i], 1, {}), st.name) end
    end
    realize.kernels_run = realize.kernels_run + #steps
    if t0 then print(("jit: replayed %d kernels in %.2f ms"):format(#steps, (core.clock() - t0) * 1e3)) end
    realize.forget_recent()
    for j, hs in pairs(carried) do
      local node = core.buffer_node(out[j])
      for _, t in ipairs(hs) do
        on_write(t, t.uop)
        Tensor.set_node(t, core.view_as(node, t.uop))
      end
    end
    for t, g in pairs(grads) do t.grad = g or nil end -- gradients the replay wrote, or none
    local res = { n = #outs }
    for i, o in ipairs(outs) do res[i] = o.tensor or args[o.arg] end
    return table.unpack(res, 1, res.n)
  end
end

local MAX_SIGNATURES = 64 -- a jitted function's; more is an error (a number argument that changes)

-- lg.jit(fn) -> a function with fn's results, replayed after its first three calls (see the header)
function M.jit(fn)
  if type(fn) ~= "function" then fail("expected a function, got a %s", type(fn)) end
  if not enabled then
    return function(...)
      local res = results(table.pack(fn(...)))
      return table.unpack(res, 1, res.n)
    end
  end
  local by_sig, nsig = {}, 0 -- signature -> {calls =, last = recording, replay = function}
  return function(...)
    local args = table.pack(...)
    local sig, bufs = signature(args)
    local st = by_sig[sig]
    if not st then
      if nsig == MAX_SIGNATURES then
        fail("fn was called with %d signatures (shapes and dtypes of tensors, values of other arguments); "
          .. "pass values that change from call to call as tensors", nsig + 1)
      end
      st, nsig = { calls = 0 }, nsig + 1
      by_sig[sig] = st
    end
    if st.replay then return st.replay(args, bufs) end
    st.calls = st.calls + 1
    if st.calls == 1 then
      local res = results(table.pack(fn(...)))
      return table.unpack(res, 1, res.n)
    end
    local rec = record(fn, args, bufs)
    if st.last then
      moves[st.last.moved] = nil
      local ok, steps, carried, outs = pcall(plan, st.last, rec)
      st.last = nil
      if not ok then -- the next call starts over
        st.calls = 0
        error(steps, 0)
      end
      st.replay = replayer(steps, carried, outs, rec.grads, rec.ndraws)
      if debug_level >= 1 then
        local n = 0
        for _ in pairs(carried) do n = n + 1 end
        print(("jit: captured %d kernels, %d values carried from call to call"):format(#steps, n))
      end
    else
      st.last, rec.moved = rec, {}
      for _, l in ipairs(rec.launches) do
        for i = 2, #l.args do rec.moved[l.args[i].id] = false end
      end
      moves[rec.moved] = true
    end
    return table.unpack(rec.res, 1, rec.res.n)
  end
end

return M
