/* variant.h — the architecture variants a size definition may name
 * (docs/model.md "Variants"):
 *
 *     size.w_rope = L=6 d=64 h=4 F=2048 T=64 V=4096 pos=rope
 *
 * One table (src/variant.c) lists every variant key, its accepted values and
 * the ModelSize field it sets; parsing, printing, the checkpoint header and
 * the error messages all walk it. The first value of each key is the SPEC §2
 * model, stored as 0, so a size without variant keys is the default model. */
#ifndef RELUSCOPE_VARIANT_H
#define RELUSCOPE_VARIANT_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define NUM_VARIANT_KEYS 4

/* Key i's name ("pos", "tie", ...) and the name of value v of it. */
const char *variant_key(int i);
const char *variant_value_name(int i, int v);
/* Number of accepted values of key i. */
int variant_num_values(int i);
/* The value number of key i in s (its ModelSize field). */
int variant_value(const ModelSize *s, int i);

/* One "key=value" token of a size definition (len bytes at tok).
 * Returns 1 if tok is not a variant key (the caller tries its own fields),
 * 0 when it set the field, -1 + why for an unknown value or a key given
 * twice (*seen: bit i set once key i was given). */
int variant_parse(ModelSize *s, const char *tok, size_t len, unsigned *seen,
                  char *why, size_t n);

/* " pos=rope tie=0": the non-default keys (all = 0), or every key (all = 1),
 * each preceded by a space; "" for the default model when all = 0. */
void variant_format(const ModelSize *s, int all, char *out, size_t n);

/* Cross-field rules of the variants (rope needs an even head size). */
int variant_check(const ModelSize *s, char *why, size_t n);

/* The same variant on every key. */
int variant_same(const ModelSize *a, const ModelSize *b);

/* Field values as stored in the checkpoint header (u32 each, table order);
 * variant_unpack refuses a value outside its key's range. */
void variant_pack(const ModelSize *s, uint32_t out[NUM_VARIANT_KEYS]);
int variant_unpack(ModelSize *s, const uint32_t in[NUM_VARIANT_KEYS], char *why, size_t n);

#endif
