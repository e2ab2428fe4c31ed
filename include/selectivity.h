/* selectivity.h — how token-specific each MLP unit is (plain C, one process).
 *
 * On a set of tokens, for every layer and unit: the set of distinct input
 * token ids at whose positions the unit fires (a > 0). A layer whose units
 * each fire for a few ids behaves like a lookup table on the current token;
 * its batch-level use then falls with the share of the vocabulary a batch
 * contains. This is the evidence behind the layer-0 discussion in
 * docs/study.md (`reluscope eval --selectivity`).
 *
 * Memory: one bit per (layer, unit, token id): L*F*V/8 bytes
 * (6 * 2048 * 4096 / 8 = 6 MiB at the study geometry). */
#ifndef RELUSCOPE_SELECTIVITY_H
#define RELUSCOPE_SELECTIVITY_H
#include <stddef.h>
#include <stdint.h>

typedef struct Selectivity {
    int L, F, V;
    size_t words;        /* uint64 words per unit: ceil(V / 64) */
    uint64_t *bits;      /* [L][F][words]: bit v set = unit fired at a position holding id v */
    uint64_t *present;   /* [words]: ids that occur at all */
} Selectivity;

#define SELECTIVITY_NQ 5
extern const double SELECTIVITY_Q[SELECTIVITY_NQ];   /* 0.1 0.25 0.5 0.75 0.9 */

typedef struct {
    int ids_present;                  /* distinct ids among the positions seen */
    int units_firing;                 /* units that fired at least once */
    double ids_q[SELECTIVITY_NQ];     /* over firing units: distinct ids per unit / ids_present */
    double specialist_frac;           /* firing units with <= 1% of ids_present ids, / F */
    double generalist_frac;           /* firing units with >= 50% of ids_present ids, / F */
} SelectivityStats;

void build_selectivity(Selectivity *s, int L, int F, int V);
void free_selectivity(Selectivity *s);
/* Record one layer's activations act[N][F] (row n at the position holding ids[n]). */
void selectivity_add(Selectivity *s, int layer, const float *act, const uint16_t *ids, size_t N);
/* Record which ids occur (call once per position, for any one layer's pass). */
void selectivity_add_ids(Selectivity *s, const uint16_t *ids, size_t N);
void selectivity_stats(const Selectivity *s, int layer, SelectivityStats *out);

#endif
