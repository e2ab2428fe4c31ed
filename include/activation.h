/* activation.h — the MLP's activation as a replaceable unit.
 *
 * An activation g is three things: a forward that also counts usage (SPEC §3:
 * a unit is active on a token iff g(x) > 0, which for every activation here
 * is x > 0), its backward, and whether that backward needs more than g(x).
 * A new activation is one file (src/act_NAME.c defining an Activation), one
 * row in activation_of (src/activation.c) and one value of the `act` variant
 * key (src/variant.c); tests/test_gradcheck.c checks each one.
 *
 * ReLU's forward IS the fused bias + ReLU + counting kernel of metrics.c (its
 * fast path: no extra sweep, in place). Others may build on it: relu2 runs
 * the kernel into the kept buffer, then squares. */
#ifndef RELUSCOPE_ACTIVATION_H
#define RELUSCOPE_ACTIVATION_H
#include <stdint.h>
#include "metrics.h"

typedef struct Activation {
    const char *name;    /* as the `act` variant key spells it */
    /* 0: forward runs in place (act == pre) and the backward reads g(x) only.
     * 1: the model keeps pre[L][N][F] apart from act for the backward, and
     *    forward may leave in it whatever its backward reads (relu2: max(x, 0)). */
    int needs_pre;
    /* 1: g is ReLU as far as the sparse MLP path (mlp_sparse.h) is concerned:
     * forward builds its per-token lists of active units (when given some)
     * and its backward (which computes ReLU's derivative) may replace this
     * activation's. 0: the model never gives lists and always runs the dense
     * path with this backward. */
    int sparse_ok;
    /* x = pre[n][f] + bias[f] (the fc output and b_in; bias is a zero vector
     * without MLP bias); act = g(x); counts and pre_stats (of x) as
     * relu_count_forward does (either may be NULL). B sequences of T rows.
     * lists: the sparse path's lists to build, or NULL (always NULL unless
     * sparse_ok). */
    void (*forward)(float *act, float *pre, const float *bias, int B, int T, int F,
                    UsageCounts *counts, PreactStats *pre_stats, uint8_t *seen_scratch,
                    struct ActiveList *lists);
    /* dpre = dact ⊙ g'(x) (dpre may be dact: in place); dbias += Σ rows of
     * dpre unless dbias is NULL. act: g(x) from the forward; pre: the kept
     * buffer (NULL unless needs_pre). N rows of F. */
    void (*backward)(float *dpre, float *dbias, const float *dact, const float *act,
                     const float *pre, int N, int F);
} Activation;

extern const Activation ACTIVATION_RELU;    /* src/act_relu.c */
extern const Activation ACTIVATION_RELU2;   /* src/act_relu2.c: g(x) = max(x, 0)²,
                                             * never rounded to 0 for x > 0 */

/* The activation of an ActKind value (config.h); NULL if none. */
const Activation *activation_of(int act_kind);

/* ReLU's backward, also called directly by the layer tests:
 * dinp[N][C] = dout * (act > 0), in place allowed; dbias += Σ rows (if not NULL). */
void relu_backward(float *dinp, float *dbias, const float *dout, const float *act,
                   int N, int C);

#endif
