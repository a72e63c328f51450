-- The main job: a small CNN trained on Fashion-MNIST (Debian's dataset-fashion-mnist), evaluated
-- on the 10k test images, saved as safetensors, loaded into a fresh model and evaluated again.
--
--   build/bin/luagrad examples/fashion_mnist.lua [epochs [batch [out.safetensors]]]
--
-- Defaults: 5 epochs, batch 128, Adam with the learning rate decaying linearly to 0; the weights
-- go to fashion_mnist.safetensors in the current folder. For quick checks, EPOCH_IMAGES=n trains
-- on the first n images of each shuffled epoch and TEST_IMAGES=n tests on the first n.
local lg = require "luagrad"
local nn, T = lg.nn, lg.Tensor

local epochs = tonumber(arg and arg[1]) or 5
local batch = tonumber(arg and arg[2]) or 128
local out_path = arg and arg[3] or "fashion_mnist.safetensors"
local epoch_images = tonumber(os.getenv("EPOCH_IMAGES") or "")
local test_images = tonumber(os.getenv("TEST_IMAGES") or "")
local clock = lg.core.clock
local here = (arg and arg[0] or ""):match("^(.*)[/\\]") or "."
local cnn = dofile(here .. "/fashion_mnist_model.lua") -- the model and its input
local model, prepare = cnn.model, cnn.prepare

-- the share of test images (prepared) classified right, in batches of 1000 (eval mode)
local function accuracy(m, images, labels)
  local right = 0
  for xb, yb in lg.data.batches(images, labels, 1000, { shuffle = false }) do
    local pred = lg.no_grad(function() return m(xb):argmax(2) end)
    right = right + pred:eq(yb):sum():item()
  end
  return right / images.shape[1]
end

local function bar(done, total, width)
  local k = math.floor(done / total * width + 0.5)
  return ("[%s%s]"):format(("="):rep(k), (" "):rep(width - k))
end

local t_start = clock()
lg.manual_seed(0)
local data = lg.data.fashion_mnist()
if test_images then
  data.test_images, data.test_labels = data.test_images[{ { 1, test_images } }], data.test_labels[{ { 1, test_images } }]
end
-- the images normalized once, as float32 (N, 1, 28, 28); batches gather their rows
local train_x, train_y = prepare(data.train_images):realize(), data.train_labels
local test_x = prepare(data.test_images):realize()
local n_train = epoch_images and math.min(epoch_images, train_x.shape[1]) or train_x.shape[1]
local steps_per_epoch = math.ceil(n_train / batch)
print(("Fashion-MNIST: %d training images, %d test images; %d epochs of %d steps, batch %d"):format(
  train_x.shape[1], test_x.shape[1], epochs, steps_per_epoch, batch))

local net = model()
local lr0 = 3e-3
local opt = lg.optim.Adam(nn.parameters(net), { lr = lr0 })
-- a training step: loss and the batch's right answers; lg.jit replays its kernels from the fourth
-- call on (a last, smaller batch of an epoch is a call of its own shape)
local train_step = lg.jit(function(xb, yb)
  local logits = net(xb)
  local loss = logits:cross_entropy(yb)
  local hits = logits:detach():argmax(2):eq(yb):sum()
  opt:zero_grad()
  loss:backward()
  opt:step()
  return loss, hits
end)
local total_steps, step = epochs * steps_per_epoch, 0
for epoch = 1, epochs do
  T.training = true
  local t0, seen, loss_sum, right = clock(), 0, 0, 0
  for xb, yb in lg.data.batches(train_x, train_y, batch) do
    if seen >= n_train then break end
    opt.lr = lr0 * (1 - step / total_steps) -- written in place: the replays read it
    local loss, hits = train_step(xb, yb)
    step = step + 1
    local n = xb.shape[1]
    seen, loss_sum, right = seen + n, loss_sum + loss:item() * n, right + hits:item()
    local dt = clock() - t0
    io.write(("\repoch %d/%d %s %5d/%d  loss %.4f  acc %5.1f%%  %6.0f images/s"):format(epoch, epochs,
      bar(seen, n_train, 24), seen, n_train, loss_sum / seen, 100 * right / seen, seen / dt))
    io.flush()
  end
  T.training = nil
  io.write(("  test acc %.2f%%\n"):format(100 * accuracy(net, test_x, data.test_labels)))
end

local acc = accuracy(net, test_x, data.test_labels)
lg.state.save(nn.state_dict(net), out_path)
local again = model()
lg.state.load_state_dict(again, lg.state.load(out_path))
local acc2 = accuracy(again, test_x, data.test_labels)
print(("final test accuracy %.2f%% (reloaded from %s: %.2f%%), wall time %.1f s"):format(100 * acc, out_path,
  100 * acc2, clock() - t_start))
if acc2 ~= acc then error("the reloaded weights give a different accuracy") end
