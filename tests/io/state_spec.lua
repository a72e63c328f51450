-- lg.state: safetensors round trips of every dtype (values checked against the Lua input), a file
-- from an independent writer (tests/fixtures/gen_safetensors.py), the bytes our writer lays out,
-- corrupt files (each an error naming the problem), and load_state_dict on tables of layers.
local lg = require "luagrad"
local T = lg.Tensor

local root = os.getenv("LG_ROOT") or "."
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
local function path(name) return dir .. "/" .. name end
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

local function write(name, bytes)
  local f = assert(io.open(path(name), "wb"))
  f:write(bytes)
  f:close()
  return path(name)
end

local function read(p)
  local f = assert(io.open(p, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- a safetensors file of a header text and data bytes (the length may lie)
local function st_file(name, header, data, hlen)
  return write(name, string.pack("<I8", hlen or #header) .. header .. (data or ""))
end

local function flat(v, out)
  out = out or {}
  if type(v) ~= "table" then out[#out + 1] = v else for _, x in ipairs(v) do flat(x, out) end end
  return out
end

local function same_values(want, got, what)
  assert.are.equal(#want, #got, what)
  for i = 1, #want do
    local w, g = want[i], got[i]
    local ok = w == g or (w ~= w and g ~= g)
    assert(ok, ("%s: element %d is %s, expected %s"):format(what, i, tostring(g), tostring(w)))
  end
end

describe("state.save and state.load", function()
  local inf, nan = math.huge, 0 / 0
  -- per dtype: values it holds exactly
  local cases = {
    bool = { true, false, true },
    int8 = { -128, -1, 0, 127 },
    uint8 = { 0, 1, 200, 255 },
    int16 = { -32768, -2, 32767 },
    uint16 = { 0, 40000, 65535 },
    int32 = { -2147483648, 5, 2147483647 },
    uint32 = { 0, 3000000000, 4294967295 },
    int64 = { math.mininteger, -3, math.maxinteger },
    uint64 = { 0, math.maxinteger, -1 }, -- -1: the bit pattern of 2^64 - 1
    float16 = { 1.5, -65504.0, 2.0 ^ -24, inf, -inf, 0.0 },
    bfloat16 = { 1.0, -3.5, 2.0 ^ 100, 2.0 ^ -130, inf, -inf },
    float32 = { 1.5, -2.25, 3.4028234663852886e38, 1.401298464324817e-45, inf, -inf },
    float64 = { math.pi, -1e300, 5e-324, 2.0 ^ 52 + 1, inf, -inf },
  }

  it("round-trips every dtype, with its values, shape and metadata", function()
    local tbl = {}
    for name, values in pairs(cases) do
      tbl[name] = T(values, { dtype = lg[name] })
      tbl[name .. "_2d"] = T(values, { dtype = lg[name] }):reshape(1, #values)
    end
    tbl.nan32 = T({ nan, 1.0 })
    tbl.scalar = T(7.25)
    tbl.empty = T.zeros(0, 3, { dtype = lg.int16 })
    tbl["layers.1.weight"] = T.arange(12):reshape(3, 4):float() * 0.5
    local p = path("all.safetensors")
    lg.state.save(tbl, p, { format = "pt", ["unicode ✓"] = "line\nbreak \"quoted\"" })
    local got, meta = lg.state.load(p)
    assert.are.same({ format = "pt", ["unicode ✓"] = "line\nbreak \"quoted\"" }, meta)
    for name, values in pairs(cases) do
      for _, key in ipairs({ name, name .. "_2d" }) do
        local t = got[key]
        assert.are.equal(lg[name], t.dtype, key)
        assert.are.same(key == name and { #values } or { 1, #values }, t.shape, key)
        same_values(values, flat(t:totable()), key)
      end
    end
    same_values({ nan, 1.0 }, got.nan32:totable(), "nan32")
    assert.are.same({}, got.scalar.shape)
    assert.are.equal(7.25, got.scalar:item())
    assert.are.same({ 0, 3 }, got.empty.shape)
    assert.are.equal(lg.int16, got.empty.dtype)
    local w = {}
    for i = 0, 11 do w[#w + 1] = i * 0.5 end
    same_values(w, flat(got["layers.1.weight"]:totable()), "layers.1.weight")
    local n = 0
    for _ in pairs(got) do n = n + 1 end
    assert.are.equal(2 * 13 + 4, n)
  end)

  it("computes on loaded tensors and saves views and lazy results", function()
    local a = T({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = lg.float32 })
    lg.state.save({ t = a:permute(2, 1), s = a:sum(2), x = a[2] }, path("views.safetensors"))
    local got = lg.state.load(path("views.safetensors"))
    assert.are.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, got.t:totable())
    assert.are.same({ 6, 15 }, got.s:totable())
    assert.are.same({ 4, 5, 6 }, got.x:totable())
    assert.are.same({ { 2, 8 }, { 4, 10 }, { 6, 12 } }, (got.t * 2):totable())
  end)

  it("writes the reference layout: sorted keys, space padding to 64 bytes, data packed by itemsize then name", function()
    local p = path("layout.safetensors")
    lg.state.save({ b = T({ 1, 2 }, { dtype = lg.int16 }), a = T({ 1.5 }), c = T({ 3 }, { dtype = lg.int64 }) }, p,
      { k = "v", b = "2", z = "", a = "1" })
    local s = read(p)
    local n = string.unpack("<I8", s)
    assert.are.equal(0, (8 + n) % 64)
    local text = s:sub(9, 8 + n)
    assert.are.equal('{"__metadata__":{"a":"1","b":"2","k":"v","z":""},"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},' ..
      '"b":{"dtype":"I16","shape":[2],"data_offsets":[12,16]},"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}',
      text:match("^(.-) *$"))
    assert.are.equal(string.pack("<i8<f<i2<i2", 3, 1.5, 1, 2), s:sub(9 + n))
  end)

  it("reads a file from an independent writer (Python struct + json)", function()
    local want = dofile(root .. "/tests/fixtures/independent_safetensors.lua")
    local got, meta = lg.state.load(root .. "/tests/fixtures/independent.safetensors")
    assert.are.same(want.metadata, meta)
    local names = {}
    for name, w in pairs(want.tensors) do
      local t = got[name]
      assert.is_truthy(t, name)
      local dt = ({ F32 = lg.float32, F64 = lg.float64, F16 = lg.float16, BF16 = lg.bfloat16, I8 = lg.int8, U8 = lg.uint8,
        I16 = lg.int16, U16 = lg.uint16, I32 = lg.int32, U32 = lg.uint32, I64 = lg.int64, U64 = lg.uint64, BOOL = lg.bool })[w.dtype]
      assert.are.equal(dt, t.dtype, name)
      assert.are.same(w.shape, t.shape, name)
      same_values(w.values, flat(t:totable()), name)
      names[#names + 1] = name
    end
    local n = 0
    for _ in pairs(got) do n = n + 1 end
    assert.are.equal(#names, n)
  end)

  it("keeps loaded tensors valid when their file is saved over", function()
    local p = path("over.safetensors")
    lg.state.save({ w = T({ 1, 2, 3 }) }, p)
    local old = lg.state.load(p)
    lg.state.save({ w = T({ 9 }) }, p)
    assert.are.same({ 1, 2, 3 }, old.w:totable())
    assert.are.same({ 9 }, lg.state.load(p).w:totable())
    collectgarbage()
    assert.are.same({ 2, 4, 6 }, (old.w * 2):totable())
  end)

  it("refuses corrupt files with errors that name the problem and the values", function()
    local good = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    local data8 = string.pack("<ff", 1, 2)
    local function fails(name, header, data, pattern, hlen)
      local p = st_file(name, header, data, hlen)
      local ok, err = pcall(lg.state.load, p)
      assert.is_false(ok, name)
      assert.matches(pattern, err, 1, true)
      assert.matches("safetensors " .. p, err, 1, true)
    end
    assert.are.same({ 1, 2 }, lg.state.load(st_file("good", good, data8)).a:totable())
    fails("lying", good, data8, "header length 159 is larger than the file allows (62 bytes after the length)", 159)
    fails("huge", good, data8, "header length 4611686018427387904 is over the limit of 100000000 bytes", 1 << 62)
    fails("truncated", good, data8:sub(1, 6), "tensor 'a': data_offsets [0, 8] end beyond the data (6 bytes)")
    fails("beyond", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[96,104]}}', data8,
      "tensor 'a': data_offsets [96, 104] end beyond the data (8 bytes)")
    fails("overlap", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      data8, "tensors 'a' [0, 8] and 'b' [4, 8] overlap")
    fails("negative", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', data8,
      "tensor 'a': \"data_offsets\" is [-8,0], expected [begin, end] (integers >= 0)")
    fails("three", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4,8]}}', data8, "\"data_offsets\" is [0,4,8]")
    fails("fraction", '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,7.5]}}', data8, "\"data_offsets\" is [0,7.5]")
    fails("backwards", '{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', data8,
      "tensor 'a': data_offsets [8, 0] end before they begin")
    fails("badjson", '{"a":{"dtype":"F32",', data8, "the header is not valid JSON")
    fails("notobject", '[1,2,3]', data8, "the header does not start with '{'")
    fails("twovalues", '{} {}', data8, "the header has more than one JSON value")
    fails("nul", '{"a\0":1}', data8, "the header holds a NUL byte at byte 3")
    fails("dtype", '{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', data8,
      "tensor 'a': unknown dtype 'F33' (known: BOOL U8 I8")
    fails("nodtype", '{"a":{"shape":[2],"data_offsets":[0,8]}}', data8, "tensor 'a': \"dtype\" is nothing, expected a string")
    fails("size", '{"a":{"dtype":"F32","shape":[2,4],"data_offsets":[0,8]}}', data8,
      "tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape (2,4) of F32 needs 32")
    fails("shape", '{"a":{"dtype":"F32","shape":[2,-1],"data_offsets":[0,8]}}', data8,
      "tensor 'a': shape [2,-1]: size 2 is -1, expected an integer >= 0")
    fails("shapetype", '{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}', data8,
      "tensor 'a': \"shape\" is \"2\", expected a list of sizes")
    fails("dims", '{"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', data8,
      "tensor 'a': the shape has 17 dims, at most 16")
    fails("overflow", '{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', data8,
      "tensor 'a': shape (4294967296,4294967296) of F64 overflows 64-bit sizes")
    fails("entry", '{"a":[1]}', data8, "tensor 'a': its entry is a list ([1]), expected an object")
    fails("twice", '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
      data8, "tensor 'a' appears twice in the header")
    fails("meta", '{"__metadata__":{"k":1}}', "", "__metadata__: the value of 'k' is a number (1), expected a string")
    fails("metatype", '{"__metadata__":[]}', "", "__metadata__ is a list ([]), expected an object of strings")
    fails("bool", '{"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', "\1\2", "tensor 'a': BOOL element 2 is 2, expected 0 or 1")
    local short = write("short", "\5\0\0")
    local ok, err = pcall(lg.state.load, short)
    assert.is_false(ok)
    assert.matches("the file is 3 bytes, too short for the 8-byte header length", err, 1, true)
    ok, err = pcall(lg.state.load, path("missing.safetensors"))
    assert.is_false(ok)
    assert.matches("missing.safetensors: No such file or directory", err, 1, true)
    ok, err = pcall(lg.state.load, dir)
    assert.matches("not a regular file", err, 1, true)
  end)

  it("accepts gaps between entries and empty entries anywhere", function()
    local p = st_file("gaps", '{"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},' ..
      '"e":{"dtype":"I8","shape":[0],"data_offsets":[2,2]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
      string.pack("<fI8f", 1.5, 0, -2))
    local got = lg.state.load(p)
    assert.are.same({ 1.5 }, got.a:totable())
    assert.are.same({ -2 }, got.b:totable())
    assert.are.same({ 0 }, got.e.shape)
  end)

  it("refuses bad arguments to save", function()
    local p = path("bad.safetensors")
    assert.error_matches(function() lg.state.save({ a = 1 }, p) end, "state.save: 'a' is a number, expected a Tensor", 1, true)
    assert.error_matches(function() lg.state.save({ T({ 1 }) }, p) end, "state.save: key 1 is a number, expected a string", 1, true)
    assert.error_matches(function() lg.state.save({ a = T({ 1 }) }, p, { k = 1 }) end,
      "state.save: metadata k = 1: keys and values must be strings", 1, true)
    assert.error_matches(function() lg.state.save({ __metadata__ = T({ 1 }) }, p) end, "a tensor cannot be named __metadata__", 1, true)
    assert.error_matches(function() lg.state.save({ a = T({ 1 }) }, dir .. "/no/such/dir/x.safetensors") end,
      "cannot create " .. dir .. "/no/such/dir/x.safetensors.tmp-", 1, true)
    assert.error_matches(function() lg.state.load(3) end, "state.load: path is a number, expected a string", 1, true)
  end)
end)

describe("state.load_state_dict", function()
  local function model()
    return {
      layers = { { weight = T.zeros(2, 3), bias = T.zeros(3) }, { weight = T.zeros(3, 1), bias = T.zeros(1) } },
      head = { scale = T.ones(1, { dtype = lg.float64 }) },
      _cache = { tmp = T.zeros(5) },
      name = "mlp",
    }
  end

  it("finds tensors by dotted names, list positions as numbers, skipping keys that start with _", function()
    local names = {}
    for k in pairs(lg.state.state_dict(model())) do names[#names + 1] = k end
    table.sort(names)
    assert.are.same({ "head.scale", "layers.1.bias", "layers.1.weight", "layers.2.bias", "layers.2.weight" }, names)
  end)

  it("assigns the values of a saved state dict (cast to the model's dtypes), all realized", function()
    local src = model()
    src.layers[1].weight = T({ { 1, 2, 3 }, { 4, 5, 6 } }, { dtype = lg.float32 })
    src.layers[2].bias = T({ 0.5 })
    src.head.scale = T({ 2 }, { dtype = lg.float64 })
    local p = path("model.safetensors")
    lg.state.save(lg.state.state_dict(src), p)
    local m = model()
    local sd = lg.state.load(p)
    sd["head.scale"] = T({ 3 }, { dtype = lg.int32 }) -- a dtype other than the model's
    local missing, unexpected = lg.state.load_state_dict(m, sd)
    assert.are.same({}, missing)
    assert.are.same({}, unexpected)
    assert.are.same({ { 1, 2, 3 }, { 4, 5, 6 } }, m.layers[1].weight:totable())
    assert.are.same({ 0.5 }, m.layers[2].bias:totable())
    assert.are.equal(lg.float64, m.head.scale.dtype)
    assert.are.same({ 3 }, m.head.scale:totable())
    for _, t in pairs(lg.state.state_dict(m)) do
      local u = t.uop.op == "RESHAPE" and t.uop.src[1] or t.uop
      assert.are.equal("BUFFER", u.op)
    end
  end)

  it("lists missing, unexpected and mis-shaped entries with their shapes", function()
    local m = model()
    local sd = lg.state.state_dict(model())
    sd["layers.1.bias"] = T.zeros(4)
    sd["head.scale"] = nil
    sd["extra.w"] = T.zeros(2, 2)
    local ok, err = pcall(lg.state.load_state_dict, m, sd)
    assert.is_false(ok)
    assert.matches("load_state_dict: 1 mis-shaped: layers.1.bias: model (3), state dict (4); 1 missing: head.scale (1); " ..
      "1 unexpected: extra.w (2,2)", err, 1, true)
    sd["layers.1.bias"] = T.ones(3)
    ok, err = pcall(lg.state.load_state_dict, m, sd, { strict = true })
    assert.are.equal("load_state_dict: 1 missing: head.scale (1); 1 unexpected: extra.w (2,2)", err)
    local missing, unexpected = lg.state.load_state_dict(m, sd, { strict = false })
    assert.are.same({ "head.scale" }, missing)
    assert.are.same({ "extra.w" }, unexpected)
    assert.are.same({ 1, 1, 1 }, m.layers[1].bias:totable())
    sd["layers.1.bias"] = T.ones(4)
    assert.error_matches(function() lg.state.load_state_dict(m, sd, { strict = false }) end,
      "1 mis-shaped: layers.1.bias: model (3), state dict (4)", 1, true)
    sd["layers.1.bias"] = "nope"
    assert.error_matches(function() lg.state.load_state_dict(m, sd) end,
      "load_state_dict: 'layers.1.bias' in the state dict is a string, expected a Tensor", 1, true)
  end)
end)
