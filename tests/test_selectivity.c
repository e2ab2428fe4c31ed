/* test_selectivity.c — distinct token ids per unit (selectivity.h) against a
 * brute-force count over explicit (unit, id) pairs, on random activations. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "selectivity.h"
#include "util.h"

static uint64_t state = 0x9e3779b97f4a7c15ull;
static uint32_t next_u32(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (uint32_t)(state >> 32);
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* One layer: N positions, F units, ids below V; unit f fires with its own rate. */
static void check_case(int N, int F, int V) {
    float *act = xmalloc((size_t)N * F * sizeof *act);
    uint16_t *ids = xmalloc((size_t)N * sizeof *ids);
    for (int n = 0; n < N; n++) ids[n] = (uint16_t)(next_u32() % (uint32_t)(V / 2 + 1) * 2 % V);
    for (int n = 0; n < N; n++)
        for (int f = 0; f < F; f++) {
            uint32_t r = next_u32() % 100;
            /* unit f fires for rate f%7*15 %; negative zero and zeros never count */
            act[(size_t)n * F + f] = r < (uint32_t)(f % 7) * 15 ? 0.5f + (float)r : (r & 1 ? -0.0f : -1.0f);
        }
    Selectivity s;
    build_selectivity(&s, 2, F, V);
    selectivity_add_ids(&s, ids, (size_t)N);
    selectivity_add(&s, 1, act, ids, (size_t)N);
    SelectivityStats st;
    selectivity_stats(&s, 1, &st);

    /* brute force: a V-long mark array per unit */
    uint8_t *present = xcalloc((size_t)V, 1), *mark = xcalloc((size_t)V, 1);
    int ids_present = 0;
    for (int n = 0; n < N; n++) if (!present[ids[n]]) { present[ids[n]] = 1; ids_present++; }
    int *per_unit = xmalloc((size_t)F * sizeof *per_unit), firing = 0, spec = 0, gen = 0;
    for (int f = 0; f < F; f++) {
        memset(mark, 0, (size_t)V);
        int c = 0;
        for (int n = 0; n < N; n++)
            if (act[(size_t)n * F + f] > 0 && !mark[ids[n]]) { mark[ids[n]] = 1; c++; }
        if (c == 0) continue;
        per_unit[firing++] = c;
        if (100 * c <= ids_present) spec++;
        if (2 * c >= ids_present) gen++;
    }
    qsort(per_unit, (size_t)firing, sizeof *per_unit, cmp_int);
    CHECK(st.ids_present == ids_present, "ids_present %d vs %d", st.ids_present, ids_present);
    CHECK(st.units_firing == firing, "units_firing %d vs %d", st.units_firing, firing);
    for (int q = 0; q < SELECTIVITY_NQ && firing > 0; q++) {
        int k = 1;   /* smallest k >= 1 with k >= q * firing, by search */
        while (k * 100 < (int)(SELECTIVITY_Q[q] * 100 + 0.5) * firing) k++;
        CHECK_CLOSE(st.ids_q[q], (double)per_unit[k - 1] / ids_present, 0, 1e-15, "ids_q");
    }
    CHECK_CLOSE(st.specialist_frac, (double)spec / F, 0, 1e-12, "specialist_frac");
    CHECK_CLOSE(st.generalist_frac, (double)gen / F, 0, 1e-12, "generalist_frac");
    /* the other layer saw nothing */
    selectivity_stats(&s, 0, &st);
    CHECK(st.units_firing == 0, "untouched layer has %d firing units", st.units_firing);
    free_selectivity(&s);
    free(act); free(ids); free(present); free(mark); free(per_unit);
}

int main(void) {
    check_case(1, 7, 64);
    check_case(300, 29, 65);
    check_case(2000, 70, 4096);
    check_case(4096, 16, 200);   /* many ids per unit: generalists */
    return test_done("test_selectivity");
}
