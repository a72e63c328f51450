-- luagrad.realize: running a tensor graph. Schedules it into kernels, renders each for the
-- device (C on CPU, LLVM IR on LLVM), compiles it (programs are cached by their source), runs it
-- on buffers, and gives back the graph's value as a view of a BUFFER node. The device is
-- $DEVICE (default CPU), read once: every buffer and program lives there. Kernels get
-- luagrad.opt's heuristic optimizations; BEAM=n picks them by a search of width n instead
-- (luagrad.beam), NOOPT=1 applies none. DEBUG=1 counts kernels, DEBUG=2 prints a line per
-- kernel compiled (its compile time), searched and run, DEBUG=3 each new kernel's graph, DEBUG=4
-- its source, DEBUG=5 the tensor graph that was scheduled.
local core = require "luagrad.core"
local schedule = require "luagrad.schedule"
local rules = require "luagrad.rules"


local M = {}
local debug_level = tonumber(os.getenv("DEBUG") or "0") or 0
local transcendental = os.getenv("TRANSCENDENTAL") ~= "0" -- 0: EXP2, LOG2, SIN call the C library
local optimize = os.getenv("NOOPT") ~= "1" -- 1: no kernel optimizations (luagrad.opt)
local beam_width = math.tointeger(tonumber(os.getenv("BEAM") or "")) or 0 -- n > 0: luagrad.beam picks them
local env_device = os.getenv("DEVICE")
M.device = env_device and env_device ~= "" and env_device:upper() or "CPU" -- where buffers and kernels live
local programs = {} -- source -> Program: a kernel compiled once per process
M.kernels_run = 0
-- M.recorder(prog, args, name), when set, is told of every launch (luagrad.jit records a call):
-- args are the buffer handles, the output first; they stay alive (they are the recorder's now).
-- While it is set, runs reuse nothing and leave nothing to reuse: a replay writes the buffers again.

local function numel(shape)
  local n = 1
  for _, d in ipairs(shape or {}) do n = n * d end
  return n
end

-- a BUFFER node that owns buf (one node per buffer: the id makes it unique)
function M.buffer_node(buf) return core.buffer_node(buf) end

-- The buffer behind a BUFFER node, or behind a RESHAPE of one that keeps its element order.
local function base_buffer(u)
  if u.op == "BUFFER" then return u end
  if u.op == "RESHAPE" and u.src[1].op == "BUFFER" then return u.src[1] end
end

local function kernel_name(k)
  local prefix = "E"
  for _, u in ipairs(k.sink:toposort()) do
    if u.op == "REDUCE" then prefix = "r" end
  end
  local dims = {}
  for _, d in ipairs(k.output.shape or {}) do dims[#dims + 1] = tostring(d) end
  return prefix .. "_" .. (#dims > 0 and table.concat(dims, "_") or "1") -- each program is its own .so
end

-- the arithmetic a kernel does: each ALU node counts once per iteration of the loops it is in
local ALU = { ADD = 1, SUB = 1, MUL = 1, FDIV = 1, IDIV = 1, MOD = 1, MAX = 1, POW = 1, CMPLT = 1, CMPNE = 1,
  CMPEQ = 1, AND = 1, OR = 1, XOR = 1, SHL = 1, SHR = 1, WHERE = 1, MULACC = 2, EXP2 = 1, LOG2 = 1, SIN = 1,
  SQRT = 1, RECIPROCAL = 1, NEG = 1, TRUNC = 1, REDUCE = 1 }
local function flops(sink)
  local loops, total = {}, 0
  for _, u in ipairs(sink:toposort()) do
    local set = {}
    for _, s in ipairs(u.src) do
      for r in pairs(loops[s] or {}) do set[r] = true end
    end
    if u.op == "RANGE" then set[u] = true end
    local n = 1
    for r in pairs(set) do n = n * (r.src[1].arg or 1) end
    if ALU[u.op] and u.dtype.kind ~= "void" then total = total + ALU[u.op] * n end
    if u.op == "REDUCE" then
      for i = 2, #u.src do set[u.src[i]] = nil end
    end
    loops[u] = set
  end
  return total
end

local function program(src, name)
  local p = programs[src]
  if not p then
    local before = debug_level >= 2 and core.device_stats(M.device)
    p = core.program(M.device, src, name)
    programs[src] = p
    if before then
      local after = core.device_stats(M.device)
      print(("*** compile %-16s %-5s %9.2f ms%s"):format(name, M.device, (after.compile_ns - before.compile_ns) / 1e6,
        after.compiles > before.compiles and "" or " (cached)"))
    end
  end
  return p
end

-- the nodes of the graphs at roots, sources first, each once: the order of core.structure's key
local graph_nodes = core.nodes

-- What the last KEEP runs of several kernels computed or reused: node -> {node viewing its buffer,
-- the run}, and per run the list of its nodes. A later graph that holds one of these nodes reads
-- the buffer instead of computing it again (the forward values a backward computed, read again by
-- an accuracy count). A reused node stays as long as runs keep reusing it, so that a value every
-- step needs (made of constants) does not alternate between computed and reused, which would
-- alternate the steps' plans.
local recent, runs, KEEP, run_number = {}, {}, 2, 0

-- forget what recent runs computed: buffers they read were written again (a replay of luagrad.jit)
function M.forget_recent() recent, runs = {}, {} end

-- roots with the nodes that recent runs computed replaced by their buffers; the nodes reused go
-- into the list `used`
local function reuse(roots, used)
  if next(recent) == nil then return roots end
  local map, found = {}, false
  for _, u in ipairs(graph_nodes(roots)) do
    local r = recent[u]
    if r then
      map[u.hash], found = r[1], true
      used[#used + 1] = u
    end
  end
  if not found then return roots end
  local memo, out = {}, {}
  for i, r in ipairs(roots) do out[i] = schedule.substitute(r, map, memo) end
  return out
end

-- The kernels of the graphs at roots (bases, see schedule.base), compiled, with their inputs
-- named by position: {buf = i} (the i-th BUFFER of the graphs) or {step = j} (a kernel's output).
local function make_plan(roots, bufs)
  local buf_pos, step_of, steps = {}, {}, {}
  for i, b in ipairs(bufs) do buf_pos[b] = i end
  if debug_level >= 5 then
    for _, root in ipairs(roots) do print("scheduling:\n" .. tostring(root)) end
  end
  for j, k in ipairs(schedule.schedule(roots)) do
    local st = { dtype = k.output.dtype, n = numel(k.output.shape), shape = k.output.shape or {}, inputs = {} }
    for i, inp in ipairs(k.inputs) do
      local b = base_buffer(inp)
      st.inputs[i] = step_of[inp] and { step = step_of[inp] } or { buf = assert(buf_pos[b], "kernel input without a buffer") }
    end
    if st.n > 0 then -- an empty result needs no kernel
      st.name = kernel_name(k)
      local function lower(sink)
        return transcendental and rules.graph_rewrite(sink, rules.pass("transcendental")) or sink
      end
      if beam_width > 0 then
        local buffers = { { dtype = st.dtype, n = st.n } }
        for i, inp in ipairs(st.inputs) do
          local b = inp.buf and core.node_buffer(bufs[inp.buf])
          buffers[i + 1] = b and { dtype = b.dtype, n = #b } or { dtype = steps[inp.step].dtype, n = steps[inp.step].n }
        end
        k.sink = require("luagrad.beam").optimize(k.sink, { device = M.device, name = st.name, width = beam_width,
          buffers = buffers, lower = lower, debug = debug_level })
      elseif optimize then
        k.sink = require("luagrad.opt").optimize(k.sink)
      end
      k.sink = lower(k.sink)
      if debug_level >= 3 then print(("kernel %s:\n%s"):format(st.name, tostring(k.sink))) end
      local src = core.render(M.device, k.sink, st.name)
      if debug_level >= 4 then print(src) end
      st.prog = program(src, st.name)
      if debug_level >= 2 then st.flops = flops(k.sink) end
    end
    st.output = k.output
    steps[j] = st
    step_of[k.output] = j
  end
  local results, pos = {}, {}
  for i, root in ipairs(roots) do results[i] = step_of[root] end
  for i, u in ipairs(graph_nodes(roots)) do pos[u] = i end
  for _, st in ipairs(steps) do st.node_pos = pos[st.output] end
  return { steps = steps, results = results }
end

local plans = {} -- structure -> plan: scheduling and rendering are done once per graph shape

-- Buffers are held by nodes, and nodes by Lua values the collector sees as small: left to itself
-- it lets hundreds of megabytes of dead buffers pile up (and the pages they are given again each
-- cost a fault). After every COLLECT_BYTES of kernel outputs, a full collection runs.
local COLLECT_BYTES, fresh = 256 * 1024 * 1024, 0

-- Run the kernels that compute the nodes in the list `roots`, all in one schedule (what they
-- share is computed once); returns a list of nodes that view the results in buffers.
function M.run_many(roots)
  local out, bases, where = {}, {}, {}
  for i, root in ipairs(roots) do
    local op = root.op
    local inner = op == "RESHAPE" and schedule.base(root) or root
    if op == "CONST" or op == "BUFFER" or (op == "RESHAPE" and base_buffer(root)) then
      out[i] = root
    elseif inner.op == "BUFFER" then
      out[i] = core.view_as(inner, root)
    else
      if not where[inner] then
        bases[#bases + 1] = inner
        where[inner] = #bases
      end
      out[i] = where[inner]
    end
  end
  if #bases == 0 then return out end
  local key, bufs = core.structure(bases) -- graphs that differ only in their buffers share a plan
  local plan = plans[key]
  local used, recorder = {}, M.recorder
  if not recorder and not (plan and #plan.steps == 1) then -- one kernel computes nothing a recent run did
    local again = reuse(bases, used)
    if again ~= bases then
      bases = again
      key, bufs = core.structure(bases)
      plan = plans[key]
    end
  end
  if not plan then
    plan = make_plan(bases, bufs)
    plans[key] = plan
  end
  local outs = {}
  for j, st in ipairs(plan.steps) do
    fresh = fresh + st.n * st.dtype.itemsize
    local buf = core.buffer(M.device, st.dtype, st.n)
    local args = { buf }
    for i, inp in ipairs(st.inputs) do args[i + 1] = inp.step and outs[inp.step] or core.node_buffer(bufs[inp.buf]) end
    if st.prog then
      local t0 = debug_level >= 2 and core.clock()
      st.prog:launch(args)
      if recorder then recorder(st.prog, args, st.name) end
      M.kernels_run = M.kernels_run + 1
      if t0 then
        local t, bytes = core.clock() - t0, 0
        for _, b in ipairs(args) do bytes = bytes + b.nbytes end
        print(("*** %-24s %-14s %9.1f us %8.3f GFLOP/s %8.3f GB/s"):format(st.name,
          "(" .. table.concat(st.shape, ",") .. ")", t * 1e6, st.flops / t / 1e9, bytes / t / 1e9))
      end
    end
    outs[j] = buf
  end
  if debug_level >= 1 then print(("ran %d kernels"):format(#plan.steps)) end
  if #plan.steps > 1 and not recorder then -- what the kernels computed, under the nodes of this run's graphs
    local nodes, run = graph_nodes(bases), {}
    run_number = run_number + 1
    for j, st in ipairs(plan.steps) do
      local u = nodes[st.node_pos]
      if u and outs[j] and u.op ~= "BUFFER" then
        recent[u], run[#run + 1] = { core.view_as(M.buffer_node(outs[j]), u), run_number }, u
      end
    end
    for _, u in ipairs(used) do
      recent[u][2], run[#run + 1] = run_number, u
    end
    table.insert(runs, run)
    if #runs > KEEP then
      local old = run_number - KEEP
      for _, u in ipairs(table.remove(runs, 1)) do
        if recent[u] and recent[u][2] == old then recent[u] = nil end
      end
    end
  end
  local nodes = {}
  for i, root in ipairs(roots) do
    if type(out[i]) == "number" then
      local b = out[i]
      local j = plan.results[b]
      if j then
        nodes[b] = nodes[b] or M.buffer_node(outs[j])
        out[i] = core.view_as(nodes[b], root)
      else -- a recent run computed it
        out[i] = core.view_as(schedule.base(bases[b]), root)
      end
    end
  end
  -- the handles go now: the BUFFER nodes made above hold what is still needed, and the memory
  -- of the other outputs (intermediates) is free for the next run instead of waiting for the
  -- garbage collector (a training step's activations are hundreds of megabytes)
  if not recorder then
    for _, b in ipairs(outs) do b:release() end
  end
  if fresh > COLLECT_BYTES then -- see COLLECT_BYTES
    fresh = 0
    collectgarbage()
  end
  return out
end

-- Run the kernels that compute `root`; returns a node that views the result in a buffer.
function M.run(root) return M.run_many({ root })[1] end

-- the values of a realized node, flat, in row-major order
function M.values(u)
  if u.op == "CONST" then return { u.arg } end
  local b = base_buffer(u)
  return core.node_buffer(b):read()
end

return M
