-- Creation of luagrad.tensor: full, zeros, ones, empty, arange, eye, rand, randn, randint and the
-- *_like forms. A shape is varargs (zeros(2, 3)) or a table (zeros({2, 3})), optionally followed
-- by an options table {dtype =, device =, requires_grad =}. Nothing is computed until realized:
-- constants are an expanded CONST, arange is built from padded constants (no buffer, no host
-- loop), so all of them fuse into the kernels that use them.
--
-- Random numbers are counter-based: each call of rand/randn/randint draws new counters from the
-- generator state (seed, counter); lg.manual_seed(n) sets the seed and resets the counter, so a
-- program that seeds and then draws in the same order gets the same numbers. The default seed is
-- 0 (as JAX; PyTorch seeds from the clock). Element i of a draw is
--   h = mix(mix(i xor k1) + k2)     (uint32; mix is the "lowbias32" integer hash of C. Wellons)
-- with keys k1, k2 hashed on the host from (seed, counter). rand: the top 24 bits of h times
-- 2^-24 (float32; float16 11 bits, bfloat16 8 bits, float64 53 bits from two draws), uniform in
-- [0, 1). randn: Box-Muller, sqrt(-2 log(1 - u1)) cos(2 pi u2). randint(lo, hi): lo + (h * (hi -
-- lo)) >> 32, uniform in [lo, hi), int32 by default (PyTorch: int64).
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local dt = core.dtypes
local wrap, raise, shape_args, infer_dtype = Tensor.wrap, Tensor.raise, Tensor.shape_args, Tensor.infer_dtype

local function finish(t, opts)
  if opts and opts.requires_grad then t.requires_grad = true end
  return t
end

local check_dtype = Tensor.check_dtype

-- full(shape, value [, opts]): shape a table or a number
function Tensor.full(shape, value, opts)
  if type(shape) == "number" then shape = { shape } end
  if type(shape) ~= "table" then raise("full: shape is a %s, expected a table of sizes", type(shape)) end
  local s = shape_args(shape)
  if type(value) ~= "number" and type(value) ~= "boolean" then
    raise("full: value is a %s, expected a number or a boolean", type(value))
  end
  opts = opts or {}
  local dtype = check_dtype("full", opts.dtype) or infer_dtype({ value })
  local ones = {}
  for i = 1, #s do ones[i] = 1 end
  local c
  if (dtype.kind ~= "float" and math.type(value) == "float") or (dtype.kind == "bool" and type(value) == "number")
    or (dtype.kind ~= "bool" and type(value) == "boolean") then
    local vd = infer_dtype({ value }) -- the value's own dtype, cast (9.7 to int32 is 9, as PyTorch)
    c = core.uop("CAST", dtype, { core.const(vd, value) })
  else
    c = core.const(dtype, value)
  end
  local scalar = core.uop("RESHAPE", dtype, { c }, ones)
  local same = true
  for i = 1, #s do same = same and s[i] == 1 end
  return finish(wrap(same and scalar or core.uop("EXPAND", dtype, { scalar }, s)), opts)
end

function Tensor.zeros(...)
  local s, opts = shape_args(...)
  return Tensor.full(s, 0, { dtype = opts.dtype or Tensor.default_float, requires_grad = opts.requires_grad })
end
function Tensor.ones(...)
  local s, opts = shape_args(...)
  return Tensor.full(s, 1, { dtype = opts.dtype or Tensor.default_float, requires_grad = opts.requires_grad })
end
-- empty: zeros (the values of an empty tensor are unspecified; these are 0)
Tensor.empty = Tensor.zeros

local function like(what, t, opts)
  if not Tensor.is_tensor(t) then raise("%s: expected a Tensor, got a %s", what, type(t)) end
  opts = opts or {}
  return t.shape, { dtype = opts.dtype or t.dtype, requires_grad = opts.requires_grad }
end
function Tensor.full_like(t, value, opts)
  local s, o = like("full_like", t, opts)
  return Tensor.full(s, value, o)
end
function Tensor.zeros_like(t, opts)
  local s, o = like("zeros_like", t, opts)
  return Tensor.full(s, 0, o)
end
function Tensor.ones_like(t, opts)
  local s, o = like("ones_like", t, opts)
  return Tensor.full(s, 1, o)
end
Tensor.empty_like = Tensor.zeros_like

-- 0, 1, ..., n-1 as int32, lazily: the IOTA op, which lowers to the loop index itself
local function iota(n) return Tensor.wrap(core.uop("IOTA", dt.int32, {}, { n })) end
Tensor.iota = iota

-- arange(stop), arange(start, stop [, step]) [, opts]: values as numpy, int32 when all of them are
-- integers, else float32 (or opts.dtype)
function Tensor.arange(...)
  local args = { ... }
  local opts = type(args[#args]) == "table" and table.remove(args) or {}
  local start, stop, step = args[1], args[2], args[3]
  if stop == nil then start, stop = 0, start end
  step = step or 1
  for _, v in ipairs({ start, stop, step }) do
    if type(v) ~= "number" then raise("arange: expected numbers (start, stop, step), got a %s", type(v)) end
  end
  if step == 0 then raise("arange: step is 0") end
  local ints = math.type(start) == "integer" and math.type(stop) == "integer" and math.type(step) == "integer"
  local n
  if ints then
    n = step > 0 and (stop - start + step - 1) // step or (start - stop - step - 1) // (-step)
  else
    n = math.ceil((stop - start) / step)
  end
  n = math.max(0, math.tointeger(n) or 0)
  local dtype = check_dtype("arange", opts.dtype) or (ints and Tensor.default_int or Tensor.default_float)
  local i = iota(n)
  local t
  if ints and dtype.kind ~= "float" then
    t = i * step + start
  else
    t = i:cast(dt.float64) * step + start
  end
  return finish(t:cast(dtype), opts)
end

-- eye(n [, m] [, opts]): ones on the diagonal, float32 by default
function Tensor.eye(n, m, opts)
  if type(m) == "table" then m, opts = nil, m end
  m = m or n
  if math.type(n) ~= "integer" or math.type(m) ~= "integer" or n < 0 or m < 0 then
    raise("eye: sizes %s, %s, expected integers >= 0", tostring(n), tostring(m))
  end
  opts = opts or {}
  local e = iota(n):reshape(n, 1):eq(iota(m):reshape(1, m))
  return finish(e:cast(check_dtype("eye", opts.dtype) or Tensor.default_float), opts)
end

-- ---- random --------------------------------------------------------------------------------

local state = { seed = 0, counter = 0 }
local M32 = 0xffffffff

function Tensor.manual_seed(n)
  if math.type(n) ~= "integer" then raise("manual_seed: the seed is %s, expected an integer", tostring(n)) end
  state.seed, state.counter = n, 0
end

local function mix_host(x)
  x = x & M32
  x = x ~ (x >> 16)
  x = (x * 0x7feb352d) & M32
  x = x ~ (x >> 15)
  x = (x * 0x846ca68b) & M32
  return x ~ (x >> 16)
end
local function mix(x) -- uint32 tensor
  x = x ~ (x >> 16)
  x = x * 0x7feb352d
  x = x ~ (x >> 15)
  x = x * 0x846ca68b
  return x ~ (x >> 16)
end

-- Tensor.random_keys(c) -> k1, k2: the keys of the generator's draw number c (its seed's)
function Tensor.random_keys(c)
  local s = mix_host(mix_host(state.seed) ~ mix_host((state.seed >> 32) + 0x9e3779b9))
  local k1 = mix_host(s + mix_host(c + 0x632be5ab))
  return k1, mix_host(k1 ~ 0x85ebca6b)
end

-- Tensor.random_counter([c]) -> the number of the generator's next draw (set to c first if given)
function Tensor.random_counter(c)
  if c then state.counter = c end
  return state.counter
end

-- on_draw(keys, c), when set, is told of every draw: its keys tensor and its number (luagrad.jit
-- writes a replay's keys). Tensor.on_draw(fn) -> the previous one.
local on_draw
function Tensor.on_draw(fn)
  local old = on_draw
  on_draw = fn
  return old
end

-- n fresh uint32 random words (a new counter of the generator)
local function bits(n)
  local c = state.counter
  state.counter = c + 1
  -- the keys are data, not constants: draws of one size share one compiled kernel
  local keys = Tensor.from_values({ Tensor.random_keys(c) }, { 2 }, dt.uint32)
  if on_draw then on_draw(keys, c) end
  return mix(mix(iota(n):cast(dt.uint32) ~ keys[1]) + keys[2])
end

local function uniform(n, dtype)
  if dtype == dt.float64 then
    local a, b = bits(n) >> 5, bits(n) >> 6
    return (a:cast(dt.float64) * 67108864.0 + b:cast(dt.float64)) * 2.0 ^ -53
  end
  local keep = dtype == dt.float16 and 11 or dtype == dt.bfloat16 and 8 or 24
  return ((bits(n) >> (32 - keep)):cast(dt.float32) * 2.0 ^ -keep):cast(dtype)
end

local function float_dtype(what, opts)
  local d = check_dtype(what, opts.dtype) or Tensor.default_float
  if d.kind ~= "float" then raise("%s: dtype %s is not a float dtype", what, tostring(d)) end
  return d
end

function Tensor.rand(...)
  local s, opts = shape_args(...)
  local d = float_dtype("rand", opts)
  local n = Tensor.shape_numel(s)
  return finish(uniform(n, d):reshape(s):contiguous(), opts) -- a buffer: not hashed again per use
end

function Tensor.randn(...)
  local s, opts = shape_args(...)
  local d = float_dtype("randn", opts)
  local n = Tensor.shape_numel(s)
  local w = d == dt.float64 and d or dt.float32
  local u1, u2 = uniform(n, w), uniform(n, w)
  local z = (-2 * (1 - u1):log()):sqrt() * (u2 * (2 * math.pi)):cos()
  return finish(z:cast(d):reshape(s):contiguous(), opts)
end

-- randint(lo, hi, shape... [, opts]) or randint(hi, {shape} [, opts]): uniform integers in [lo, hi)
function Tensor.randint(lo, hi, ...)
  local s, opts
  if type(hi) == "table" then
    lo, hi, s, opts = 0, lo, shape_args(hi, ...)
  else
    s, opts = shape_args(...)
  end
  if math.type(lo) ~= "integer" or math.type(hi) ~= "integer" or hi <= lo or hi - lo > 1 << 32 then
    raise("randint: bounds %s, %s, expected integers lo < hi with hi - lo <= 2^32", tostring(lo), tostring(hi))
  end
  local d = check_dtype("randint", opts.dtype) or Tensor.default_int
  local n = Tensor.shape_numel(s)
  local r = ((bits(n):cast(dt.uint64) * (hi - lo)) >> 32):cast(dt.int64) + lo
  return finish(r:cast(d):reshape(s):contiguous(), opts)
end

function Tensor.rand_like(t, opts)
  local s, o = like("rand_like", t, opts)
  return Tensor.rand(s, o)
end
function Tensor.randn_like(t, opts)
  local s, o = like("randn_like", t, opts)
  return Tensor.randn(s, o)
end

return Tensor
