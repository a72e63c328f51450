-- luagrad.realize: running a tensor graph. Schedules it into kernels, renders each to C,
-- compiles it (programs are cached by their source), runs it on buffers, and gives back the
-- graph's value as a view of a BUFFER node. DEBUG=1 counts kernels, DEBUG=2 prints a line per
-- kernel, DEBUG=4 also its source.
local core = require "luagrad.core"
local schedule = require "luagrad.schedule"


local M = {}
local debug_level = tonumber(os.getenv("DEBUG") or "0") or 0
local programs = {} -- source -> Program: a kernel compiled once per process
M.kernels_run = 0

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
    p = core.program("CPU", src, name)
    programs[src] = p
  end
  return p
end

-- Run the kernels that compute `root`; returns a node that views the result in a buffer.
function M.run(root)
  if base_buffer(root) or root.op == "CONST" then return root end
  local inner = schedule.base(root)
  local done = { [inner] = inner.op == "BUFFER" and inner or nil }
  local kernels = schedule.schedule({ inner })
  for _, k in ipairs(kernels) do
    local n = numel(k.output.shape)
    local out = core.buffer("CPU", k.output.dtype, n)
    local bufs = { out }
    for i, inp in ipairs(k.inputs) do
      bufs[i + 1] = core.node_buffer(done[inp] or assert(base_buffer(inp), "kernel input without a buffer"))
    end
    if n > 0 then -- an empty result needs no kernel
      local name = kernel_name(k)
      local src = core.render_c(k.sink, name)
      if debug_level >= 4 then print(src) end
      local prog = program(src, name)
      local t0 = debug_level >= 2 and core.clock()
      prog:launch(bufs)
      M.kernels_run = M.kernels_run + 1
      if t0 then
        local t, bytes = core.clock() - t0, 0
        for _, b in ipairs(bufs) do bytes = bytes + b.nbytes end
        print(("*** %-24s %-14s %9.1f us %8.3f GFLOP/s %8.3f GB/s"):format(name,
          "(" .. table.concat(k.output.shape or {}, ",") .. ")", t * 1e6, flops(k.sink) / t / 1e9, bytes / t / 1e9))
      end
    end
    done[k.output] = M.buffer_node(out)
  end
  if debug_level >= 1 then print(("scheduled and ran %d kernels"):format(#kernels)) end
  return core.uop("RESHAPE", root.dtype, { done[inner] }, root.shape or {})
end

-- the values of a realized node, flat, in row-major order
function M.values(u)
  if u.op == "CONST" then return { u.arg } end
  local b = base_buffer(u)
  return core.node_buffer(b):read()
end

return M
