/* llvm.c: the LLVM device. A program is LLVM IR text (devices/llvm/render_llvm.c) compiled in
 * this process with libLLVM's C API: parsed and verified, optimized with the new pass manager's
 * "default<O2>", and emitted as an object file for the host CPU with all of its features (the
 * disk cache holds that file, <cache>/llvm/<key>.o). Loading links the object with ORC LLJIT;
 * its calls of the C library (sinf, memset, ...) resolve to this process's symbols. The entry
 * follows the CPU calling convention of luagrad.h ("devices").
 *
 * Memory is host memory, as on the CPU device: 64-byte aligned, large freed buffers kept for
 * reuse (devices/cpu/hostmem.c), malloc tuned as there; a program only takes buffers of its own
 * device (core/device.c checks), so with DEVICE=LLVM every buffer lives on LLVM.
 *
 * libLLVM ($LUAGRAD_LIBLLVM, else the library built against) is loaded when a process first
 * opens the device, so that luagrad itself does not depend on it: without it the LLVM device
 * fails to open (LG_ERR_DEVICE) and the rest works.
 *
 * Each loaded program is its own LLJIT instance: kernels of different sources may share an entry
 * name, and ORC's C API looks names up in one JITDylib only, so a JIT per program keeps them
 * apart; unloading disposes of it and its code. The compiler identity (the cache key) is the LLVM
 * version and library, the pipeline, the target triple, the CPU name and its features.
 *
 * Launching is the CPU device's (devices/cpu/cpu.c): a kernel exports `<entry>_split`, {iterations
 * of its split loop, work of one}, and runs with ncores = lg_pool_width(iterations, work,
 * THREADS) on a thread pool of devices/cpu/pool.c (the device's own); dims->global[0] > 1 asks for
 * that many cores instead (hand-written IR without `_split` otherwise runs as one). THREADS (1 to
 * LG_POOL_MAX_THREADS) is read when a context opens the device; the default is the number of CPUs this
 * process may run on. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/IRReader.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>

#include "../cpu/hostmem.h"
#include "../cpu/pool.h"
#include "device.h"


enum { MAX_MESSAGE = 1500 };

static const char PIPELINE[] = "default<O2>";

typedef struct llvm_state {
  LLVMTargetMachineRef tm;
  char *triple; /* LLVM's message strings */
  lg_pool *pool; /* THREADS threads, started on the first launch on more than one core */
  lg_hostmem *mem; /* the buffers, with spares for reuse */
} llvm_state;

typedef struct llvm_program {
  LLVMOrcLLJITRef jit;
  lg_pool_kernel fn;
  const int64_t *split; /* <entry>_split: {iterations, work of one}; NULL in hand-written IR */
  char report[512]; /* the first error ORC reported while linking */
} llvm_program;

/* ---- libLLVM, loaded on first use --------------------------------------------------------------- */

#define XSTR(x) STR(x)
#define STR(x) #x
/* the C API functions used, and the native target's initializers (llvm-config.h names them) */
#define LLVM_API(X) \
  X(LLVMConsumeError) \
  X(LLVMContextCreate) \
  X(LLVMContextDispose) \
  X(LLVMCreateMemoryBufferWithContentsOfFile) \
  X(LLVMCreateMemoryBufferWithMemoryRangeCopy) \
  X(LLVMCreatePassBuilderOptions) \
  X(LLVMCreateTargetDataLayout) \
  X(LLVMCreateTargetMachine) \
  X(LLVMDisposeErrorMessage) \
  X(LLVMDisposeMemoryBuffer) \
  X(LLVMDisposeMessage) \
  X(LLVMDisposeModule) \
  X(LLVMDisposePassBuilderOptions) \
  X(LLVMDisposeTargetData) \
  X(LLVMDisposeTargetMachine) \
  X(LLVMGetBufferSize) \
  X(LLVMGetBufferStart) \
  X(LLVMGetDefaultTargetTriple) \
  X(LLVMGetErrorMessage) \
  X(LLVMGetHostCPUFeatures) \
  X(LLVMGetHostCPUName) \
  X(LLVMGetNamedFunction) \
  X(LLVMGetTargetFromTriple) \
  X(LLVMIsDeclaration) \
  X(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess) \
  X(LLVMOrcCreateLLJIT) \
  X(LLVMOrcDisposeLLJIT) \
  X(LLVMOrcExecutionSessionSetErrorReporter) \
  X(LLVMOrcJITDylibAddGenerator) \
  X(LLVMOrcLLJITAddObjectFile) \
  X(LLVMOrcLLJITGetExecutionSession) \
  X(LLVMOrcLLJITGetGlobalPrefix) \
  X(LLVMOrcLLJITGetMainJITDylib) \
  X(LLVMOrcLLJITLookup) \
  X(LLVMParseIRInContext) \
  X(LLVMRunPasses) \
  X(LLVMSetModuleDataLayout) \
  X(LLVMSetTarget) \
  X(LLVMTargetMachineEmitToMemoryBuffer) \
  X(LLVMVerifyModule) \
  X(LLVM_NATIVE_TARGETINFO) X(LLVM_NATIVE_TARGET) X(LLVM_NATIVE_TARGETMC) X(LLVM_NATIVE_ASMPRINTER)

#define API_FIELD(f) __typeof__(f) *f;
static struct {
  LLVM_API(API_FIELD)
} api;

static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static const char *api_path;  /* $LUAGRAD_LIBLLVM, else the library built against */
static char api_error[512]; /* why libLLVM could not be loaded; "" once it is */

static void api_load(void) {
  api_path = getenv("LUAGRAD_LIBLLVM");
  if (!api_path || !*api_path) api_path = LG_LIBLLVM;
  void *lib = dlopen(api_path, RTLD_NOW | RTLD_LOCAL); /* never closed: LLVM keeps global state */
  if (!lib) {
    snprintf(api_error, sizeof api_error, "cannot load libLLVM (LUAGRAD_LIBLLVM): %s", dlerror());
    return;
  }
#define API_LOAD(f)                                                                              \
  if (!api_error[0] && !(*(void **)&api.f = dlsym(lib, XSTR(f))))                                \
    snprintf(api_error, sizeof api_error, "%s has no %s", api_path, XSTR(f));
  LLVM_API(API_LOAD)
  if (api_error[0]) return;
  api.LLVM_NATIVE_TARGETINFO(), api.LLVM_NATIVE_TARGET(), api.LLVM_NATIVE_TARGETMC(), api.LLVM_NATIVE_ASMPRINTER();
}

/* ---- setup: the target machine of this host ---------------------------------------------------- */


static lg_status llvm_open(lg_device *dev) {
  if (dev->index != 0)
    return lg_ctx_fail(dev->ctx, LG_ERR_ARG, "device %s: there is one LLVM device (LLVM or LLVM:0)", dev->name);
  int32_t threads = lg_pool_thread_count();
  if (!threads)
    return lg_ctx_fail(dev->ctx, LG_ERR_ARG, "device LLVM: THREADS='%s' is not a number of threads from 1 to %d",
                       getenv("THREADS"), LG_POOL_MAX_THREADS);
  pthread_once(&api_once, api_load);
  if (api_error[0]) return lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "device LLVM: %s", api_error);
  lg_hostmem_tune_malloc(); /* process-wide, on purpose (hostmem.c says why) */
  llvm_state *s = calloc(1, sizeof *s);
  if (s) s->pool = lg_pool_new(threads);
  if (s && s->pool) s->mem = lg_hostmem_new();
  if (s && !s->mem) lg_pool_free(s->pool), free(s), s = NULL;
  if (!s) return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "device LLVM: out of memory");
  char *err = NULL, *cpu = api.LLVMGetHostCPUName(), *features = api.LLVMGetHostCPUFeatures();
  LLVMTargetRef target;
  s->triple = api.LLVMGetDefaultTargetTriple();
  lg_status st = LG_OK;
  if (api.LLVMGetTargetFromTriple(s->triple, &target, &err)) {
    st = lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "LLVM: no target for %s: %s", s->triple, err);
  } else {
    s->tm = api.LLVMCreateTargetMachine(target, s->triple, cpu, features, LLVMCodeGenLevelDefault, LLVMRelocPIC,
                                    LLVMCodeModelDefault);
    size_t n = strlen(api_path) + strlen(cpu) + strlen(features) + strlen(s->triple) + 64;
    if (!s->tm) st = lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "LLVM: cannot make a target machine for %s (%s)", s->triple, cpu);
    else if (!(dev->compiler_id = malloc(n))) st = lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "device LLVM: out of memory");
    else snprintf(dev->compiler_id, n, "LLVM %s %s %s %s %s %s", LLVM_VERSION_STRING, api_path, PIPELINE, s->triple, cpu, features);
  }
  api.LLVMDisposeMessage(err);
  api.LLVMDisposeMessage(cpu);
  api.LLVMDisposeMessage(features);
  if (st != LG_OK) {
    if (s->tm) api.LLVMDisposeTargetMachine(s->tm);
    api.LLVMDisposeMessage(s->triple);
    lg_pool_free(s->pool);
    lg_hostmem_free(s->mem);
    free(s);
    return st;
  }
  dev->impl = s;
  return LG_OK;
}

static void llvm_close(lg_device *dev) {
  llvm_state *s = dev->impl;
  api.LLVMDisposeTargetMachine(s->tm);
  api.LLVMDisposeMessage(s->triple);
  lg_pool_free(s->pool);
  lg_hostmem_free(s->mem);
  free(s);
}

/* ---- memory: host memory, as on the CPU --------------------------------------------------------- */

static lg_status llvm_alloc(lg_device *dev, int64_t nbytes, void **mem) {
  llvm_state *s = dev->impl;
  if (!(*mem = lg_hostmem_alloc(s->mem, nbytes)))
    return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "LLVM: cannot allocate a buffer of %lld bytes", (long long)nbytes);
  return LG_OK;
}

static void llvm_free(lg_device *dev, void *mem, int64_t nbytes) {
  llvm_state *s = dev->impl;
  lg_hostmem_release(s->mem, mem, nbytes);
}

static lg_status llvm_copy_in(lg_device *dev, void *mem, int64_t offset, const void *src, int64_t n) {
  memcpy((char *)mem + offset, src, (size_t)n);
  return LG_OK;
}

static lg_status llvm_copy_out(lg_device *dev, void *dst, void *mem, int64_t offset, int64_t n) {
  memcpy(dst, (const char *)mem + offset, (size_t)n);
  return LG_OK;
}

/* ---- compiling ------------------------------------------------------------------------------------ */

/* A failed step: "LLVM: kernel 'E_4' does not compile (what): <LLVM's message, cut short>". */
static lg_status compile_error(lg_device *dev, lg_status code, const char *entry, const char *what, const char *msg) {
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
  return lg_ctx_fail(dev->ctx, code, "LLVM: kernel '%s' does not compile (%s):\n%.*s%s", entry, what,
                     (int)(n < MAX_MESSAGE ? n : MAX_MESSAGE), msg, n > MAX_MESSAGE ? "..." : "");
}

static lg_status error_status(lg_device *dev, const char *entry, const char *what, LLVMErrorRef e) {
  char *msg = api.LLVMGetErrorMessage(e);
  lg_status st = compile_error(dev, LG_ERR_COMPILE, entry, what, msg);
  api.LLVMDisposeErrorMessage(msg);
  return st;
}

static lg_status write_file(lg_device *dev, const char *path, LLVMMemoryBufferRef obj) {
  FILE *f = fopen(path, "wb");
  size_t n = api.LLVMGetBufferSize(obj);
  bool ok = f && fwrite(api.LLVMGetBufferStart(obj), 1, n, f) == n;
  int e = errno;
  if (f && fclose(f) != 0 && ok) ok = false, e = errno;
  return ok ? LG_OK : lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "LLVM: cannot write %s: %s", path, strerror(e));
}

/* parse, verify, optimize, emit: the module is disposed of by the caller */
static lg_status build(lg_device *dev, LLVMContextRef c, const char *src, const char *entry, const char *out_path,
                       LLVMModuleRef *m) {
  llvm_state *s = dev->impl;
  char name[80], *msg = NULL;
  snprintf(name, sizeof name, "%s.ll", entry); /* diagnostics read "E_4.ll:12:3: error: ..." */
  LLVMMemoryBufferRef buf = api.LLVMCreateMemoryBufferWithMemoryRangeCopy(src, strlen(src), name);
  if (api.LLVMParseIRInContext(c, buf, m, &msg)) { /* takes buf */
    lg_status st = compile_error(dev, LG_ERR_COMPILE, entry, "parse", msg ? msg : "");
    api.LLVMDisposeMessage(msg);
    *m = NULL;
    return st;
  }
  if (api.LLVMVerifyModule(*m, LLVMReturnStatusAction, &msg)) {
    lg_status st = compile_error(dev, LG_ERR_COMPILE, entry, "verify", msg);
    api.LLVMDisposeMessage(msg);
    return st;
  }
  api.LLVMDisposeMessage(msg);
  LLVMValueRef fn = api.LLVMGetNamedFunction(*m, entry);
  if (!fn || api.LLVMIsDeclaration(fn))
    return lg_ctx_fail(dev->ctx, LG_ERR_COMPILE, "LLVM: the kernel source defines no function '%s'", entry);
  api.LLVMSetTarget(*m, s->triple);
  LLVMTargetDataRef layout = api.LLVMCreateTargetDataLayout(s->tm);
  api.LLVMSetModuleDataLayout(*m, layout);
  api.LLVMDisposeTargetData(layout);
  LLVMPassBuilderOptionsRef opts = api.LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = api.LLVMRunPasses(*m, PIPELINE, s->tm, opts);
  api.LLVMDisposePassBuilderOptions(opts);
  if (e) return error_status(dev, entry, "optimize", e);
  LLVMMemoryBufferRef obj = NULL;
  if (api.LLVMTargetMachineEmitToMemoryBuffer(s->tm, *m, LLVMObjectFile, &msg, &obj)) {
    lg_status st = compile_error(dev, LG_ERR_COMPILE, entry, "emit", msg ? msg : "");
    api.LLVMDisposeMessage(msg);
    return st;
  }
  lg_status st = write_file(dev, out_path, obj);
  api.LLVMDisposeMemoryBuffer(obj);
  return st;
}

static lg_status llvm_compile(lg_device *dev, const char *src, const char *entry, const char *out_path) {
  LLVMContextRef c = api.LLVMContextCreate();
  LLVMModuleRef m = NULL;
  lg_status st = build(dev, c, src, entry, out_path, &m);
  if (m) api.LLVMDisposeModule(m);
  api.LLVMContextDispose(c);
  return st;
}

/* ---- programs --------------------------------------------------------------------------------- */

/* ORC reports why materializing failed (a symbol not found) here, and only "failed to
 * materialize" to the lookup: the message keeps the first report. */
static void keep_report(void *ctx, LLVMErrorRef e) {
  llvm_program *p = ctx;
  char *msg = api.LLVMGetErrorMessage(e);
  if (!p->report[0]) snprintf(p->report, sizeof p->report, "%s", msg);
  api.LLVMDisposeErrorMessage(msg);
}

static lg_status jit_error(lg_device *dev, const char *what, const char *path, LLVMErrorRef e, const char *report) {
  char *msg = api.LLVMGetErrorMessage(e);
  lg_status st = lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "LLVM: cannot %s %s: %s%s%s", what, path, msg, *report ? ": " : "",
                             report);
  api.LLVMDisposeErrorMessage(msg);
  return st;
}

static lg_status llvm_load(lg_device *dev, const char *path, const char *entry, void **prog) {
  char *msg = NULL;
  LLVMMemoryBufferRef obj;
  if (api.LLVMCreateMemoryBufferWithContentsOfFile(path, &obj, &msg)) {
    lg_status st = lg_ctx_fail(dev->ctx, LG_ERR_DEVICE, "LLVM: cannot read %s: %s", path, msg);
    api.LLVMDisposeMessage(msg);
    return st;
  }
  llvm_program *p = calloc(1, sizeof *p);
  char *split_name = p ? malloc(strlen(entry) + sizeof "_split") : NULL;
  if (!split_name) {
    api.LLVMDisposeMemoryBuffer(obj);
    free(p);
    return lg_ctx_fail(dev->ctx, LG_ERR_NOMEM, "LLVM: out of memory");
  }
  LLVMErrorRef e = api.LLVMOrcCreateLLJIT(&p->jit, NULL);
  if (e) {
    api.LLVMDisposeMemoryBuffer(obj);
    free(split_name);
    free(p);
    return jit_error(dev, "start a JIT for", path, e, "");
  }
  api.LLVMOrcExecutionSessionSetErrorReporter(api.LLVMOrcLLJITGetExecutionSession(p->jit), keep_report, p);
  LLVMOrcJITDylibRef jd = api.LLVMOrcLLJITGetMainJITDylib(p->jit);
  LLVMOrcDefinitionGeneratorRef gen = NULL;
  const char *what = "link";
  e = api.LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, api.LLVMOrcLLJITGetGlobalPrefix(p->jit), NULL, NULL);
  if (!e) api.LLVMOrcJITDylibAddGenerator(jd, gen);
  if (!e) e = api.LLVMOrcLLJITAddObjectFile(p->jit, jd, obj); /* takes obj */
  else api.LLVMDisposeMemoryBuffer(obj);
  LLVMOrcExecutorAddress addr = 0;
  if (!e) what = "find the kernel in", e = api.LLVMOrcLLJITLookup(p->jit, &addr, entry);
  if (e) {
    lg_status st = jit_error(dev, what, path, e, p->report);
    api.LLVMConsumeError(api.LLVMOrcDisposeLLJIT(p->jit));
    free(split_name);
    free(p);
    return st;
  }
  p->fn = (lg_pool_kernel)(uintptr_t)addr;
  /* <entry>_split: a kernel of render_llvm.c defines it, hand-written IR may not */
  sprintf(split_name, "%s_split", entry);
  e = api.LLVMOrcLLJITLookup(p->jit, &addr, split_name);
  free(split_name);
  if (e) api.LLVMConsumeError(e);
  else p->split = (const int64_t *)(uintptr_t)addr;
  *prog = p;
  return LG_OK;
}

static void llvm_unload(lg_device *dev, void *prog) {
  llvm_program *p = prog;
  api.LLVMConsumeError(api.LLVMOrcDisposeLLJIT(p->jit));
  free(p);
}

static lg_status llvm_launch(lg_device *dev, void *prog, void *const *mems, int32_t nbufs, const int64_t *ints,
                             int32_t nints, const lg_launch_dims *dims) {
  llvm_program *p = prog;
  llvm_state *s = dev->impl;
  lg_pool_launch(s->pool, p->fn, (void **)mems, ints, p->split, dims ? dims->global[0] : 0, dims ? dims->sample : 0);
  return LG_OK;
}

static lg_status llvm_synchronize(lg_device *dev) { return LG_OK; }

const lg_device_ops lg_llvm_device = {
    .kind = "LLVM",
    .bin_ext = ".o",
    .open = llvm_open,
    .close = llvm_close,
    .alloc = llvm_alloc,
    .free = llvm_free,
    .copy_in = llvm_copy_in,
    .copy_out = llvm_copy_out,
    .compile = llvm_compile,
    .load = llvm_load,
    .unload = llvm_unload,
    .launch = llvm_launch,
    .synchronize = llvm_synchronize,
};
