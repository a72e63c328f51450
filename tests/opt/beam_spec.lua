-- BEAM search (luagrad.beam) on small kernels: every candidate it keeps computes what a plain-Lua
-- reference computes, a wrong candidate and one that does not compile are dropped, and BEAM=2
-- in a child interpreter (a temporary CACHE_DIR) caches each kernel's winner, which a second run
-- reuses without compiling anything. No timings are asserted.
local lg = require "luagrad"
local beam = require "luagrad.beam"
local opt = require "luagrad.opt"
local schedule = require "luagrad.schedule"
local core = lg.core
local T = lg.Tensor

local lua = os.getenv("LUA") or "lua5.4"

local function kernel_of(t)
  local ks = schedule.schedule({ schedule.base(t.uop) })
  assert.are.equal(1, #ks)
  return ks[1]
end

local function base_buffer(u)
  while u.op ~= "BUFFER" do u = u.src[1] end
  return core.node_buffer(u)
end

-- the job that beam.search needs for kernel k (its output of n elements)
local function job_of(k, n, extra)
  local job = { device = "CPU", name = "beam_test", width = 2, rounds = 2, buffers = { { dtype = k.output.dtype, n = n } } }
  for i, inp in ipairs(k.inputs) do
    local b = base_buffer(inp)
    job.buffers[i + 1] = { dtype = b.dtype, n = #b }
  end
  for key, v in pairs(extra or {}) do job[key] = v end
  return job
end

-- kernel k with `opts`, compiled and run on its real inputs: the output's values
local count = 0
local function run(k, opts, n)
  count = count + 1
  local name = "beam_check" .. count
  local prog = core.program("CPU", core.render("CPU", opt.apply(k.sink, opts), name), name)
  local out = core.buffer("CPU", k.output.dtype, n)
  local args = { out }
  for i, inp in ipairs(k.inputs) do args[i + 1] = base_buffer(inp) end
  prog:launch(args)
  return out:read()
end

local function same_opts(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i][1] ~= b[i][1] or a[i][2] ~= b[i][2] or a[i][3] ~= b[i][3] then return false end
  end
  return true
end

-- Run a Lua chunk in a child interpreter with the environment `env`; its output and success.
local function child(env, chunk)
  local p = assert(io.popen(("env %s %s -e %q 2>&1"):format(env, lua, chunk)))
  local out = p:read("a")
  return out, p:close()
end

describe("BEAM search", function()
  -- x: 4 x 6 floats; the row sums of 2x (an output range of 4, a reduce range of 6)
  local rows, cols = 4, 6
  local xs = {}
  for i = 1, rows * cols do xs[i] = ((i * 37) % 11 - 5) / 4 end
  local x = T(xs):reshape(rows, cols):realize()
  local want = {}
  for r = 1, rows do
    local s = 0
    for c = 1, cols do s = s + 2 * xs[(r - 1) * cols + c] end
    want[r] = s
  end

  it("keeps only candidates that compute the reference", function()
    local k = kernel_of((x * 2):sum(2))
    local r = beam.search(k.sink, job_of(k, rows))
    assert.is_true(r.candidates > 5)
    assert.is_true(#r.kept > 0)
    assert.is_true(r.time > 0 and r.base_time > 0 and r.seconds > 0)
    local found = false
    for _, c in ipairs(r.kept) do
      found = found or same_opts(c.opts, r.opts)
      local got = run(k, c.opts, rows)
      for i = 1, rows do assert.is_near(want[i], got[i], 1e-5) end
    end
    assert.is_true(found or #r.opts == 0, "the winner is a kept candidate or no opts")
  end)

  it("compares integer results exactly", function()
    local n = {}
    for i = 1, 24 do n[i] = i * 7 % 13 - 6 end
    local xi = T(n, { dtype = lg.int32 }):reshape(4, 6):realize()
    local k = kernel_of((xi * 3):sum(2))
    local r = beam.search(k.sink, job_of(k, 4, { rounds = 1 }))
    assert.is_true(#r.kept > 0)
    for _, c in ipairs(r.kept) do
      local got = run(k, c.opts, 4)
      for row = 1, 4 do
        local s = 0
        for col = 1, 6 do s = s + 3 * n[(row - 1) * 6 + col] end
        assert.are.equal(s, got[row])
      end
    end
  end)

  it("drops a candidate with a wrong result and one that does not compile", function()
    local k = kernel_of((x * 2):sum(2))
    local wrong, broken = { "upcast", 0, 2 }, { "unroll", 1, 2 }
    local r = beam.search(k.sink, job_of(k, rows, {
      rounds = 1,
      render = function(s, opts)
        local src = core.render("CPU", s, "beam_test")
        if #opts == 1 and same_opts(opts, { wrong }) then -- every store one more
          src = src:gsub("(data0%[[^%]]+%] = )([^;]+);", "%1(%2) + 1.0f;")
        elseif #opts == 1 and same_opts(opts, { broken }) then
          src = src .. "\n#error injected\n"
        end
        return src
      end,
    }))
    local why = {}
    for _, d in ipairs(r.dropped) do
      if #d.opts == 1 then why[table.concat(d.opts[1], " ")] = d.why end
    end
    assert.matches("^a different result at element 1: ", why["upcast 0 2"])
    assert.matches("does not compile: .*#error injected", why["unroll 1 2"])
    for _, c in ipairs(r.kept) do
      assert.is_false(same_opts(c.opts, { wrong }) or same_opts(c.opts, { broken }))
    end
  end)

  it("refuses a kernel whose sizes are not constants", function()
    local k = kernel_of((x * 2):sum(2))
    local r = opt.ranges(k.sink)[0].node
    local v = core.uop("DEFINE_VAR", lg.int32, {}, { "n", 1, 6 })
    local memo = { [r] = core.uop("RANGE", lg.int32, { v }, r.arg) } -- r of size n, and all above it
    for _, u in ipairs(k.sink:toposort()) do
      if not memo[u] then
        local srcs = {}
        for i, s in ipairs(u.src) do srcs[i] = memo[s] end
        memo[u] = u:replace({ src = srcs })
      end
    end
    assert.has_error(function() beam.search(memo[k.sink], job_of(k, rows)) end,
      "beam: kernel beam_test has a range of a size known at launch")
  end)

  it("caches each kernel's winner under CACHE_DIR and reuses it (BEAM=2, a child)", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. dir))
    local chunk = [[
      local lg = require "luagrad"
      local x = lg.Tensor({ 3, -1, 4, 1, -5, 9, 2, -6, 5, 3, -5, 8, 9, -7, 9, 3 }, { dtype = lg.int32 })
      print("sum", table.concat(((x * 2):reshape(2, 8):sum(2)):totable(), " "))
      print("compiles", lg.core.device_stats("CPU").compiles)
    ]]
    local env = ("CACHE_DIR=%s BEAM=2 DEBUG=2 THREADS=2"):format(dir)
    local out, ok = child(env, chunk)
    assert.is_true(ok, out)
    assert.matches("sum\t14 50\n", out, 1, true)
    assert.matches("%*%*%* beam r_2[_%d]*%s+BEAM=2: %d+ candidates, %d+ rounds, [%d.]+ s; [%d.]+ us", out)
    local p = assert(io.popen("ls " .. dir .. "/beam"))
    local files = p:read("a")
    p:close()
    local path = dir .. "/beam/" .. files:match("^(%x+)\n")
    local f = assert(io.open(path))
    assert.matches("^luagrad beam 1\n", f:read("a"))
    f:close()
    -- the second run reads the winner and compiles nothing: the program is in the disk cache
    local out2, ok2 = child(env, chunk)
    assert.is_true(ok2, out2)
    assert.matches("sum\t14 50\n", out2, 1, true)
    assert.matches("%*%*%* beam r_2[_%d]*%s+cached: ", out2)
    assert.matches("compiles\t0\n", out2, 1, true)
    os.execute("rm -rf " .. dir)
  end)
end)
