-- lg.data: IDX files made by hand (raw and gzip, every type), their errors, the real Fashion-MNIST
-- files against facts read by an independent reader (tests/fixtures/gen_fashion_mnist.py), and
-- batches (order, shuffling from the seed, cost).
local lg = require "luagrad"
local realize = require "luagrad.realize"
local T = lg.Tensor

local root = os.getenv("LG_ROOT") or "."
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p '" .. dir .. "'"))
teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

local function write(name, bytes)
  local p = dir .. "/" .. name
  local f = assert(io.open(p, "wb"))
  f:write(bytes)
  f:close()
  return p
end

local function gzip(p)
  assert(os.execute("gzip -n -c '" .. p .. "' > '" .. p .. ".gz'"))
  return p .. ".gz"
end

-- an IDX file: type code, dims, values packed big-endian with fmt
local function idx_bytes(code, dims, fmt, values)
  local s = string.char(0, 0, code, #dims)
  for _, d in ipairs(dims) do s = s .. string.pack(">I4", d) end
  for _, v in ipairs(values) do s = s .. string.pack(">" .. fmt, v) end
  return s
end

local function flat(v, out)
  out = out or {}
  if type(v) ~= "table" then out[#out + 1] = v else for _, x in ipairs(v) do flat(x, out) end end
  return out
end

describe("data.idx", function()
  local inf = math.huge
  local cases = {
    { "u8", 0x08, "B", { 2, 3 }, { 0, 1, 127, 128, 200, 255 }, lg.uint8 },
    { "i8", 0x09, "b", { 4 }, { -128, -1, 0, 127 }, lg.int8 },
    { "i16", 0x0B, "i2", { 2, 2 }, { -32768, -2, 300, 32767 }, lg.int16 },
    { "i32", 0x0C, "i4", { 3 }, { -2147483648, 70000, 2147483647 }, lg.int32 },
    { "f32", 0x0D, "f", { 2, 2 }, { 1.5, -0.15625, 3.4028234663852886e38, -inf }, lg.float32 },
    { "f64", 0x0E, "d", { 1, 3 }, { math.pi, -1e300, 5e-324 }, lg.float64 },
    { "scalar", 0x0C, "i4", {}, { -7 }, lg.int32 },
    { "empty", 0x08, "B", { 0, 28 }, {}, lg.uint8 },
  }

  it("reads every type, raw and gzip-compressed, values converted from big-endian", function()
    for _, c in ipairs(cases) do
      local name, code, fmt, dims, values, dtype = table.unpack(c)
      local raw = write(name .. ".idx", idx_bytes(code, dims, fmt, values))
      for _, p in ipairs({ raw, gzip(raw) }) do
        local t = lg.data.idx(p)
        assert.are.equal(dtype, t.dtype, p)
        assert.are.same(dims, t.shape, p)
        assert.are.same(values, flat(t:totable()), p)
      end
    end
  end)

  it("refuses bad files with errors naming the problem and the values", function()
    local function fails(name, bytes, pattern)
      local p = write(name, bytes)
      local ok, err = pcall(lg.data.idx, p)
      assert.is_false(ok, name)
      assert.matches("idx " .. p .. ": " .. pattern, err, 1, true)
    end
    fails("magic", "\1\0\8\1" .. string.pack(">I4", 1) .. "x", "bad magic 01 00 08 01 (expected 00 00, a type code, the number of dims)")
    fails("type", "\0\0\10\1" .. string.pack(">I4", 1) .. "x", "unknown type code 0x0A (known: 0x08 uint8")
    fails("short", "\0\0", "the file is 2 bytes, too short for the 4-byte magic")
    fails("dims", "\0\0\8\3" .. string.pack(">I4I2", 2, 2), "truncated in the dims: 6 of 12 bytes")
    fails("data", idx_bytes(0x0B, { 2, 5 }, "B", { 1, 2, 3, 4, 5 }), "truncated data: 5 of 20 bytes (dims 2x5 of int16)")
    fails("more", idx_bytes(0x08, { 3 }, "B", { 1, 2, 3, 4 }), "more bytes after the 3 of dims 3 of uint8")
    fails("overflow", idx_bytes(0x0E, { 0xffffffff, 0xffffffff, 0xffffffff }, "B", {}),
      "dims 4294967295x4294967295x4294967295 of float64 overflow 64-bit sizes")
    fails("ndim", "\0\0\8\17" .. string.rep(string.pack(">I4", 1), 17) .. "x", "17 dims, at most 16")
    -- gzip streams cut short or corrupt
    local big = write("big.idx", idx_bytes(0x0C, { 4000 }, "i4", (function()
      local v = {}
      for i = 1, 4000 do v[i] = i * 7919 % 100003 end
      return v
    end)()))
    local f = assert(io.open(gzip(big), "rb"))
    local gz = f:read("a")
    f:close()
    fails("cut.idx.gz", gz:sub(1, #gz // 2), "truncated data: ")
    fails("bad.idx.gz", gz:sub(1, 20) .. ("x"):rep(200), "invalid ")
    local ok, err = pcall(lg.data.idx, dir .. "/nothing.idx")
    assert.matches("nothing.idx: No such file or directory", err, 1, true)
  end)
end)

describe("data.fashion_mnist", function()
  local want = dofile(root .. "/tests/fixtures/fashion_mnist_expected.lua")
  local d = lg.data.fashion_mnist()

  it("reads Debian's files: uint8 images, int32 labels as 1-based class indices", function()
    for _, part in ipairs({ "train", "test" }) do
      local w, images, labels = want[part], d[part .. "_images"], d[part .. "_labels"]
      assert.are.same(w.dims, images.shape)
      assert.are.equal(lg.uint8, images.dtype)
      assert.are.same({ w.nlabels }, labels.shape)
      assert.are.equal(lg.int32, labels.dtype)
      local l = labels:totable()
      for i, v in ipairs(w.first_labels) do assert.are.equal(v + 1, l[i], part .. " label " .. i) end
      assert.are.equal(w.last_label + 1, l[#l])
      local counts = {}
      for _, v in ipairs(l) do counts[v] = (counts[v] or 0) + 1 end
      assert.are.same(w.counts, counts)
      assert.are.same(w.first_image_row14, images[1][14]:totable())
      assert.are.equal(w.first_image_sum, images[1]:sum():item())
      assert.are.equal(w.last_image_sum, images[w.dims[1]]:sum():item())
      assert.are.equal(w.total_sum, images:cast(lg.int64):sum():item())
    end
    assert.are.equal(10, d.train_labels[1]:item()) -- the file's 9 (ankle boot), 1-based
  end)

  it("tells how to install the dataset when it is missing", function()
    local ok, err = pcall(lg.data.fashion_mnist, dir .. "/none")
    assert.is_false(ok)
    assert.matches(dir .. "/none/train-images-idx3-ubyte.gz not found: apt-get install dataset-fashion-mnist", err, 1, true)
  end)

  it("batches an epoch of 60000 images with one random draw and no per-batch kernels", function()
    local before = realize.kernels_run
    local n, rows = 0, 0
    for xb, yb in lg.data.batches(d.train_images, d.train_labels, 128) do
      n, rows = n + 1, rows + xb.shape[1]
      assert.are.equal(xb.shape[1], yb.shape[1])
    end
    assert.are.equal(469, n)
    assert.are.equal(60000, rows)
    assert.is_true(realize.kernels_run - before <= 1)
  end)
end)

describe("data.batches", function()
  it("slices in order without shuffle, with drop_last", function()
    local x, y = T.arange(10):reshape(5, 2), T.arange(5)
    local xs, ys = {}, {}
    for xb, yb in lg.data.batches(x, y, 2, { shuffle = false }) do
      xs[#xs + 1], ys[#ys + 1] = xb:totable(), yb:totable()
    end
    assert.are.same({ { { 0, 1 }, { 2, 3 } }, { { 4, 5 }, { 6, 7 } }, { { 8, 9 } } }, xs)
    assert.are.same({ { 0, 1 }, { 2, 3 }, { 4 } }, ys)
    local count = 0
    for xb in lg.data.batches(x, nil, 2, { shuffle = false, drop_last = true }) do
      count = count + 1
      assert.are.equal(2, xb.shape[1])
    end
    assert.are.equal(2, count)
  end)

  it("shuffles x and y alike, a new permutation each epoch, the same one after the same seed", function()
    local n = 1000
    local y = T.arange(n)
    local x = (y * 3):reshape(n, 1):cast(lg.int16)
    local function epoch()
      local order = {}
      for xb, yb in lg.data.batches(x, y, 64) do
        local xv, yv = flat(xb:totable()), yb:totable()
        for i, v in ipairs(yv) do
          assert.are.equal(3 * v, xv[i])
          order[#order + 1] = v
        end
      end
      return order
    end
    lg.manual_seed(5)
    local a, b = epoch(), epoch()
    lg.manual_seed(5)
    local c = epoch()
    assert.are.same(a, c)
    assert.are_not.same(a, b)
    local sorted = { table.unpack(a) }
    table.sort(sorted)
    for i = 1, n do assert.are.equal(i - 1, sorted[i]) end
    local moved = 0
    for i = 1, n do moved = moved + (a[i] ~= i - 1 and 1 or 0) end
    assert.is_true(moved > n * 0.9)
  end)

  it("refuses bad arguments", function()
    assert.error_matches(function() lg.data.batches(T.zeros(4, 2), T.zeros(3), 2) end,
      "batches: y must be a Tensor with the 4 rows of x (4,2), got (3)", 1, true)
    assert.error_matches(function() lg.data.batches(T.zeros(4), nil, 0) end, "batches: batch_size is 0, expected an integer >= 1", 1, true)
    assert.error_matches(function() lg.data.batches({}, nil, 2) end, "batches: x must be a Tensor of at least one axis", 1, true)
  end)
end)
