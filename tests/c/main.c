/* main.c: runs the tests registered with CTEST (see ctest.h). */
#include <stdarg.h>
#include <stdlib.h>

#include "ctest.h"

/* filled by constructors before main; tests run in registration order */
static ctest_case *first, **last = &first;

void ctest_register(ctest_case *tc) {
  *last = tc;
  last = &tc->next;
}

void ctest_fail(ctest_run *r, const char *file, int line, const char *fmt, ...) {
  if (r->failures++ >= 10) return;
  va_list ap;
  va_start(ap, fmt);
  printf("\n  %s:%d: ", file, line);
  vprintf(fmt, ap);
  va_end(ap);
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  for (ctest_case *tc = first; tc; tc = tc->next) {
    if (argc > 1 && !strstr(tc->name, argv[1])) continue;
    ctest_run r = {tc, 0};
    printf("%s ...", tc->name);
    fflush(stdout);
    tc->fn(&r);
    if (r.failures > 10) printf("\n  (%" PRId64 " failures in all)", r.failures);
    if (r.failures) {
      printf("\n%s FAIL\n", tc->name);
      failed++;
    } else {
      printf(" ok\n");
      passed++;
    }
  }
  printf("engine: %d passed, %d failed\n", passed, failed);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
