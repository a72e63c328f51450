-- transcendental.lua: EXP2, LOG2 and SIN as plain ALU ops (multiply, add, compare, select, casts,
-- bitcasts and integer bit operations), so every backend computes them the same way, without
-- branches or library calls. float16 and bfloat16 go through float32. Measured against the C
-- library (tests/rules/transcendental_spec.lua): at most 1 ulp apart for float32 and float64.
--   exp2: x = q + s with q = round(x), |s| <= 1/2; 2^s by a minimax polynomial; 2^q built in the
--         exponent bits, in two factors so that denormal results round once and overflow is inf.
--   log2: x = 2^k * m with m in [sqrt(1/2), sqrt(2)); log(m) = 2 atanh(s), s = (m-1)/(m+1), in
--         the form f - f^2/2 + s (f^2/2 + R(s^2)) (f = m - 1), then times 1/ln 2 in two parts so
--         that k + log2(m) rounds once. Denormals are scaled up first.
--   sin:  |x| = q pi/2 + r, |r| <= pi/4, by Payne-Hanek: the bits of 2/pi that matter for the
--         exponent of |x| are selected (a barrel of selects over a table), multiplied by the
--         53-bit mantissa in 32-bit limbs, and the fraction becomes r in double-double; then sin
--         or cos of r by minimax polynomials as q mod 4 says. Exact for every finite argument.
--         float32 runs this in float64 (it needs the precision anyway) and rounds once at the end.
-- Coefficients: minimax (Remez, relative error) on the intervals named below; the bound after
-- each list is the approximation's own error, before rounding.
local P = require "luagrad.pattern"
local core = require "luagrad.core"

local dt = core.dtypes
local f32, f64 = dt.float32, dt.float64
local i32, i64 = dt.int32, dt.int64
local INF, NAN = math.huge, 0 / 0

local function K(like, v) return core.const(like.dtype, v) end

-- c[1] + u*(c[2] + u*(...))
local function horner(u, c)
  local acc = K(u, c[#c])
  for k = #c - 1, 1, -1 do acc = acc * u + c[k] end
  return acc
end

-- per float dtype: its integer twin, mantissa bits, exponent bias and constants
local F = {
  [f32] = { int = i32, mbits = 23, bias = 127, magic = 12582912.0, magic_bits = 0x4b400000, one_bits = 0x3f800000,
    min_normal = 2.0 ^ -126, scale = 24,
    exp_lo = -151, exp_hi = 129, sqrt_half = 0x3f3504f3, hi_mask = -4096, ivln2_hi = 1.44287109375,
    ivln2_lo = -0.00017605286103659264,
    -- (2^s - 1)/s on [-1/2, 1/2], relative error of 2^s 2^-27.9
    exp2 = { 0.6931472420692444, 0.24022650718688965, 0.05550297349691391, 0.009618030861020088,
      0.0013410000829026103, 0.00015469732170458883 },
    -- (2 atanh(s)/s - 2)/s^2 on s^2 in [0, 0.02944], relative error of log 2^-29.4
    log = { 0.6666677594184875, 0.3997608423233032, 0.29925453662872314 } },
  [f64] = { int = i64, mbits = 52, bias = 1023, magic = 6755399441055744.0, magic_bits = 0x4338000000000000,
    one_bits = 0x3ff0000000000000, min_normal = 2.0 ^ -1022, scale = 54,
    exp_lo = -1076, exp_hi = 1025, sqrt_half = 0x3fe6a09e667f3bcd, hi_mask = -4294967296,
    ivln2_hi = 1.4426950407214463, ivln2_lo = 1.6751713164886512e-10,
    exp2 = { 0.6931471805599453, 0.2402265069591013, 0.055504108664820084, 0.00961812910759412,
      0.001333355814677462, 0.0001540353045711209, 1.5252733493127489e-05, 1.3215435282308488e-06,
      1.0178199571842138e-07, 7.073783248503134e-09, 4.434771298200377e-10 }, -- 2^-58.0
    log = { 0.666666666666671, 0.39999999999520114, 0.2857142872920423, 0.2222219910037862,
      0.18183570998444593, 0.15313179277392916, 0.14810362639819422 } }, -- 2^-58.6
}

-- 2^k for integers k in the normal exponent range
local function pow2(k, T, fdt) return ((k + T.bias) << T.mbits):bitcast(fdt) end

-- ---- exp2 ---------------------------------------------------------------------------------

local function exp2(x)
  local T = F[x.dtype]
  local lo, hi = K(x, T.exp_lo), K(x, T.exp_hi)
  local xc = x:lt(lo):where(lo, x)                   -- beyond [lo, hi] the result is 0 or inf anyway
  xc = hi:lt(xc):where(hi, xc)                       -- NaN stays NaN, handled at the end
  local t = xc + T.magic                             -- round(xc) in the low bits (IEEE arithmetic as written:
  local s = xc - (t - T.magic)                       -- no -ffast-math), s exact
  local q = t:bitcast(T.int) - T.magic_bits
  local p = s * horner(s, T.exp2) + 1
  local q1 = q >> 1                                  -- 2^q1 2^(q-q1): both normal, one rounding at the end
  return x:ne(x):where(x, p * pow2(q1, T, x.dtype) * pow2(q - q1, T, x.dtype))
end

-- ---- log2 ---------------------------------------------------------------------------------

local function log2(x)
  local T, fdt, idt = F[x.dtype], x.dtype, F[x.dtype].int
  local tiny = x:lt(T.min_normal)                    -- denormals: scaled up to normal numbers
  local xs = tiny:where(x * 2.0 ^ T.scale, x)
  local ix = xs:bitcast(idt) + (T.one_bits - T.sqrt_half) -- exponent bits: k + bias, m in [sqrt(1/2), sqrt(2))
  local k = (ix >> T.mbits) - tiny:where(core.const(idt, T.bias + T.scale), core.const(idt, T.bias))
  local f = ((ix & ((1 << T.mbits) - 1)) + T.sqrt_half):bitcast(fdt) - 1.0
  local s = f / (f + 2.0)
  local z = s * s
  local hfsq = f * f * 0.5
  local hi = ((f - hfsq):bitcast(idt) & T.hi_mask):bitcast(fdt) -- short, so that hi * ivln2_hi is exact
  local lo = (f - hi) - hfsq + s * (hfsq + z * horner(z, T.log))
  local y = k:cast(fdt)
  local vhi = hi * T.ivln2_hi
  local w = y + vhi
  local r = ((lo + hi) * T.ivln2_lo + lo * T.ivln2_hi + ((y - w) + vhi)) + w -- (y - w) + vhi: what w lost
  r = x:lt(0.0):where(K(x, NAN), r)
  r = x:eq(0.0):where(K(x, -INF), r)
  r = x:eq(INF):where(x, r)
  return x:ne(x):where(x, r)
end

-- ---- sin ----------------------------------------------------------------------------------

-- frac(2/pi) in 32-bit words, most significant first
local TWO_OVER_PI = "A2F9836E4E441529FC2757D1F534DDC0DB6295993C439041FE5163ABDEBBC561B7246E3A424DD2E006492E" ..
    "EA09D1921CFE1DEB1CB129A73EE88235F52EBB4484E99C7026B45F7E413991D639835339F49C845F8BBDF9283B1FF897FFDE0598" ..
    "0FEF2F118B5A0A6D1F6D367ECF27CB09B74F463F669E5FEA2D7527BAC7EBE5F17B3D0739F78A5292EA6BFB5FB11F8D5D085603" ..
    "3046FC7B6BABF0CFBC209AF4361D"
local PAD = 2 -- zero words in front, for arguments down to pi/4
local WORDS = {}
for k = 1, PAD do WORDS[k] = 0 end
for w in TWO_OVER_PI:gmatch("%x%x%x%x%x%x%x%x") do WORDS[#WORDS + 1] = tonumber(w, 16) end

local function u(v) return core.const(i64, v) end
local LOW32 = 0xffffffff

-- words WORDS[i + k] (k = 0..n, i = 0-based index < 2^nbits) by a barrel of selects on i's bits;
-- a select is lo ~ ((hi ~ lo) & mask) with mask 0 or -1: no branches, and it vectorizes
local function window(i, n, nbits)
  local arr = {}
  for k = 1, n + 1 + (1 << nbits) do arr[k] = WORDS[k] or 0 end
  local function node(v) return type(v) == "number" and u(v) or v end
  for b = nbits - 1, 0, -1 do
    local sh, mask = 1 << b, -((i >> b) & 1):cast(i64)
    local out = {}
    for k = 1, n + (1 << b) do
      local lo, hi = arr[k], arr[k + sh]
      if lo == hi then
        out[k] = lo
      else
        local diff = (type(lo) == "number" and type(hi) == "number") and u(lo ~ hi) or node(hi) ~ node(lo)
        out[k] = node(lo) ~ (diff & mask)
      end
    end
    arr = out
  end
  for k = 1, n + 1 do arr[k] = node(arr[k]) end
  return arr
end

-- a + b exactly as s + err
local function two_sum(a, b)
  local s = a + b
  local bb = s - a
  return s, (a - (s - bb)) + (b - bb)
end

-- Payne-Hanek: a (float64, pi/4 <= a < inf) = q pi/2 + (hi + lo), |hi + lo| <= pi/4. n words of 2/pi
-- are used (32 n >= 55 + the fraction bits wanted); i_bits bounds the word index.
local PIO2_HI, PIO2_LO = 1.5707963267948966, 6.123233995736766e-17
local function payne_hanek(a, n, i_bits)
  local bits = a:bitcast(i64)
  local e = ((bits >> 52):cast(i32) & 0x7ff) - 1075  -- a = m 2^e, m a 53-bit integer
  local m = (bits & 0xfffffffffffff) | (1 << 52)
  local j0 = e - 2 + 32 * PAD                        -- first bit of 2/pi that is not a multiple of 4
  local w = window(j0 >> 5, n, i_bits)
  local sh = (j0 & 31):cast(i64)
  local g = {}                                       -- the n words from bit j0, least significant first
  for k = 1, n do g[n + 1 - k] = ((w[k] << sh) | (w[k + 1] >> (u(32) - sh))) & LOW32 end
  local m0, m1 = m & LOW32, m >> 32
  local lo0, hi0, lo1, hi1 = {}, {}, {}, {}
  for k = 1, n do
    local p0, p1 = m0 * g[k], m1 * g[k]
    lo0[k], hi0[k], lo1[k], hi1[k] = p0 & LOW32, (p0 >> 32) & LOW32, p1 & LOW32, p1 >> 32
  end
  local limb, carry = {}, nil                        -- the low n limbs of m * g
  for c = 1, n do
    local sum = lo0[c]
    if c > 1 then sum = sum + lo1[c - 1] + hi0[c - 1] end
    if c > 2 then sum = sum + hi1[c - 2] end
    if carry then sum = sum + carry end
    limb[c], carry = sum & LOW32, sum >> 32
  end
  -- a 2/pi mod 4 = limb[n] * 2^-30 + limb[n-1] * 2^-62 + ...: two integer bits, the rest fraction
  local top = limb[n]
  local q = (top >> 30):cast(i32)
  local half = (top >> 29) & 1
  q = q + half:cast(i32)
  local hi = (top & 0x3fffffff):cast(f64) * 2.0 ^ -30 - half:cast(f64)
  local lo = core.const(f64, 0.0)
  for k = n - 1, math.max(n - 3, 1), -1 do
    local d = limb[k]:cast(f64) * 2.0 ^ (-30 - 32 * (n - k))
    local err
    hi, err = two_sum(hi, d)
    lo = lo + err
  end
  hi, lo = two_sum(hi, lo)
  -- (hi + lo) pi/2 in double-double, the product hi * PIO2_HI exact by Dekker's splitting
  local p = hi * PIO2_HI
  local c = hi * 134217729.0
  local ah = c - (c - hi)
  local al = hi - ah
  local bh, bl = 1.5707963407039642, -1.3909067675399456e-08 -- PIO2_HI split in halves
  local perr = ((ah * bh - p) + ah * bl + al * bh) + al * bl
  local rlo = perr + (hi * PIO2_LO + lo * PIO2_HI)
  local rhi = p + rlo
  return q, rhi, rlo - (rhi - p)
end

-- minimax on [0, (pi/4)^2] in z = r^2; bounds relative to sin and cos
local SIN64 = { -0.16666666666666644, 0.008333333333323673, -0.00019841269830153272, 2.7557313655187267e-06,
  -2.505073511868829e-08, 1.5894743283863398e-10 }   -- (sin r - r)/r^3, 2^-57.1
local COS64 = { 0.04166666666666665, -0.0013888888888882846, 2.480158729463356e-05, -2.7557315740699307e-07,
  2.0875898081312824e-09, -1.1368002341468553e-11 }  -- (cos r - 1 + r^2/2)/r^4, 2^-62.1
local SIN32 = { -0.1666666664422011, 0.008333329329101974, -0.0001983926155350774,
  2.7173494641199704e-06 }                           -- 2^-36.8, for float32 results
local COS32 = { 0.041666666647934746, -0.0013888885547482964, 2.479991166943514e-05,
  -2.7237167452849375e-07 }                          -- 2^-41.3

-- sin(x + y) and cos(x + y) for |x + y| <= pi/4, |y| tiny
local function sin_dd(x, y, c)
  local z = x * x
  local v = z * x
  local tail = {}
  for k = 2, #c do tail[k - 1] = c[k] end
  return x - ((z * (y * 0.5 - v * horner(z, tail)) - y) - v * c[1])
end
local function cos_dd(x, y, c)
  local z = x * x
  local hz = z * 0.5
  local w = 1.0 - hz
  return w + (((1.0 - w) - hz) + (z * z * horner(z, c) - x * y))
end

local function sin(x)
  local fdt, idt = x.dtype, F[x.dtype].int
  local sign = x:bitcast(idt) & core.const(idt, fdt == f64 and math.mininteger or -0x80000000)
  local ax = (x:bitcast(idt) ~ sign):bitcast(fdt)       -- |x|
  local a = fdt == f64 and ax or ax:cast(f64)
  local big = K(a, 0.7853981633974483):lt(a) & a:lt(INF)
  local q, rhi, rlo = payne_hanek(big:where(a, K(a, 1.0)), fdt == f64 and 6 or 4, fdt == f64 and 6 or 3)
  q = big:where(q, core.const(i32, 0))
  rhi = big:where(rhi, a)
  rlo = big:where(rlo, K(a, 0.0))
  local odd = (q & 1):ne(0)
  local sc = fdt == f64 and { SIN64, COS64 } or { SIN32, COS32 }
  local r = odd:where(cos_dd(rhi, rlo, sc[2]), sin_dd(rhi, rlo, sc[1]))
  r = (q & 2):ne(0):where(-r, r)
  if fdt ~= f64 then r = r:cast(fdt) end
  r = (r:bitcast(idt) ~ sign):bitcast(fdt)
  return ax:lt(INF):where(r, K(x, NAN))
end

local EXPAND = { EXP2 = exp2, LOG2 = log2, SIN = sin }
local d = P.var("d")
local WIDE = { "float32", "float64" }
local NARROW = { "float16", "bfloat16" }

return {
  { P.op({ "EXP2", "LOG2", "SIN" }, { src = { d }, dtype = WIDE }),
    function(m, _, node) return EXPAND[node.op](m.d) end, name = "transcendental" },
  { P.op({ "EXP2", "LOG2", "SIN" }, { src = { d }, dtype = NARROW }),
    function(m, _, node) return EXPAND[node.op](m.d:cast(f32)):cast(node.dtype) end,
    name = "transcendental in float32" },
}
