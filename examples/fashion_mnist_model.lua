-- The main job's CNN and its input (examples/fashion_mnist.lua; bench/cnn.lua times its steps):
-- two blocks of 3x3 convolution, batch norm, ReLU and 2x2 max pooling, then a linear layer.
local lg = require "luagrad"
local nn, T = lg.nn, lg.Tensor

local M = {}
local MEAN, STD = 0.2860, 0.3530 -- of the training images' pixels in [0, 1]

function M.model()
  return nn.Sequential(
    nn.Conv2d(1, 16, 3, { padding = 1 }), nn.BatchNorm2d(16), T.relu, function(x) return x:max_pool2d(2) end,
    nn.Conv2d(16, 32, 3, { padding = 1 }), nn.BatchNorm2d(32), T.relu, function(x) return x:max_pool2d(2) end,
    function(x) return x:flatten(2) end,
    nn.Linear(32 * 7 * 7, 10))
end

-- images (N, 28, 28) uint8 -> normalized (N, 1, 28, 28) float32
function M.prepare(images)
  local n = images.shape[1]
  return ((images:float() / 255 - MEAN) / STD):reshape(n, 1, 28, 28)
end

return M
