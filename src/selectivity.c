/* selectivity.c — distinct token ids per MLP unit (see selectivity.h). */
#include "selectivity.h"
#include <stdlib.h>
#include <string.h>
#include "util.h"

const double SELECTIVITY_Q[SELECTIVITY_NQ] = {0.1, 0.25, 0.5, 0.75, 0.9};
static const int Q_PERCENT[SELECTIVITY_NQ] = {10, 25, 50, 75, 90};   /* the same, exact */

void build_selectivity(Selectivity *s, int L, int F, int V) {
    s->L = L; s->F = F; s->V = V;
    s->words = ((size_t)V + 63) / 64;
    s->bits = xcalloc((size_t)L * F * s->words, sizeof *s->bits);
    s->present = xcalloc(s->words, sizeof *s->present);
}

void free_selectivity(Selectivity *s) {
    free(s->bits);
    free(s->present);
    memset(s, 0, sizeof *s);
}

void selectivity_add_ids(Selectivity *s, const uint16_t *ids, size_t N) {
    for (size_t n = 0; n < N; n++) s->present[ids[n] / 64] |= (uint64_t)1 << (ids[n] % 64);
}

void selectivity_add(Selectivity *s, int layer, const float *act, const uint16_t *ids, size_t N) {
    uint64_t *unit_bits = s->bits + (size_t)layer * s->F * s->words;
    for (size_t n = 0; n < N; n++) {
        const float *row = act + n * s->F;
        size_t word = ids[n] / 64;
        uint64_t bit = (uint64_t)1 << (ids[n] % 64);
        for (int f = 0; f < s->F; f++)
            if (row[f] > 0.0f) unit_bits[(size_t)f * s->words + word] |= bit;
    }
}

static int popcount_row(const uint64_t *w, size_t words) {
    int c = 0;
    for (size_t i = 0; i < words; i++) c += __builtin_popcountll(w[i]);
    return c;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

void selectivity_stats(const Selectivity *s, int layer, SelectivityStats *out) {
    memset(out, 0, sizeof *out);
    out->ids_present = popcount_row(s->present, s->words);
    int *per_unit = xmalloc(((size_t)s->F + 1) * sizeof *per_unit), n = 0;
    const uint64_t *unit_bits = s->bits + (size_t)layer * s->F * s->words;
    for (int f = 0; f < s->F; f++) {
        int c = popcount_row(unit_bits + (size_t)f * s->words, s->words);
        if (c > 0) per_unit[n++] = c;
    }
    out->units_firing = n;
    if (n > 0 && out->ids_present > 0) {
        qsort(per_unit, (size_t)n, sizeof *per_unit, cmp_int);
        double present = out->ids_present;
        for (int q = 0; q < SELECTIVITY_NQ; q++) {   /* SPEC §3: x(max(1, ceil(q n))), in integers */
            long k = ((long)Q_PERCENT[q] * n + 99) / 100;
            out->ids_q[q] = per_unit[(k < 1 ? 1 : k) - 1] / present;
        }
        for (int i = 0; i < n; i++) {
            if (per_unit[i] <= 0.01 * present) out->specialist_frac += 1.0 / s->F;
            if (per_unit[i] >= 0.5 * present) out->generalist_frac += 1.0 / s->F;
        }
    }
    free(per_unit);
}
