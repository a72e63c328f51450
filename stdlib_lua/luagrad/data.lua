-- luagrad.data: datasets (lg.data).
--   idx(path) -> Tensor: an IDX file (MNIST's format), gzip-compressed or not, read in C.
--   fashion_mnist([dir]) -> {train_images, train_labels, test_images, test_labels}: images
--     (N,28,28) uint8, labels (N) int32 holding 1-BASED class indices (1..10: the file's 0..9
--     plus one, as Lua indexes), from Debian's dataset-fashion-mnist by default.
--   batches(x, y, batch_size [, {shuffle = true, drop_last = false}]) -> iterator of xb, yb:
--     batches of rows along the first axis, each copied (in C) into a buffer of its own, so that
--     every training step has the same graph. With shuffle, each call draws a new permutation
--     from the seeded generator (lg.manual_seed) and the batches take the rows in that order.
local core = require "luagrad.core"
local Tensor = require "luagrad.tensor"

local M = {}
M.fashion_mnist_dir = "/usr/share/datasets/fashion-mnist"

local function call(f, ...)
  local res = table.pack(pcall(f, ...))
  if not res[1] then error(res[2], 3) end
  return table.unpack(res, 2, res.n)
end

function M.idx(path)
  if type(path) ~= "string" then error(("data.idx: path is a %s, expected a string"):format(type(path)), 2) end
  local node, shape = call(core.idx_load, path)
  return Tensor.wrap(node):reshape(shape)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

function M.fashion_mnist(dir)
  dir = dir or M.fashion_mnist_dir
  local function file(name)
    for _, p in ipairs({ dir .. "/" .. name .. ".gz", dir .. "/" .. name }) do
      if exists(p) then return p end
    end
    error(("fashion_mnist: %s/%s.gz not found: apt-get install dataset-fashion-mnist, or pass the folder that holds "
      .. "the four IDX files"):format(dir, name), 3)
  end
  local out = {}
  for _, part in ipairs({ { "train", "train" }, { "test", "t10k" } }) do
    local images = M.idx(file(part[2] .. "-images-idx3-ubyte"))
    local labels = M.idx(file(part[2] .. "-labels-idx1-ubyte"))
    local n = images.shape[1]
    if images.ndim ~= 3 or labels.ndim ~= 1 or labels.shape[1] ~= n then
      error(("fashion_mnist: %s images %s and labels %s do not match"):format(part[1], Tensor.shape_str(images.shape),
        Tensor.shape_str(labels.shape)), 2)
    end
    out[part[1] .. "_images"] = images
    out[part[1] .. "_labels"] = (labels:cast(Tensor.default_int) + 1):realize()
  end
  return out
end

-- the BUFFER node of t's values, in row-major order
local function buffer_of(t)
  t:realize()
  return t.uop.op == "RESHAPE" and t.uop.src[1] or t.uop
end

-- a random permutation of 1..n (Fisher-Yates over float64 draws of the seeded generator)
local function permutation(n)
  local u = n > 0 and Tensor.rand(n, { dtype = core.dtypes.float64 }):totable() or {}
  local p = {}
  for i = 1, n do p[i] = i end
  for i = n, 2, -1 do
    local j = math.floor(u[i] * i) + 1
    p[i], p[j] = p[j], p[i]
  end
  return p
end

-- the rows of t in the order perm, gathered in one pass
-- the rows idx[1], idx[2], ... of t (1-based), copied into a buffer of their own
local function gather(t, idx)
  local shape = { #idx, table.unpack(t.shape, 2) }
  local row = t:numel() // math.max(t.shape[1], 1)
  if row == 0 then return Tensor.zeros(shape, { dtype = t.dtype }) end
  return Tensor.wrap(core.gather_rows(buffer_of(t), idx, row)):reshape(shape)
end

function M.batches(x, y, batch_size, opts)
  opts = opts or {}
  if not Tensor.is_tensor(x) or x.ndim < 1 then error("batches: x must be a Tensor of at least one axis", 2) end
  local n = x.shape[1]
  if y ~= nil and (not Tensor.is_tensor(y) or y.ndim < 1 or y.shape[1] ~= n) then
    error(("batches: y must be a Tensor with the %d rows of x %s, got %s"):format(n, Tensor.shape_str(x.shape),
      Tensor.is_tensor(y) and Tensor.shape_str(y.shape) or "a " .. type(y)), 2)
  end
  if math.type(batch_size) ~= "integer" or batch_size < 1 then
    error(("batches: batch_size is %s, expected an integer >= 1"):format(tostring(batch_size)), 2)
  end
  local perm = opts.shuffle ~= false and permutation(n) or nil
  local stop = opts.drop_last and n - n % batch_size or n
  local at = 0
  -- each batch is a buffer of its own (not a view at an offset of x): every step then has the
  -- same graph, and its compiled kernels are reused
  return function()
    if at >= stop then return nil end
    local idx = {}
    for i = at + 1, math.min(at + batch_size, stop) do idx[#idx + 1] = perm and perm[i] or i end
    at = at + #idx
    return gather(x, idx), y and gather(y, idx)
  end
end

return M
