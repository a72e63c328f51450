-- luagrad.help: one-line documentation of the API (help(x), lg.help) and the completion the
-- luagrad REPL uses for its Tab key (complete(word)).
--
-- DOCS below holds a line per documented name, written relative to the module table: `Tensor.sum`
-- is lg.Tensor.sum, `uop.var` is lg.uop.var, `lg` is the module. help(x) finds x by identity
-- among the values these names lead to; a value that is not one of them is described by its
-- class (a Tensor, a UOp, ...), a function by where it is defined.
--
-- Completion works on the word before the cursor: a global name, `a.b.c` (fields) or `a.b:c`
-- (methods: only names whose value is callable). The names of a value are its own string keys
-- (tables), then those reachable through its metatable: an `__index` table is followed as the
-- value itself is (its own metatable too); for an `__index` function, the metatable's keys and
-- the tables that the function holds as upvalues (Tensor's `__index` reads `fields` and `Tensor`,
-- UOp's C `__index` its field names and methods) stand for what it can return. Names starting
-- with `__` are left out unless the word being completed starts with `_`, and so are keywords
-- after `.` and `:` (t["repeat"] cannot be written t.repeat). Walking `a.b` indexes the values
-- as Lua does (so __index functions run, inside pcall); nothing else is evaluated.
local M = {}

local DOCS = [==[
lg                    require "luagrad": lazy tensors (lg.Tensor), the UOp graph (lg.uop), rules (lg.pattern, lg.rules, lg.graph_rewrite)
help                  help([x]): print one line of documentation for x (a function, a value, or a name like "sum"); help() shows how to get around
grad                  lg.grad(out, {inputs...} [, grad]) -> {Tensor}: the gradients of out with respect to the inputs, lazy, without touching .grad
no_grad               lg.no_grad(fn, ...) -> fn's results: run fn with gradient tracking off; tensors made or assigned inside carry no gradient
autograd              lg.autograd: reverse-mode autodiff (t:backward(), t.requires_grad, t.grad); rules from rewrite_rules/gradient.lua
autograd.grad         lg.autograd.grad(out, {inputs...} [, grad]): the same as lg.grad
autograd.no_grad      lg.autograd.no_grad(fn, ...): the same as lg.no_grad
autograd.rules        lg.autograd.rules: the gradient rules, op name -> function(g, out, src...) -> gradient per source
autograd.grads        lg.autograd.grads() -> {tensor -> grad}: every tensor that has a .grad, in a new table
autograd.reload       lg.autograd.reload(): read gradient.lua from the rules path again
jit                   lg.jit(fn) -> function: fn's results; from the fourth call with the same shapes, replays fn's kernels without running fn (a training step; see luagrad/jit.lua)
manual_seed           lg.manual_seed(n): seed the counter-based random numbers (rand, randn, randint) for reproducible results
promote               lg.promote(dtype_a, dtype_b) -> dtype: the dtype two operands meet at (PyTorch's promotion)
graph_rewrite         lg.graph_rewrite(node, rules [, opts]) -> node: rewrite a UOp graph to a fixed point; rules: a pass name ("symbolic") or a RuleSet; opts: mode, ctx, budget, stats
dtypes                lg.dtypes: every dtype by name (also lg.float32, lg.int32, ...); tostring(dtype) is its name
ops                   lg.ops: the UOp op names
core                  lg.core: the C engine module (luagrad.core) under the Lua API
DType                 the type of tensor elements (lg.float32, lg.int32, ...): fields name, itemsize, kind ("float", "int", "uint", "bool")
Pattern               a pattern of the rule DSL (lg.pattern) to match graphs; a rule pairs one with a result: {pattern, result [, name =]}
RuleSet               compiled rules for lg.graph_rewrite (from lg.rules.compile, lg.rules.pass)
UOp                   lg.UOp: an immutable node of the graph (fields op, dtype, src, arg, vmin, vmax, shape, ndim, numel); arithmetic operators build new nodes
UOp.simplify          u:simplify() -> UOp: the "symbolic" rules to a fixed point (lg.graph_rewrite(u, "symbolic"))
UOp.replace           u:replace{op =, dtype =, src =, arg =} -> UOp: the same node with the given fields changed
UOp.fold              u:fold() -> UOp or nil: the node's constant value when all its sources are constants
UOp.verify            u:verify() -> u: check the graph against the op specs; errors name the bad node
UOp.format            u:format() -> string: the graph, one node per line (what print(u) shows)
UOp.size              u:size() -> integer: the number of nodes reachable from u
UOp.bounds            u:bounds() -> min, max: the range of an integer node's value (nothing when unknown)
UOp.toposort          u:toposort() -> {UOp}: every node reachable from u, sources before users
UOp.lt                a:lt(b) -> UOp: a < b, a bool node (numbers become constants)
UOp.gt                a:gt(b) -> UOp: a > b, a bool node
UOp.eq                a:eq(b) -> UOp: a == b, a bool node
UOp.ne                a:ne(b) -> UOp: a ~= b, a bool node
UOp.max               a:max(b) -> UOp: the larger of a and b
UOp.where             c:where(a, b) -> UOp: a where c is true, else b
UOp.cast              u:cast(dtype) -> UOp: the value converted to dtype
UOp.bitcast           u:bitcast(dtype) -> UOp: the same bits read as dtype
UOp.sqrt              u:sqrt() -> UOp: square root
UOp.exp2              u:exp2() -> UOp: 2^u
UOp.log2              u:log2() -> UOp: base-2 logarithm
UOp.sin               u:sin() -> UOp: sine
UOp.reciprocal        u:reciprocal() -> UOp: 1/u
UOp.trunc             u:trunc() -> UOp: rounded toward zero
uop                   lg.uop: make UOp nodes (new, const, var)
uop.new               lg.uop.new(op, dtype, {src, ...} [, arg]) -> UOp: a node of any op
uop.const             lg.uop.const(dtype, value) -> UOp: a CONST node
uop.var               lg.uop.var(name, min, max [, dtype]) -> UOp: a DEFINE_VAR (int32 unless dtype) with bounds [min, max]
pattern               lg.pattern: the rule DSL; patterns combine with operators (x + 0) and match UOp graphs
pattern.var           P.var([name [, dtypes]]) -> Pattern: any node, captured when named
pattern.cvar          P.cvar([name [, dtypes]]) -> Pattern: a CONST node, captured when named
pattern.const         P.const(value [, dtypes]) -> Pattern: a CONST equal to value
pattern.op            P.op(ops, {src =, each =, dtype =, arg =, name =, pred =}) -> Pattern: a node of one of ops
pattern.any           P.any(p1, p2, ...) -> Pattern: the first of the alternatives that matches
pattern.native        P.native(name) -> Pattern: a result computed in C ("fold", "bounds", "divmod")
rules                 lg.rules: rule files on a search path, named passes, compiling rules
rules.compile         lg.rules.compile({{pattern, result [, name =]}, ...} [, name]) -> RuleSet: rules ready for graph_rewrite
rules.pass            lg.rules.pass(name) -> RuleSet: a named pass, built from its rule files and cached
rules.load            lg.rules.load(name) -> {rule}: the rules in <name>.lua on the rules path, read afresh
rules.path            lg.rules.path([dirs]) -> {dir}: the directories searched for rule files; dirs sets the user's part
rules.define          lg.rules.define(name, {file, ...}): a pass made of several rule files, in order
rules.add             lg.rules.add(pass, rule [, {first = true}]): one more rule for a pass, after (or before) its files' rules
rules.reload          lg.rules.reload([name]): re-read the rule files of cached passes (all, or those using name)
rules.graph_rewrite   lg.rules.graph_rewrite(node, rules [, opts]) -> node: the same as lg.graph_rewrite
state                 lg.state: weights on disk (safetensors files) and state dicts of tables of layers
state.load            lg.state.load(path) -> {name = Tensor}, {metadata}: a safetensors file; tensors view the file's mapping (no copy where aligned)
state.save            lg.state.save({name = Tensor}, path [, {key = string}]): a safetensors file (keys sorted, data packed), replaced atomically
state.state_dict      lg.state.state_dict(model) -> {name = Tensor}: the tensors of a table of layers ("layers.1.weight"; keys starting with _ skipped)
state.load_state_dict lg.state.load_state_dict(model, sd [, {strict = true}]) -> missing, unexpected: assign sd's tensors to the model's by name
data                  lg.data: datasets: IDX files, Fashion-MNIST, shuffled batches
data.idx              lg.data.idx(path) -> Tensor: an IDX file (MNIST's format), gzip-compressed or not
data.fashion_mnist    lg.data.fashion_mnist([dir]) -> {train_images, train_labels, test_images, test_labels}: uint8 (N,28,28) images, int32 labels 1..10 (1-based)
data.fashion_mnist_dir  lg.data.fashion_mnist_dir: where fashion_mnist looks by default (Debian's dataset-fashion-mnist)
data.batches          lg.data.batches(x, y, size [, {shuffle = true, drop_last = false}]) -> iterator of xb, yb: batches of rows (each its own buffer), reshuffled per call
Tensor                lg.Tensor(data [, {dtype =, device =, requires_grad =}]): a lazy tensor from a number, a nested table or a tensor; fields shape, dtype, requires_grad, grad
Tensor.new            Tensor.new(data [, opts]) -> Tensor: what lg.Tensor(data, opts) calls
Tensor.zeros          Tensor.zeros(shape... [, opts]) -> Tensor: zeros (float32 unless opts.dtype); a shape is varargs or a table
Tensor.ones           Tensor.ones(shape... [, opts]) -> Tensor: ones (float32 unless opts.dtype)
Tensor.empty          Tensor.empty(shape... [, opts]) -> Tensor: a tensor whose values are not set
Tensor.full           Tensor.full(shape, value [, opts]) -> Tensor: every element equal to value
Tensor.arange         Tensor.arange(stop) or (start, stop [, step]) -> Tensor: start, start+step, ... below stop (arange(3) is 0,1,2)
Tensor.eye            Tensor.eye(n [, m] [, opts]) -> Tensor: the n x m (n x n) identity matrix
Tensor.rand           Tensor.rand(shape...) -> Tensor: uniform random numbers in [0, 1)
Tensor.randn          Tensor.randn(shape...) -> Tensor: standard normal random numbers
Tensor.randint        Tensor.randint([lo,] hi, shape...) -> Tensor: random integers in [lo, hi) (lo 0)
Tensor.zeros_like     Tensor.zeros_like(t [, opts]) -> Tensor: zeros of t's shape and dtype
Tensor.ones_like      Tensor.ones_like(t [, opts]) -> Tensor: ones of t's shape and dtype
Tensor.full_like      Tensor.full_like(t, value [, opts]) -> Tensor: value in t's shape and dtype
Tensor.empty_like     Tensor.empty_like(t [, opts]) -> Tensor: a tensor of t's shape and dtype whose values are not set
Tensor.rand_like      Tensor.rand_like(t [, opts]) -> Tensor: uniform random numbers in t's shape
Tensor.randn_like     Tensor.randn_like(t [, opts]) -> Tensor: standard normal random numbers in t's shape
Tensor.manual_seed    Tensor.manual_seed(n): the same as lg.manual_seed(n)
Tensor.cat            Tensor.cat({t, ...} [, axis]) or a:cat(b, ... [, axis]) -> Tensor: tensors joined along an existing axis (1)
Tensor.stack          Tensor.stack({t, ...} [, axis]) or a:stack(b, ... [, axis]) -> Tensor: tensors joined along a new axis (1)
Tensor.wrap           Tensor.wrap(uop) -> Tensor: a tensor over a node of the tensor graph (internal)
Tensor.is_tensor      Tensor.is_tensor(x) -> boolean: whether x is a Tensor
Tensor.shape_str      Tensor.shape_str(shape) -> string: a shape as "(2,3)"
Tensor.axis           Tensor.axis(axis, ndim, what) -> integer: a 1-based or negative axis as a 0-based one; errors name `what`
Tensor.default_float  Tensor.default_float: the dtype of float data and of float results of integer tensors (float32)
Tensor.default_int    Tensor.default_int: the dtype of integer data (int32)
Tensor.raise          Tensor.raise(fmt, ...): an error at the caller's line outside the tensor files (internal)
Tensor.shape_args     Tensor.shape_args(...) -> shape, opts: a shape from varargs or a table, and an options table (internal)
Tensor.check_dtype    Tensor.check_dtype(what, d) -> DType|nil: a dtype option (a DType or its name); errors name `what` (internal)
Tensor.view_of        Tensor.view_of(t, parent, op, arg) -> t: t becomes a view of parent through a movement step (internal)
Tensor.write          Tensor.write(t, new): t takes the value new, written through to what t is a view of (internal)
Tensor.func           Tensor.func(name, params, value, inputs...) -> Tensor: value as the composite op name, whose gradient is Tensor.func_grads[name] (internal)
Tensor.func_grads     Tensor.func_grads[name] = function(g, out, params, inputs...) -> gradients of the inputs (internal)
Tensor.infer_dtype    Tensor.infer_dtype(values) -> DType: the dtype of Lua values, as lg.Tensor picks it (internal)
Tensor.from_values    Tensor.from_values(values, shape, dtype [, device]) -> Tensor: a realized tensor of flat values (internal)
Tensor.iota           Tensor.iota(n) -> Tensor: 0, 1, ..., n-1 as int32, with no buffer (internal)
Tensor.result_dtype   Tensor.result_dtype(a, b) -> DType: the dtype two operands (tensors or numbers) meet at (internal)
Tensor.broadcast_shape  Tensor.broadcast_shape(what, shape_a, shape_b) -> shape: numpy broadcasting; errors name `what` (internal)
Tensor.ew             Tensor.ew(what, op, out_dtype, dtype, ...) -> Tensor: an elementwise op over broadcast operands (internal)
Tensor.reduce_axes    Tensor.reduce_axes(t, axis, what) -> {axis}: sorted 0-based axes of an axis argument (internal)
Tensor.reduce_prim    Tensor.reduce_prim(op, t, axes, keepdim) -> Tensor: a REDUCE_AXIS over 0-based axes (internal)
Tensor.getitem        Tensor.getitem(t, key) -> Tensor: t[i] (row i) and t[{{1, 3}, {}, 2}] (ranges, torch7 style)
Tensor.setitem        Tensor.setitem(t, key, value): t[key] = value, writing through views
Tensor.numel          t:numel() -> integer: the number of elements
Tensor.shape_numel    Tensor.shape_numel(shape) -> integer: the element count of a shape table (internal)
Tensor.realize        t:realize() -> t: compile and run the kernels that compute t, now
Tensor.realize_all    Tensor.realize_all(list) -> list: realize the tensors together, in one schedule (shared work runs once)
Tensor.assign         t:assign(x) -> t: t takes the value of x (cast to t's dtype, broadcast to t's shape)
Tensor.totable        t:totable() -> table: the values as nested Lua tables (a number for a 0-d tensor)
Tensor.item           t:item() -> number: the value of a one-element tensor
Tensor.backward       t:backward([grad]): add the gradients of t to .grad of every tensor with requires_grad it depends on (grad: needed unless t has one element)
Tensor.detach         t:detach() -> Tensor: the same value, through which no gradient flows back
Tensor.add_field      Tensor.add_field(name, get [, set]): a field t.name read by get(t), written by set(t, v) (internal)
Tensor.track_made     Tensor.track_made(set) -> set: collect the tensors made or assigned from now on (lg.no_grad; internal)
Tensor.random_keys    Tensor.random_keys(c) -> k1, k2: the keys of the random generator's draw number c (lg.jit; internal)
Tensor.random_counter Tensor.random_counter([c]) -> the number of the generator's next draw, set to c first if given (lg.jit; internal)
Tensor.on_draw        Tensor.on_draw(fn) -> the previous fn: fn(keys, c) is told of every random draw (lg.jit; internal)
Tensor.set_on_write   Tensor.set_on_write(fn): fn(t, node) is told of every write to t, with the node t held before (lg.jit; internal)
Tensor.set_node       Tensor.set_node(t, u): t takes the node u, seen by its views (realize, lg.jit; internal)
Tensor.contiguous     t:contiguous() -> Tensor: the values in a buffer of their own, in row-major order
Tensor.add            t:add(x) -> Tensor: t + x (broadcast; x a tensor or a number)
Tensor.sub            t:sub(x) -> Tensor: t - x
Tensor.mul            t:mul(x) -> Tensor: t * x
Tensor.div            t:div(x) -> Tensor: t / x, true division (integers give floats)
Tensor.idiv           t:idiv(x) -> Tensor: t // x, floor division
Tensor.mod            t:mod(x) -> Tensor: t % x
Tensor.lshift         t:lshift(x) -> Tensor: t << x, for integers
Tensor.rshift         t:rshift(x) -> Tensor: t >> x, for integers
Tensor.pow            t:pow(x) -> Tensor: t ^ x
Tensor.neg            t:neg() -> Tensor: -t
Tensor.reciprocal     t:reciprocal() -> Tensor: 1 / t
Tensor.exp            t:exp() -> Tensor: e^t
Tensor.log            t:log() -> Tensor: natural logarithm
Tensor.exp2           t:exp2() -> Tensor: 2^t
Tensor.log2           t:log2() -> Tensor: base-2 logarithm
Tensor.sqrt           t:sqrt() -> Tensor: square root
Tensor.rsqrt          t:rsqrt() -> Tensor: 1 / sqrt(t)
Tensor.sin            t:sin() -> Tensor: sine
Tensor.cos            t:cos() -> Tensor: cosine
Tensor.tan            t:tan() -> Tensor: tangent
Tensor.abs            t:abs() -> Tensor: absolute value
Tensor.sign           t:sign() -> Tensor: -1, 0 or 1
Tensor.floor          t:floor() -> Tensor: rounded down
Tensor.ceil           t:ceil() -> Tensor: rounded up
Tensor.round          t:round() -> Tensor: rounded to the nearest, halves to even
Tensor.trunc          t:trunc() -> Tensor: rounded toward zero
Tensor.erf            t:erf() -> Tensor: the error function
Tensor.relu           t:relu() -> Tensor: max(t, 0)
Tensor.sigmoid        t:sigmoid() -> Tensor: 1 / (1 + e^-t)
Tensor.tanh           t:tanh() -> Tensor: hyperbolic tangent
Tensor.gelu           t:gelu() -> Tensor: GELU (tanh approximation)
Tensor.silu           t:silu() -> Tensor: t * sigmoid(t)
Tensor.maximum        t:maximum(x) -> Tensor: the larger of t and x, elementwise
Tensor.minimum        t:minimum(x) -> Tensor: the smaller of t and x, elementwise
Tensor.clip           t:clip(lo, hi) -> Tensor: t limited to [lo, hi] (either may be nil)
Tensor.clamp          t:clamp(lo, hi) -> Tensor: the same as clip
Tensor.cast           t:cast(dtype) -> Tensor: the values converted to dtype
Tensor.float          t:float() -> Tensor: t:cast(lg.float32)
Tensor.half           t:half() -> Tensor: t:cast(lg.float16)
Tensor.double         t:double() -> Tensor: t:cast(lg.float64)
Tensor.int            t:int() -> Tensor: t:cast(lg.int32)
Tensor.long           t:long() -> Tensor: t:cast(lg.int64)
Tensor.bool           t:bool() -> Tensor: t:cast(lg.bool)
Tensor.lt             t:lt(x) -> Tensor: t < x, a bool tensor
Tensor.le             t:le(x) -> Tensor: t <= x, a bool tensor
Tensor.gt             t:gt(x) -> Tensor: t > x, a bool tensor
Tensor.ge             t:ge(x) -> Tensor: t >= x, a bool tensor
Tensor.eq             t:eq(x) -> Tensor: t == x, a bool tensor
Tensor.ne             t:ne(x) -> Tensor: t ~= x, a bool tensor
Tensor.where          cond:where(a, b) -> Tensor: a where cond is true, else b (broadcast)
Tensor.logical_not    t:logical_not() -> Tensor: not t, a bool tensor
Tensor.logical_and    t:logical_and(x) -> Tensor: t and x, a bool tensor
Tensor.logical_or     t:logical_or(x) -> Tensor: t or x, a bool tensor
Tensor.logical_xor    t:logical_xor(x) -> Tensor: t xor x, a bool tensor
Tensor.bitwise_and    t:bitwise_and(x) -> Tensor: t & x, for integers and bools
Tensor.bitwise_or     t:bitwise_or(x) -> Tensor: t | x, for integers and bools
Tensor.bitwise_xor    t:bitwise_xor(x) -> Tensor: t ~ x, for integers and bools
Tensor.bitwise_not    t:bitwise_not() -> Tensor: ~t, for integers and bools
Tensor.sum            t:sum([axis [, keepdim]]) -> Tensor: the sum over an axis, a table of axes, or everything
Tensor.max            t:max([axis [, keepdim]]) -> Tensor: the largest value over the axes (all when none)
Tensor.min            t:min([axis [, keepdim]]) -> Tensor: the smallest value over the axes
Tensor.mean           t:mean([axis [, keepdim]]) -> Tensor: the mean over the axes
Tensor.prod           t:prod([axis [, keepdim]]) -> Tensor: the product over the axes
Tensor.any            t:any([axis [, keepdim]]) -> Tensor: whether any value is true over the axes
Tensor.all            t:all([axis [, keepdim]]) -> Tensor: whether every value is true over the axes
Tensor.argmax         t:argmax([axis [, keepdim]]) -> Tensor: the 1-based position of the largest value
Tensor.argmin         t:argmin([axis [, keepdim]]) -> Tensor: the 1-based position of the smallest value
Tensor.var            t:var([axis [, keepdim [, correction]]]) -> Tensor: the variance (correction 1 unless given)
Tensor.std            t:std([axis [, keepdim [, correction]]]) -> Tensor: the standard deviation
Tensor.logsumexp      t:logsumexp([axis [, keepdim]]) -> Tensor: log(sum(exp(t))), computed stably
Tensor.reshape        t:reshape(shape...) -> Tensor: the same elements in a new shape; one size may be -1
Tensor.permute        t:permute(axes...) -> Tensor: the axes in a new order (1-based)
Tensor.transpose      t:transpose([a [, b]]) -> Tensor: axes a and b swapped (default the last two)
Tensor.expand         t:expand(shape...) -> Tensor: size-1 axes repeated to the shape (-1 keeps a size)
Tensor.flatten        t:flatten([first [, last]]) -> Tensor: axes first..last merged into one
Tensor.squeeze        t:squeeze([axis]) -> Tensor: size-1 axes (or the one given) removed
Tensor.unsqueeze      t:unsqueeze(axis) -> Tensor: a size-1 axis inserted at axis
Tensor.flip           t:flip(axes...) -> Tensor: the order of elements reversed along the axes
Tensor.pad            t:pad({{before, after}, ...} [, value]) -> Tensor: padded with value (0) per axis (a third argument true, internal, makes it a view)
Tensor.shrink         t:shrink({{first, last}, ...}) -> Tensor: 1-based inclusive ranges per axis ({} keeps an axis)
Tensor.tile           t:tile(reps...) -> Tensor: the tensor repeated reps times along each axis
Tensor.repeat         t["repeat"](t, reps...) -> Tensor: torch's repeat (`repeat` is a Lua keyword: prefer tile)
Tensor.split          t:split(size [, axis]) -> {Tensor}: pieces of size along axis (1)
Tensor.chunk          t:chunk(n [, axis]) -> {Tensor}: n nearly equal pieces along axis (1)
Tensor.gather         t:gather(axis, index) -> Tensor: values at the 1-based positions in index along axis
Tensor.matmul         a:matmul(b) -> Tensor: matrix product, batched and broadcast over leading axes
Tensor.dot            a:dot(b) -> Tensor: dot product (matrix product for 2-d tensors)
Tensor.softmax        t:softmax([axis]) -> Tensor: e^t normalized to sum 1 along axis (the last)
Tensor.log_softmax    t:log_softmax([axis]) -> Tensor: log of softmax, computed stably
Tensor.conv2d         x:conv2d(w [, b] [, {stride, padding, dilation, groups}]) -> Tensor: 2-d convolution, x (N,Cin,H,W), w (Cout,Cin/groups,kh,kw)
Tensor.conv1d         x:conv1d(w [, b] [, {stride, padding, dilation, groups}]) -> Tensor: 1-d convolution, x (N,Cin,L), w (Cout,Cin/groups,k)
Tensor.conv_transpose2d x:conv_transpose2d(w [, b] [, {stride, padding, output_padding, dilation, groups}]) -> Tensor: transposed convolution, w (Cin,Cout/groups,kh,kw)
Tensor.max_pool2d     x:max_pool2d([kernel] [, {stride, padding, dilation}]) -> Tensor: the largest value of each window of the last two axes
Tensor.avg_pool2d     x:avg_pool2d([kernel] [, {stride, padding, dilation, count_include_pad}]) -> Tensor: the mean of each window of the last two axes
Tensor.batchnorm      x:batchnorm(weight, bias, mean, invstd [, axis]) -> Tensor: (x - mean) * weight * invstd + bias along axis (2)
Tensor.layernorm      x:layernorm([axis [, eps]]) -> Tensor: (x - mean) / sqrt(var + eps) over axis (the last) or a table of axes
Tensor.dropout        x:dropout([p]) -> Tensor: while Tensor.training (set it to true; nil by default), zeros with probability p (0.5) and scales the rest by 1/(1-p)
Tensor.one_hot        idx:one_hot([num_classes]) -> Tensor: a new last axis, 1 at each 1-based class (int32)
Tensor.embedding      idx:embedding(weight) -> Tensor: the rows of weight (num, dim) at the 1-based indices
Tensor.linear         x:linear(w [, b]) -> Tensor: x @ w^T + b, w (out, in) as PyTorch
Tensor.scaled_dot_product_attention q:scaled_dot_product_attention(k, v [, mask] [, {is_causal, dropout_p}]) -> Tensor: softmax(q k^T / sqrt(E) + mask) v
Tensor.cross_entropy  logits:cross_entropy(target [, {reduction, label_smoothing}]) -> Tensor: loss of 1-based class indices or class probabilities
Tensor.binary_cross_entropy p:binary_cross_entropy(target [, {reduction, weight}]) -> Tensor: -(y log p + (1-y) log(1-p))
Tensor.binary_cross_entropy_with_logits x:binary_cross_entropy_with_logits(target [, {reduction, weight, pos_weight}]) -> Tensor: binary_cross_entropy of sigmoid(x), stably
Tensor.mse            x:mse(target [, {reduction}]) -> Tensor: mean squared error
nn                    lg.nn: layers (Linear, Conv2d, BatchNorm2d, ...), called as functions; train with lg.Tensor.training = true
nn.parameters         lg.nn.parameters(model) -> {Tensor}: the tensors with requires_grad in a table of layers, in key order
nn.state_dict         lg.nn.state_dict(model) -> {name = Tensor}: every tensor of a table of layers (buffers too), keys joined with "."
nn.take_pending       lg.nn.take_pending() -> {Tensor}: buffers updated lazily (running statistics) since the last call; optimizers realize them
nn.Linear             lg.nn.Linear(in, out [, {bias}]): y = x @ weight^T + bias, weight (out, in)
nn.Conv2d             lg.nn.Conv2d(in, out, kernel [, {stride, padding, dilation, groups, bias}]): 2-d convolution layer
nn.ConvTranspose2d    lg.nn.ConvTranspose2d(in, out, kernel [, {stride, padding, output_padding, dilation, groups, bias}]): transposed convolution layer
nn.BatchNorm2d        lg.nn.BatchNorm2d(C [, {eps, momentum, affine, track_running_stats}]): batch norm; batch statistics while Tensor.training
nn.LayerNorm          lg.nn.LayerNorm(shape [, {eps, elementwise_affine, bias}]): normalizes over the last axes
nn.GroupNorm          lg.nn.GroupNorm(groups, C [, {eps, affine}]): normalizes over groups of channels
nn.Embedding          lg.nn.Embedding(num, dim): rows of a (num, dim) weight at 1-based indices
nn.Dropout            lg.nn.Dropout([p]): x:dropout(p), active while Tensor.training
nn.Sequential         lg.nn.Sequential(layer, ...): the layers (or functions) applied in turn
optim                 lg.optim: SGD, Adam, AdamW; opt:zero_grad(), opt:step() (one realize per step)
optim.SGD             lg.optim.SGD(params [, {lr, momentum, dampening, nesterov, weight_decay}]): stochastic gradient descent
optim.Adam            lg.optim.Adam(params [, {lr, betas, eps, weight_decay}]): Adam
optim.AdamW           lg.optim.AdamW(params [, {lr, betas, eps, weight_decay}]): Adam with decoupled weight decay (0.01)
]==]

local docs, order = {}, {}
for name, line in DOCS:gmatch("([%w_.]+) +([^\n]+)") do
  docs[name] = line
  order[#order + 1] = name
end
M.docs = docs

local function lg() return require "luagrad" end

-- the value a documented name leads to, or nil
local function resolve(root, name)
  local v = root
  if name == "lg" then return v end
  for part in name:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = rawget(v, part)
  end
  return v
end

-- documented name of every value a name leads to (the first in DOCS order wins)
local function names_by_value(root)
  local byvalue = {}
  for _, name in ipairs(order) do
    local v = resolve(root, name)
    if (type(v) == "table" or type(v) == "function") and not byvalue[v] then byvalue[v] = name end
  end
  return byvalue
end

-- the documented names under a namespace that lead somewhere, as "a b c"
local function members(root, ns)
  local out = {}
  for _, name in ipairs(order) do
    local short = ns == "lg" and name ~= "lg" and name:match("^[%w_]+$")
      or name:match("^" .. ns:gsub("%p", "%%%0") .. "%.([%w_]+)$")
    if short and resolve(root, name) ~= nil then out[#out + 1] = short end
  end
  return table.concat(out, " ")
end

-- the class of a value: the documented name of its metatable or of its __name ("luagrad.UOp")
local function class_of(x, byvalue)
  local mt = debug.getmetatable(x)
  if type(mt) ~= "table" then return nil end
  if byvalue[mt] then return byvalue[mt] end
  local tname = rawget(mt, "__name")
  local short = type(tname) == "string" and tname:match("^luagrad%.([%w_]+)$")
  return short and docs[short] and short or nil
end

local function by_name(root, word)
  if docs[word] then return docs[word] end
  local found = {}
  for _, name in ipairs(order) do
    if name:match("[^.]+$") == word and resolve(root, name) ~= nil then found[#found + 1] = docs[name] end
  end
  return #found > 0 and table.concat(found, "\n") or ("no documentation for '" .. word .. "'")
end

local USAGE = [[
help(x) prints a line about x: help(lg.Tensor.sum), help(t.sum), help(t) (a tensor), help("sum") (by name).
At the luagrad prompt: ?x is help(x); Tab completes names, fields (lg.Te<Tab>) and methods (t:su<Tab>);
:time on / :time off prints how long each input takes; a trailing ; silences a result; _ is the last one.]]

-- M.doc(x) -> string: what help(x) prints
function M.doc(...)
  if select("#", ...) == 0 then return USAGE end
  local x = ...
  if x == nil then return "nil: nothing to document (help(\"sum\") looks a name up)" end
  local root = lg()
  if type(x) == "string" then return by_name(root, x) end
  local byvalue = names_by_value(root)
  local name = byvalue[x]
  if name then
    local line = docs[name]
    local list = type(x) == "table" and members(root, name) or ""
    return list ~= "" and (line .. "\n  members: " .. list) or line
  end
  local class = class_of(x, byvalue)
  if class then return ("a %s: %s"):format(class, docs[class]) end
  if type(x) == "function" then
    local info = debug.getinfo(x, "S")
    if info.what == "C" then return "a C function (no documentation)" end
    return ("a function defined at %s:%d (no documentation)"):format(info.short_src, info.linedefined)
  end
  return ("a %s: %s (no documentation)"):format(type(x), tostring(x))
end

-- help([x]): print M.doc(x)
function M.help(...) print(M.doc(...)) end

-- ---- completion ----------------------------------------------------------------------------

local KEYWORDS = {}
for k in ("and break do else elseif end false for function goto if in local nil not or repeat return then true until while")
  :gmatch("%a+") do KEYWORDS[k] = true end

local function index(v, k)
  local ok, r = pcall(function() return v[k] end)
  return ok and r or nil
end

local function keys_of(t, out)
  for k in next, t do
    if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[k] = true end
  end
end

-- the names v.name can reach (see the top of this file)
local function names_of(v, out, seen)
  if seen[v] then return end
  seen[v] = true
  if type(v) == "table" then keys_of(v, out) end
  local mt = debug.getmetatable(v)
  if type(mt) ~= "table" then return end
  local idx = rawget(mt, "__index")
  if type(idx) == "table" then
    names_of(idx, out, seen)
  elseif type(idx) == "function" then
    keys_of(mt, out)
    for i = 1, math.huge do
      local upname, up = debug.getupvalue(idx, i)
      if not upname then break end
      if type(up) == "table" and upname ~= "_ENV" and up ~= _G then names_of(up, out, seen) end
    end
  end
end

local function callable(f)
  if type(f) == "function" then return true end
  local mt = debug.getmetatable(f)
  return type(mt) == "table" and rawget(mt, "__call") ~= nil
end

-- M.complete(word) -> sorted list of completions of word ("lg.Te" -> {"lg.Tensor"}), each the
-- whole word, as readline wants them
function M.complete(word)
  local path, sep, last = word:match("^(.*)([.:])([%w_]*)$")
  local base, names = _G, {}
  if path then
    if (path .. "."):gsub("[%a_][%w_]*%.", "") ~= "" then return {} end
    for part in path:gmatch("[^.]+") do
      base = index(base, part)
      if base == nil then return {} end
    end
  else
    path, sep, last = "", "", word
    for k in pairs(KEYWORDS) do names[k] = true end
  end
  names_of(base, names, {})
  local out = {}
  for name in pairs(names) do
    if name:sub(1, #last) == last and (last:sub(1, 1) == "_" or name:sub(1, 2) ~= "__")
      and (sep == "" or not KEYWORDS[name]) and (sep ~= ":" or callable(index(base, name))) then
      out[#out + 1] = path .. sep .. name
    end
  end
  table.sort(out)
  return out
end

return M
