# luagrad build. `make` builds into build/, laid out as an install prefix:
#   build/lib/libluagrad.so          engine + Lua bindings + its own Lua state for C hosts
#   build/lib/lua/5.4/luagrad/core.so the Lua module (no liblua: symbols come from the host)
#   build/share/lua/5.4/luagrad      symlink to stdlib_lua/luagrad (rules: luagrad/rules)
#   build/bin/luagrad                the interpreter/REPL with luagrad preloaded
#   build/include/                   public headers
# Variables follow luarocks' make build type: CFLAGS, LIBFLAG, LUA_INCDIR, LIBDIR (C modules),
# LUADIR (Lua modules), BINDIR, PREFIX.

PREFIX     ?= /usr/local
LUA_INCDIR ?= /usr/include/lua5.4
LIBDIR     ?= $(PREFIX)/lib/lua/5.4
LUADIR     ?= $(PREFIX)/share/lua/5.4
BINDIR     ?= $(PREFIX)/bin
SOLIBDIR   ?= $(PREFIX)/lib
INCDIR     ?= $(PREFIX)/include
CC         ?= cc
CFLAGS     ?= -O2 -g
LIBFLAG    ?= -shared
LUA        ?= lua5.4

B := build
WARN := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
ALL_CFLAGS := $(WARN) $(CFLAGS) -pthread -fPIC -D_GNU_SOURCE -Icore
LUA_CFLAGS := -I$(LUA_INCDIR)
ENGINE_LIBS := -lxxhash -lcjson -lz -lm -ldl -pthread
# The LLVM device (devices/llvm) compiles in-process with libLLVM's C API: its headers for those
# objects; the shared library (one for all components) is loaded when the device first opens.
LLVM_CONFIG ?= llvm-config-14
LLVM_LIB := $(realpath $(shell $(LLVM_CONFIG) --libfiles core irreader passes orcjit native))
LLVM_CFLAGS := $(patsubst -I%,-isystem %,$(filter -I%,$(shell $(LLVM_CONFIG) --cflags))) -DLG_LIBLLVM='"$(LLVM_LIB)"'

CORE_SRC := $(sort $(wildcard core/*.c devices/*/*.c))
BIND_SRC := $(filter-out vm_bindings/standalone.c,$(sort $(wildcard vm_bindings/*.c)))
CORE_OBJ := $(CORE_SRC:%.c=$(B)/obj/%.o)
BIND_OBJ := $(BIND_SRC:%.c=$(B)/obj/%.o)
STANDALONE_OBJ := $(B)/obj/vm_bindings/standalone.o
CTEST_SRC := $(sort $(wildcard tests/c/*.c))
HEADERS := $(wildcard core/*.h core/*.def devices/*/*.h vm_bindings/*.h)

MODULE := $(B)/lib/lua/5.4/luagrad/core.so
SOLIB := $(B)/lib/libluagrad.so
EXE := $(B)/bin/luagrad
CTESTS := $(B)/tests/engine_tests
LUALINK := $(B)/share/lua/5.4/luagrad

.PHONY: quickstart all test test-c test-llvm check-asan bench demo install uninstall clean lines deps examples

all: $(MODULE) $(SOLIB) $(EXE) $(LUALINK) $(B)/include/luagrad.h

$(B)/obj/%.o: %.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(if $(filter core/% devices/%,$<),,$(LUA_CFLAGS)) $(if $(filter devices/llvm/%,$<),$(LLVM_CFLAGS)) -c $< -o $@

$(B)/lib/libluagrad_core.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(MODULE): $(CORE_OBJ) $(BIND_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -o $@ $^ $(ENGINE_LIBS)

$(SOLIB): $(CORE_OBJ) $(BIND_OBJ) $(STANDALONE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libluagrad.so -o $@ $^ -llua5.4 $(ENGINE_LIBS)

# rpath: libluagrad.so is in <prefix>/lib (make install) or <prefix>/lib/lua/5.4 (luarocks).
REPL_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(sort $(wildcard repl/*.c)))
$(EXE): $(REPL_OBJ) $(SOLIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(REPL_OBJ) -L$(B)/lib -lluagrad -llua5.4 -lreadline $(ENGINE_LIBS) \
	  -Wl,-rpath,'$$ORIGIN/../lib:$$ORIGIN/../lib/lua/5.4'

$(B)/obj/repl/%.o: repl/%.c repl/repl.h $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LUA_CFLAGS) -Ivm_bindings -c $< -o $@

# The embedding examples, built the way an outside program would: the installed header, -lluagrad.
EXAMPLE_CFLAGS := $(WARN) $(CFLAGS) -I$(B)/include
examples: $(B)/examples/host $(B)/examples/c_api

$(B)/examples/host: examples/embed/host.c $(SOLIB) $(B)/include/luagrad.h $(LUALINK)
	@mkdir -p $(dir $@)
	$(CC) $(EXAMPLE_CFLAGS) $(LUA_CFLAGS) -DLUAGRAD_LUADIR='"$(abspath $(B))/share/lua/5.4"' -o $@ $< \
	  -L$(B)/lib -lluagrad -llua5.4 -Wl,-rpath,'$$ORIGIN/../lib'

$(B)/examples/c_api: examples/embed/c_api.c $(SOLIB) $(B)/include/luagrad.h $(LUALINK)
	@mkdir -p $(dir $@)
	$(CC) $(EXAMPLE_CFLAGS) -o $@ $< -L$(B)/lib -lluagrad -Wl,-rpath,'$$ORIGIN/../lib'

$(LUALINK):
	@mkdir -p $(dir $@)
	ln -sfn ../../../../stdlib_lua/luagrad $@

$(B)/include/luagrad.h: core/luagrad.h core/luagrad_enums.h core/ops.def core/dtypes.def
	@mkdir -p $(dir $@)
	cp $^ $(B)/include/

$(CTESTS): $(CTEST_SRC) $(B)/lib/libluagrad_core.a $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/c -Idevices/cpu -o $@ $(CTEST_SRC) $(B)/lib/libluagrad_core.a $(ENGINE_LIBS)

# Debian packages the build and the tests need; installed when missing and run as root.
DEB_PACKAGES := lua5.4 liblua5.4-dev lua-busted libxxhash-dev libcjson-dev zlib1g-dev libreadline-dev gcc make luajit luarocks llvm-14-dev dataset-fashion-mnist
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages: $$missing (run make test as root, or apt-get install them)"; exit 1; fi; \
	fi

test: deps
	$(MAKE) all $(CTESTS)
	tests/run.sh

test-c: all $(CTESTS)
	$(CTESTS)

# the op suites with every tensor and kernel on the LLVM device
test-llvm: all
	DEVICE=LLVM tests/run.sh ops

# check-asan: the C tests and the embedding examples (lg_open/lg_close included) with leak checks,
# then the Lua specs below against the ASan+UBSan build (lua5.4 itself is not instrumented, so
# libasan is preloaded into it; leak checks stay off for the interpreter).
ASAN_SPECS := graph dtypes rules repl io devices nn
check-asan:
	$(MAKE) B=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  ENGINE_LIBS="$(ENGINE_LIBS) -fsanitize=address,undefined" LIBFLAG="-shared -fsanitize=address,undefined" \
	  all build-asan/tests/engine_tests examples
	ASAN_OPTIONS=detect_leaks=1 build-asan/tests/engine_tests
	ASAN_OPTIONS=detect_leaks=1 build-asan/examples/c_api >/dev/null
	ASAN_OPTIONS=detect_leaks=1 build-asan/examples/host examples/embed/script.lua 9 >/dev/null
	LG_BUILD=build-asan ASAN_OPTIONS=detect_leaks=0 \
	  LUA="env LD_PRELOAD=$$($(CC) -print-file-name=libasan.so) $(LUA)" tests/run.sh $(ASAN_SPECS)

# make bench: one table (bench/run.lua; bench/RESULTS.md says what each row is). Its references
# need Debian's NumPy with OpenBLAS, PyTorch and the dataset: installed when missing (as root).
BENCH_PACKAGES := python3-numpy python3-torch libopenblas0-pthread dataset-fashion-mnist
bench: all
	@missing=$$(for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages for make bench: $$missing (as root: apt-get install them)"; exit 1; fi; \
	fi
	LUA="$(LUA)" LUA_PATH="$(B)/share/lua/5.4/?.lua;$(B)/share/lua/5.4/?/init.lua;;" LUA_CPATH="$(B)/lib/lua/5.4/?.so;;" \
	  $(LUA) bench/run.lua

# The main job: train the CNN of examples/fashion_mnist.lua on Fashion-MNIST (Debian's
# dataset-fashion-mnist, installed by deps with the other packages when run as root), evaluate,
# save and reload it.
demo: deps
	$(MAKE) all
	$(EXE) examples/fashion_mnist.lua

quickstart: all
	$(EXE) examples/quickstart.lua

install: all
	install -d $(DESTDIR)$(LIBDIR)/luagrad $(DESTDIR)$(LUADIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SOLIBDIR) $(DESTDIR)$(INCDIR)
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/luagrad/core.so
	rm -rf $(DESTDIR)$(LUADIR)/luagrad && cp -rL stdlib_lua/luagrad $(DESTDIR)$(LUADIR)/luagrad
	install -m 755 $(SOLIB) $(DESTDIR)$(SOLIBDIR)/libluagrad.so
	install -m 755 $(EXE) $(DESTDIR)$(BINDIR)/luagrad
	install -m 644 $(B)/include/* $(DESTDIR)$(INCDIR)/

uninstall:
	rm -rf $(DESTDIR)$(LIBDIR)/luagrad $(DESTDIR)$(LUADIR)/luagrad $(DESTDIR)$(BINDIR)/luagrad \
	  $(DESTDIR)$(SOLIBDIR)/libluagrad.so $(addprefix $(DESTDIR)$(INCDIR)/,luagrad.h luagrad_enums.h ops.def dtypes.def)

lines:
	@for d in core devices vm_bindings repl stdlib_lua rewrite_rules tests examples bench; do \
	  printf '%-14s %6s\n' $$d "$$(find $$d -name '*.[ch]' -o -name '*.lua' -o -name '*.def' 2>/dev/null | xargs cat 2>/dev/null | wc -l)"; done

clean:
	rm -rf build build-asan
