-- The main job (examples/fashion_mnist.lua, `make demo`) end to end on a few images: it trains,
-- tests, saves the weights as safetensors, and the reloaded model gives the same accuracy.
local D = dofile((os.getenv("LG_ROOT") or ".") .. "/tests/repl/driver.lua")

describe("the main job", function()
  it("trains, tests, saves and reloads (EPOCH_IMAGES=128, TEST_IMAGES=200)", function()
    local weights = os.tmpname()
    local out, err, code = D.run(D.q(D.root .. "/examples/fashion_mnist.lua") .. " 1 64 " .. D.q(weights), "",
      "EPOCH_IMAGES=128 TEST_IMAGES=200")
    os.remove(weights)
    assert.are.equal(0, code, err)
    assert.matches("Fashion-MNIST: 60000 training images, 200 test images; 1 epochs of 2 steps, batch 64", out, 1, true)
    assert.matches("128/128  loss %d+%.%d+  acc +%d+%.%d%%", out)
    local acc, again = out:match("final test accuracy ([%d.]+)%% %(reloaded from .-: ([%d.]+)%%%)")
    assert.is_not_nil(acc, out)
    assert.are.equal(acc, again)
  end)
end)
