-- Convolution as tinygrad builds it, for the optimizer's specs and benchmark: pad, _pool's
-- repeat/shrink/reshape windows, expand, permute and sum; and its two backward-style reductions.
local M = {}

-- tinygrad's _pool for stride 1 and dilation 1: (..., H, W) -> (..., OH, OW, KH, KW)
function M.pool(x, k)
  local nd, nk = x.ndim, #k
  local noop, ins = {}, {}
  for i = 1, nd - nk do noop[i] = x.shape[i] end
  for j = 1, nk do ins[j] = x.shape[nd - nk + j] end
  local function with(t) -- noop dims, then t
    local out = { table.unpack(noop) }
    for _, v in ipairs(t) do out[#out + 1] = v end
    return out
  end
  -- repeat each spatial axis e times, so that k windows of i + 1 fit without padding
  local rs, ex, flat, cut, win, cut2, perm = {}, {}, {}, {}, {}, {}, {}
  for j = 1, nk do
    local i, kk = ins[j], k[j]
    local e = (kk * (i + 1) + i - 1) // i
    rs[#rs + 1], rs[#rs + 2] = 1, i
    ex[#ex + 1], ex[#ex + 2] = e, i
    flat[#flat + 1] = e * i
    cut[#noop + j] = { 1, kk * (i + 1) }
    win[#win + 1], win[#win + 2] = kk, i + 1
    cut2[#noop + 2 * j - 1], cut2[#noop + 2 * j] = { 1, kk }, { 1, i - kk + 1 }
  end
  x = x:reshape(with(rs)):expand(with(ex)):reshape(with(flat))
  x = x:shrink(cut):reshape(with(win)):shrink(cut2)
  for i = 1, #noop do perm[i] = i end
  for j = 1, nk do perm[#perm + 1] = #noop + 2 * j end
  for j = 1, nk do perm[#perm + 1] = #noop + 2 * j - 1 end
  return x:permute(perm)
end

-- conv2d as tinygrad's (groups 1, stride 1): x (bs, cin, h, w), w (cout, cin, kh, kw)
function M.conv2d(x, w, pad)
  local bs, cin, cout, kh, kw = x.shape[1], x.shape[2], w.shape[1], w.shape[3], w.shape[4]
  local p = M.pool(x:pad({ { 0, 0 }, { 0, 0 }, { pad, pad }, { pad, pad } }), { kh, kw }) -- (bs, cin, oh, ow, kh, kw)
  local oh, ow = p.shape[3], p.shape[4]
  p = p:reshape(bs, 1, cin, 1, oh, ow, kh, kw):expand(bs, 1, cin, cout, oh, ow, kh, kw):permute(1, 2, 4, 5, 6, 3, 7, 8)
  local r = (p * w:reshape(1, 1, cout, 1, 1, cin, kh, kw)):sum({ 6, 7, 8 }, true)
  return r:reshape(bs, cout, oh, ow)
end

-- the weight gradient: dw[co, ci, kh, kw] = sum over n, oh, ow of g[n, co, oh, ow] * window
function M.conv2d_dw(x, g, k, pad)
  local bs, cin, cout = x.shape[1], x.shape[2], g.shape[2]
  local p = M.pool(x:pad({ { 0, 0 }, { 0, 0 }, { pad, pad }, { pad, pad } }), { k, k }) -- (bs, cin, oh, ow, k, k)
  local oh, ow = p.shape[3], p.shape[4]
  p = p:reshape(bs, 1, cin, oh, ow, k, k):expand(bs, cout, cin, oh, ow, k, k)
  local gg = g:reshape(bs, cout, 1, oh, ow, 1, 1):expand(bs, cout, cin, oh, ow, k, k)
  return (p * gg):sum({ 1, 4, 5 }):reshape(cout, cin, k, k)
end

-- the input gradient: a convolution of g with the flipped, transposed weights
function M.conv2d_dx(g, w, pad)
  local wt = w:flip(3, 4):permute(2, 1, 3, 4)
  return M.conv2d(g, wt, w.shape[3] - 1 - pad)
end

return M
