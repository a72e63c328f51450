-- Training steps of the main job's CNN (the model and step of examples/fashion_mnist.lua) on
-- Fashion-MNIST, for `make bench` (bench/run.lua runs it as a child process).
--
--   lua5.4 bench/cnn.lua STEPS BATCH WARMUP [synthetic] [eager]
--
-- Runs WARMUP steps (the first compiles the kernels), then times STEPS steps and prints
-- "images/s <value>". A step: forward in training mode, cross-entropy, backward, Adam (the loss is
-- read back each step, as the example does); the images are normalized once before, as in the
-- example and in bench/torch_cnn.py. The step goes through lg.jit, as in the example (from the
-- fourth step on, replays of its kernels); "eager": it runs as it is every time. "synthetic": one
-- batch of random images and labels, every step, instead of the dataset's batches (the same
-- kernels in a step; lg.data works on the CPU device only). The line "steps:" comes before the
-- first step: with DEBUG=2 (and a fresh CACHE_DIR) the compile lines after it are those of the
-- kernels of a training step.
local lg = require "luagrad"
local nn, T = lg.nn, lg.Tensor

local steps, batch, warmup = tonumber(arg[1]) or 20, tonumber(arg[2]) or 128, tonumber(arg[3]) or 3
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
local cnn = dofile(here .. "/../examples/fashion_mnist_model.lua") -- the example's model and input

lg.manual_seed(0)
local batches
local opts = {}
for i = 4, #arg do opts[arg[i]] = true end
if opts.synthetic then
  local xb = cnn.prepare(T.randint(0, 256, { batch, 28, 28 }, { dtype = lg.uint8 })):realize()
  local yb = T.randint(1, 11, { batch }, { dtype = lg.int32 }):realize()
  batches = function() return xb, yb end
else
  local data = lg.data.fashion_mnist()
  local images = cnn.prepare(data.train_images):realize() -- normalized once, as the example does
  local each = lg.data.batches
  local function epoch() return each(images, data.train_labels, batch, { drop_last = true }) end
  local it = epoch()
  batches = function()
    local xb, yb = it()
    if not xb then it = epoch(); xb, yb = it() end
    return xb, yb
  end
end
local net = cnn.model()
local opt = lg.optim.Adam(nn.parameters(net), { lr = 3e-3 })
T.training = true

local function step(xb, yb)
  local loss = net(xb):cross_entropy(yb)
  opt:zero_grad()
  loss:backward()
  opt:step()
  return loss
end
if not opts.eager then step = lg.jit(step) end

print("steps:")
for _ = 1, warmup do step(batches()):item() end
local t0 = lg.core.clock()
for _ = 1, steps do
  local loss = step(batches()):item()
  assert(loss == loss, "the loss is NaN")
end
print(("images/s %.1f"):format(steps * batch / (lg.core.clock() - t0)))
