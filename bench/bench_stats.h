/* bench_stats.h — the order statistics every bench program reports. */
#ifndef RELUSCOPE_BENCH_STATS_H
#define RELUSCOPE_BENCH_STATS_H
#include <stdlib.h>
#include <string.h>
#include "util.h"

/* qsort comparator for doubles, ascending */
static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median of v[0..n) (n >= 1); v is left as it was */
static inline double bench_median(const double *v, int n) {
    double *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

#endif
