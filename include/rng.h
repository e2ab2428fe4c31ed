/* rng.h — deterministic random numbers. Every random number of a run
 * derives from its seed through these functions, so runs are reproducible
 * bit for bit. xoshiro256** for streams, splitmix64 for hashing. */
#ifndef RELUSCOPE_RNG_H
#define RELUSCOPE_RNG_H
#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

uint64_t splitmix64(uint64_t *state);
uint64_t hash64(uint64_t x);                       /* stateless mix */
void     rng_seed(Rng *r, uint64_t seed, uint64_t stream);
uint64_t rng_next(Rng *r);
double   rng_uniform(Rng *r);                      /* [0, 1) */
uint64_t rng_below(Rng *r, uint64_t n);            /* [0, n), unbiased */
float    rng_normal(Rng *r);                       /* N(0, 1), Box-Muller */

#endif
