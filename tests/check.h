/* check.h — a tiny test harness: CHECK(cond, fmt, ...) records a failure and
 * goes on; test_done() prints one line per test file and returns the exit code. */
#ifndef RELUSCOPE_CHECK_H
#define RELUSCOPE_CHECK_H
#include <stdio.h>
#include <math.h>

static int check_failures = 0, check_count = 0;

#define CHECK(cond, ...) do { check_count++; if (!(cond)) { check_failures++; \
    fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } } while (0)

#define CHECK_CLOSE(a, b, rtol, atol, what) do { double _a = (a), _b = (b); \
    CHECK(fabs(_a - _b) <= (atol) + (rtol) * fabs(_b), "%s: %.9g vs %.9g", what, _a, _b); } while (0)

static inline int test_done(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}
#endif
