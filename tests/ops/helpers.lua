-- Shared helpers of the ops specs: a seeded LCG for inputs, flat and nested tables, broadcasting
-- references, and value comparison with a tolerance. Everything here is plain Lua: references are
-- computed independently of luagrad.
local H = {}

-- a seeded linear congruential generator: H.lcg(seed)() gives integers in [0, 2^31)
function H.lcg(seed)
  local x = seed
  return function()
    x = (x * 1103515245 + 12345) % 2147483648
    return x
  end
end

-- n integers in [lo, hi]
function H.ints(rng, n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = lo + (rng() >> 8) % (hi - lo + 1) end
  return t
end

-- n floats, multiples of 1/8 in [lo, hi] (exact in float16 and float32)
function H.floats(rng, n, lo, hi)
  local t = {}
  for i = 1, n do t[i] = lo + ((rng() >> 8) % math.floor((hi - lo) * 8 + 1)) / 8 end
  return t
end

function H.numel(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- the values of a nested table (or a scalar) in row-major order
function H.flat(v, out)
  out = out or {}
  if type(v) ~= "table" then
    out[#out + 1] = v
  else
    for _, x in ipairs(v) do H.flat(x, out) end
  end
  return out
end

-- the numpy broadcast of two shapes
function H.bshape(a, b)
  local n, out = math.max(#a, #b), {}
  for i = 1, n do
    local x, y = a[#a - n + i] or 1, b[#b - n + i] or 1
    out[i] = x == 1 and y or x
  end
  return out
end

-- the flat position in `shape` that broadcasts to flat position p (1-based) of `out`
function H.bindex(out, shape, p)
  local idx, rem = {}, p - 1
  for i = #out, 1, -1 do
    idx[i] = rem % out[i]
    rem = rem // out[i]
  end
  local pos, stride = 0, 1
  for i = #shape, 1, -1 do
    local j = idx[#out - #shape + i]
    if shape[i] == 1 then j = 0 end
    pos = pos + j * stride
    stride = stride * shape[i]
  end
  return pos + 1
end

-- f applied elementwise over broadcast flat inputs: {values}, shape
function H.bmap(f, a, sa, b, sb)
  local out = H.bshape(sa, sb)
  local r = {}
  for p = 1, H.numel(out) do r[p] = f(a[H.bindex(out, sa, p)], b[H.bindex(out, sb, p)]) end
  return r, out
end

-- wrap an integer to a dtype of `bits` bits (signed or not)
function H.wrap(v, bits, signed)
  if bits == 64 then return v end
  local m = 1 << bits
  v = v % m
  if signed and v >= m // 2 then v = v - m end
  return v
end

-- round to float32 (through string.pack)
function H.f32(v) return (string.unpack("f", string.pack("f", v))) end

-- compare want and got (flat tables or values): exact for integers and booleans; floats with a
-- relative-or-absolute tolerance; NaN equals NaN; infinities must match
function H.close(want, got, tol, what)
  what = what or "value"
  if type(want) == "table" then
    assert(type(got) == "table", what .. ": expected a table, got " .. tostring(got))
    assert(#want == #got, ("%s: %d values expected, got %d"):format(what, #want, #got))
    for i = 1, #want do H.close(want[i], got[i], tol, what .. "[" .. i .. "]") end
    return
  end
  if type(want) == "number" and (math.type(want) == "float" or math.type(got) == "float") then
    assert(type(got) == "number", ("%s: want %s, got %s"):format(what, tostring(want), tostring(got)))
    if want ~= want then
      assert(got ~= got, ("%s: want nan, got %.9g"):format(what, got))
    elseif math.abs(want) == math.huge then
      assert(want == got, ("%s: want %s, got %s"):format(what, want, got))
    else
      assert(math.abs(want - got) <= (tol or 1e-6) * math.max(1, math.abs(want)),
        ("%s: want %.9g, got %.9g"):format(what, want, got))
    end
    return
  end
  assert(want == got, ("%s: want %s, got %s"):format(what, tostring(want), tostring(got)))
end

-- flat lists want and got hold the same values: equal (NaN equals NaN), or within a
-- relative-or-absolute tolerance tol when it is given (the devices' and optimizer's specs)
function H.same(want, got, tol, what)
  assert(#want == #got, ("%s: %d values expected, got %d"):format(what, #want, #got))
  for i = 1, #want do
    local a, b = want[i], got[i]
    local ok = a == b or (a ~= a and b ~= b) or (tol and math.abs(a - b) <= tol * (1 + math.abs(a)))
    if not ok then error(("%s: element %d: %s, expected %s"):format(what, i, tostring(b), tostring(a)), 2) end
  end
end

-- erf in double: its Taylor series for |x| < 2.5, else 1 - erfc by a continued fraction
function H.erf(x)
  if math.abs(x) >= 2.5 then
    local a, t = math.abs(x), math.abs(x)
    for n = 80, 1, -1 do t = a + (n / 2) / t end
    local e = 1 - math.exp(-a * a) / math.sqrt(math.pi) / t
    return x > 0 and e or -e
  end
  local sum, term, n = 0.0, x, 0
  repeat
    local add = term / (2 * n + 1)
    sum = sum + add
    n = n + 1
    term = -term * x * x / n
  until math.abs(add) < 1e-17 and n > 3
  return 2 / math.sqrt(math.pi) * sum
end

-- round half to even
function H.round_even(x)
  if x ~= x or math.abs(x) == math.huge then return x end
  local f = math.floor(x)
  local d = x - f
  if d > 0.5 or (d == 0.5 and f % 2 == 1) then f = f + 1 end
  return f + 0.0
end

return H
