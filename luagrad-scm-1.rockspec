-- luarocks make luagrad-scm-1.rockspec (Lua 5.4): builds with the Makefile and installs the Lua
-- module (luagrad, luagrad.core), libluagrad.so and the luagrad executable into the tree.
rockspec_format = "3.0"
package = "luagrad"
version = "scm-1"
source = {
  url = "git+https://github.com/luagrad/luagrad.git", -- placeholder until the repository is public
}
description = {
  summary = "A tinygrad-style deep-learning compiler: a C engine with rewrite rules in Lua",
  detailed = [[
Tensor operations build lazy UOp graphs; pattern rules written in Lua rewrite them into fused
kernels that are rendered to C, LLVM IR or CUDA, compiled and run.
]],
}
dependencies = {
  "lua >= 5.4",
}
external_dependencies = {
  XXHASH = { header = "xxhash.h", library = "xxhash" },
  READLINE = { header = "readline/readline.h", library = "readline" },
}
build = {
  type = "make",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    LUA = "$(LUA)",
  },
  install_variables = {
    PREFIX = "$(PREFIX)",
    LIBDIR = "$(LIBDIR)",
    LUADIR = "$(LUADIR)",
    BINDIR = "$(BINDIR)",
  },
}
