-- luagrad.opt: the kernel optimizer. Transformations of a kernel graph (docs/kernel_ir.md) that
-- keep its results and change its loops, and a heuristic that picks them.
--
--   upcast(sink, axis, amount)  an output range r of size n becomes a range of n/amount and
--                               `amount` copies of the body with r := outer*amount + i
--                               (register blocking: after vectorize, copies of the vectors)
--   unroll(sink, axis, amount)  the same for a reduce range: the REDUCE accumulates the sum (max,
--                               product) of the copies
--   pad(sink, axis, multiple)   a range grows to a multiple; gates keep the extra iterations out
--                               of memory and out of the reductions
--   accumulate(sink, axis, n)   like unroll, with an accumulator of its own per copy, combined
--                               after the loop
--   merge(sink, a, b)           two ranges walked as one become one range of their sizes' product
--   swap(sink, a, b)            two ranges of one kind trade axes: their loops trade places
--   vectorize(sink, axis, w)    a range r of size n becomes a range of n/w and w vector lanes
--                               (a RANGE of kind 2): r := outer*w + lane; the renderers make
--                               every value that depends on the lanes a vector of w
--   apply(sink, opts)           a list of {"upcast" | "unroll" | "accumulate" | "merge" | "pad" |
--                               "swap" | "vectorize", x, y}, then the symbolic pass
--   heuristic(sink) -> opts     what optimize applies: a hand-written choice in the manner of
--                               tinygrad's hand_coded_optimizations (luagrad/opt_heuristic.lua)
--   optimize(sink)              apply(sink, heuristic(sink))
--
--   ranges(sink)                the RANGEs by axis: {node =, axis =, kind =, size = (nil when
--                               not a constant)}
--   dependents(root, r)         node -> whether it depends on range r (a REDUCE or END that
--                               closes r does not)
--   simplify(sink)              the symbolic pass
--
-- Axes are the RANGE args' axis numbers: a transform keeps them (an outer range keeps its
-- range's axis; a range upcast or unrolled whole disappears). Upcast and unroll pad a range
-- whose size the amount does not divide. The transformations, ranges, dependents and apply are
-- the engine's (core/opt.c, through core.opt): apply runs the whole list in one call.
local core = require "luagrad.core"
local rules = require "luagrad.rules"

local C = core.opt
local M = {
  LANES = C.LANES, -- the RANGE kind of vector lanes (lg_range_kind in luagrad_enums.h)
  MAX_LANES = C.MAX_LANES,
  ranges = C.ranges,
  dependents = C.dependents,
  upcast = C.upcast,
  unroll = C.unroll,
  accumulate = C.accumulate,
  pad = C.pad,
  merge = C.merge,
  swap = C.swap,
  vectorize = C.vectorize,
  apply = C.apply,
}

-- the symbolic pass (core/symbolic.c splits coefficients around a divisor: the copies' index math
-- `(17*a + b) % 16` becomes `a + b`); apply runs the same pass from C (lg_pass "symbolic")
function M.simplify(sink) return rules.graph_rewrite(sink, "symbolic") end

-- the heuristic: luagrad/opt_heuristic.lua
function M.heuristic(sink) return require("luagrad.opt_heuristic").heuristic(sink) end

function M.optimize(sink) return M.apply(sink, M.heuristic(sink)) end

return M
