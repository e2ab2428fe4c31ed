/* variant.c — the table of architecture variant keys (see variant.h). */
#include "variant.h"
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "util.h"

#define MAX_VALUES 3

typedef struct {
    const char *key;
    size_t off;                         /* int field of ModelSize */
    int n;                              /* accepted values */
    const char *values[MAX_VALUES];     /* value v is stored as v; [0] = SPEC §2 */
} VariantKey;

static const VariantKey KEYS[NUM_VARIANT_KEYS] = {
    {"pos", offsetof(ModelSize, pos), 3, {"learned", "none", "rope"}},
    {"tie", offsetof(ModelSize, untied), 2, {"1", "0"}},
    {"mlp_bias", offsetof(ModelSize, no_mlp_bias), 2, {"1", "0"}},
    {"act", offsetof(ModelSize, act), 2, {"relu", "relu2"}},
};

static int *field(ModelSize *s, int i) { return (int *)(void *)((char *)s + KEYS[i].off); }
static int get(const ModelSize *s, int i) {
    return *(const int *)(const void *)((const char *)s + KEYS[i].off);
}

const char *variant_key(int i) { return KEYS[i].key; }
const char *variant_value_name(int i, int v) { return KEYS[i].values[v]; }
int variant_num_values(int i) { return KEYS[i].n; }
int variant_value(const ModelSize *s, int i) { return get(s, i); }

static void accepted(int i, char *out, size_t n) {
    size_t used = 0;
    out[0] = '\0';
    for (int v = 0; v < KEYS[i].n && used < n; v++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", v ? ", " : "", KEYS[i].values[v]);
}

int variant_parse(ModelSize *s, const char *tok, size_t len, unsigned *seen,
                  char *why, size_t n) {
    const char *eq = memchr(tok, '=', len);
    if (!eq) return 1;
    size_t klen = (size_t)(eq - tok), vlen = len - klen - 1;
    for (int i = 0; i < NUM_VARIANT_KEYS; i++) {
        if (strlen(KEYS[i].key) != klen || strncmp(KEYS[i].key, tok, klen) != 0) continue;
        if (*seen & (1u << i)) return fail_msg(why, n, "%s given twice", KEYS[i].key);
        *seen |= 1u << i;
        for (int v = 0; v < KEYS[i].n; v++)
            if (strlen(KEYS[i].values[v]) == vlen && !strncmp(KEYS[i].values[v], eq + 1, vlen)) {
                *field(s, i) = v;
                return 0;
            }
        char list[128];
        accepted(i, list, sizeof list);
        return fail_msg(why, n, "%.*s: unknown value of %s (accepted: %s)", (int)len, tok,
                        KEYS[i].key, list);
    }
    return 1;
}

void variant_format(const ModelSize *s, int all, char *out, size_t n) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < NUM_VARIANT_KEYS && used < n; i++) {
        int v = get(s, i);
        if (!all && v == 0) continue;
        const char *name = v >= 0 && v < KEYS[i].n ? KEYS[i].values[v] : "?";
        used += (size_t)snprintf(out + used, n - used, " %s=%s", KEYS[i].key, name);
    }
}

int variant_check(const ModelSize *s, char *why, size_t n) {
    for (int i = 0; i < NUM_VARIANT_KEYS; i++)
        if (get(s, i) < 0 || get(s, i) >= KEYS[i].n)
            return fail_msg(why, n, "%s: no value number %d", KEYS[i].key, get(s, i));
    /* rotary embedding turns pairs of channels (i, i + hs/2) of each head */
    if (s->pos == POS_ROPE && s->h > 0 && (s->d / s->h) % 2 != 0)
        return fail_msg(why, n, "pos=rope needs an even head size, d/h = %d", s->d / s->h);
    return 0;
}

int variant_same(const ModelSize *a, const ModelSize *b) {
    for (int i = 0; i < NUM_VARIANT_KEYS; i++)
        if (get(a, i) != get(b, i)) return 0;
    return 1;
}

void variant_pack(const ModelSize *s, uint32_t out[NUM_VARIANT_KEYS]) {
    for (int i = 0; i < NUM_VARIANT_KEYS; i++) out[i] = (uint32_t)get(s, i);
}

int variant_unpack(ModelSize *s, const uint32_t in[NUM_VARIANT_KEYS], char *why, size_t n) {
    for (int i = 0; i < NUM_VARIANT_KEYS; i++) {
        if (in[i] >= (uint32_t)KEYS[i].n)
            return fail_msg(why, n, "unknown variant value %u of %s", in[i], KEYS[i].key);
        *field(s, i) = (int)in[i];
    }
    return 0;
}
