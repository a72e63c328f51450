/* ctest.h: a tiny test framework for the engine's C tests (every tests/c file is built into
 * build/tests/engine_tests with tests/c/main.c; run it from the repository root).
 *
 *   #include "ctest.h"
 *   CTEST(add_folds) {
 *     CHECK(x != NULL);                 // any condition
 *     CHECK_INT(got, expected);         // int64 values, both printed on failure
 *     CHECK_STR(got, expected);         // C strings (NULL-safe)
 *     CHECK_MSG(cond, "a=%d", a);       // condition with a printf-style message
 *     REQUIRE(p != NULL);               // like CHECK, but ends the test when it fails
 *     REQUIRE_OK(ctx, lg_uop_new(...)); // an lg_status call; prints the ctx error on failure
 *   }
 *
 * A test registers itself (a constructor runs before main); `engine_tests [substring]` runs
 * the tests whose names contain the substring, all of them by default. A failing check prints
 * file:line and the values, and the test goes on; only the first 10 failures of a test print. */
#ifndef CTEST_H
#define CTEST_H
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "luagrad.h"

typedef struct ctest_case ctest_case;
typedef struct ctest_run {
  const ctest_case *tc;
  int64_t failures;
} ctest_run;
struct ctest_case {
  const char *name;
  void (*fn)(ctest_run *);
  ctest_case *next;
};

void ctest_register(ctest_case *tc);
/* Records one failure; prints it while the test has printed fewer than 10. */
void ctest_fail(ctest_run *r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CTEST(name)                                                                       \
  static void ctest_fn_##name(ctest_run *ctest_r_);                                       \
  static ctest_case ctest_case_##name = {#name, ctest_fn_##name, NULL};                   \
  __attribute__((constructor)) static void ctest_reg_##name(void) { ctest_register(&ctest_case_##name); } \
  static void ctest_fn_##name(ctest_run *ctest_r_)

#define CHECK_MSG(cond, ...) \
  ((cond) ? (void)0 : ctest_fail(ctest_r_, __FILE__, __LINE__, __VA_ARGS__))
#define CHECK(cond) CHECK_MSG(cond, "%s", #cond)
#define CHECK_INT(got, want)                                                                \
  do {                                                                                      \
    int64_t ctest_g_ = (int64_t)(got), ctest_w_ = (int64_t)(want);                          \
    CHECK_MSG(ctest_g_ == ctest_w_, "%s == %" PRId64 ", expected %s == %" PRId64, #got, ctest_g_, \
              #want, ctest_w_);                                                             \
  } while (0)
#define CHECK_STR(got, want)                                                                \
  do {                                                                                      \
    const char *ctest_g_ = (got), *ctest_w_ = (want);                                       \
    CHECK_MSG(ctest_g_ && ctest_w_ && strcmp(ctest_g_, ctest_w_) == 0,                      \
              "%s is\n%s\nexpected\n%s", #got, ctest_g_ ? ctest_g_ : "(null)",              \
              ctest_w_ ? ctest_w_ : "(null)");                                              \
  } while (0)
#define REQUIRE(cond)                                                                       \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      ctest_fail(ctest_r_, __FILE__, __LINE__, "required: %s", #cond);                      \
      return;                                                                               \
    }                                                                                       \
  } while (0)
#define REQUIRE_OK(ctx, call)                                                               \
  do {                                                                                      \
    lg_status ctest_s_ = (call);                                                            \
    if (ctest_s_ != LG_OK) {                                                                \
      ctest_fail(ctest_r_, __FILE__, __LINE__, "%s returned %d: %s", #call, (int)ctest_s_,  \
                 lg_ctx_error(ctx));                                                        \
      return;                                                                               \
    }                                                                                       \
  } while (0)

#endif
