/* test_layers.c — the layers' forward values and the attention's gradients
 * against naive double-precision implementations of SPEC §2, at the shapes
 * the attention kernels special-case: head sizes that are multiples of 16
 * (16, 32, 64) and that are padded to one (4, 24), sequence lengths that are
 * not multiples of the 8-row and 16-key blocks, one token. (test_gradcheck
 * checks the backward passes against finite differences of these forwards.) */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "layers.h"
#include "rng.h"

static Rng rng;
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * rng_normal(&rng);
}

/* worst |got − want| / (atol + |want|) over n values, as a fraction of rtol */
static double worst_rel(const float *got, const double *want, size_t n, double atol) {
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (atol + fabs(want[i]));
        if (!(e <= w)) w = e;   /* NaN counts as worst */
    }
    return w;
}

/* ---- attention: naive forward and backward in double ---- */
typedef struct { int B, T, C, NH; } Shape;

static void ref_attention(const Shape *s, const float *qkv, const float *dout,
                          double *out, double *lse, double *dqkv) {
    int T = s->T, C = s->C, hs = C / s->NH, C3 = 3 * C;
    double scale = 1.0 / sqrt((double)hs);
    double *p = malloc(sizeof(double) * T), *dp = malloc(sizeof(double) * T);
    double *arow = malloc(sizeof(double) * T);
    memset(dqkv, 0, sizeof(double) * s->B * T * C3);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++) {
            const float *base = qkv + (size_t)b * T * C3 + h * hs;
            double *dbase = dqkv + (size_t)b * T * C3 + h * hs;
            for (int i = 0; i < T; i++) {
                const float *q = base + (size_t)i * C3;
                double mx = -INFINITY, sum = 0.0;
                for (int j = 0; j <= i; j++) {
                    double dot = 0.0;
                    for (int c = 0; c < hs; c++) dot += (double)q[c] * base[(size_t)j * C3 + C + c];
                    p[j] = dot * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= i; j++) { p[j] = exp(p[j] - mx); sum += p[j]; }
                lse[((size_t)b * s->NH + h) * T + i] = mx + log(sum);
                for (int j = 0; j <= i; j++) arow[j] = p[j] / sum;
                const float *dy = dout + ((size_t)b * T + i) * C + h * hs;
                double *o = out + ((size_t)b * T + i) * C + h * hs, pdp = 0.0;
                for (int c = 0; c < hs; c++) o[c] = 0.0;
                for (int j = 0; j <= i; j++) {
                    const float *v = base + (size_t)j * C3 + 2 * C;
                    dp[j] = 0.0;
                    for (int c = 0; c < hs; c++) {
                        o[c] += arow[j] * v[c];
                        dp[j] += (double)dy[c] * v[c];
                        dbase[(size_t)j * C3 + 2 * C + c] += arow[j] * dy[c];   /* dV */
                    }
                    pdp += arow[j] * dp[j];
                }
                for (int j = 0; j <= i; j++) {
                    double ds = arow[j] * (dp[j] - pdp) * scale;
                    for (int c = 0; c < hs; c++) {
                        dbase[(size_t)i * C3 + c] += ds * base[(size_t)j * C3 + C + c];   /* dQ */
                        dbase[(size_t)j * C3 + C + c] += ds * q[c];                     /* dK */
                    }
                }
            }
        }
    free(p);
    free(dp);
    free(arow);
}

static void test_attention_shape(Shape s) {
    int hs = s.C / s.NH;
    size_t nq = (size_t)s.B * s.T * 3 * s.C, no = (size_t)s.B * s.T * s.C;
    size_t na = (size_t)s.B * s.NH * s.T;   /* log-sum-exp per query row */
    float *qkv = malloc(nq * 4), *dout = malloc(no * 4), *out = malloc(no * 4);
    float *lse = malloc(na * 4), *dqkv = malloc(nq * 4);
    float *scratch = malloc(attention_scratch_floats(s.T, hs) * 4);
    double *rout = malloc(no * 8), *rlse = malloc(na * 8), *rdqkv = malloc(nq * 8);
    fill(qkv, nq, 1.0f);
    fill(dout, no, 1.0f);
    for (size_t i = 0; i < nq; i++) dqkv[i] = NAN;   /* the backward must write every element */
    attention_forward(out, lse, qkv, scratch, s.B, s.T, s.C, s.NH);
    attention_backward(dqkv, dout, qkv, lse, scratch, s.B, s.T, s.C, s.NH);
    ref_attention(&s, qkv, dout, rout, rlse, rdqkv);
    char what[96];
    snprintf(what, sizeof what, "B=%d T=%d C=%d NH=%d (hs %d%s)", s.B, s.T, s.C, s.NH,
             hs, hs % 16 ? ", padded" : "");
    double eo = worst_rel(out, rout, no, 1e-3), ea = worst_rel(lse, rlse, na, 1e-3);
    double eg = worst_rel(dqkv, rdqkv, nq, 1e-3);
    CHECK(eo < 1e-4, "attention out %s: relative error %.3g", what, eo);
    CHECK(ea < 1e-5, "attention log-sum-exp %s: relative error %.3g", what, ea);
    CHECK(eg < 1e-3, "attention dqkv %s: relative error %.3g", what, eg);
    free(qkv); free(dout); free(out); free(lse); free(dqkv); free(scratch);
    free(rout); free(rlse); free(rdqkv);
}

/* ---- LayerNorm and cross-entropy forwards ---- */
static void test_layernorm_values(void) {
    enum { N = 9, C = 100 };
    float x[N * C], w[C], b[C], out[N * C], mean[N], rstd[N];
    double want[N * C];
    fill(x, N * C, 3.0f); fill(w, C, 1.0f); fill(b, C, 1.0f);
    for (int i = 0; i < C; i++) x[i] += 50.0f;   /* a row with a large offset */
    layernorm_forward(out, mean, rstd, x, w, b, N, C);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[n * C + c] - m) * (x[n * C + c] - m);
        double s = 1.0 / sqrt(v / C + 1e-5);
        for (int c = 0; c < C; c++) want[n * C + c] = (x[n * C + c] - m) * s * w[c] + b[c];
    }
    double e = worst_rel(out, want, N * C, 1e-3);
    /* float32 sums: the offset row's mean (values ~50) is off by up to ~C/2
     * ulps of the sum, ~1e-4 of its standard deviation, in a sequential sum
     * (-O1 builds); the vectorized one is ~10x tighter */
    CHECK(e < 5e-4, "layernorm forward: relative error %.3g", e);
}

static void test_crossentropy_values(void) {
    enum { T = 7, V = 4099 };
    float *logits = malloc(T * V * 4);
    double *want = malloc(T * V * 8), wl[T];
    float losses[T];
    uint16_t tok[T + 1];
    fill(logits, T * V, 4.0f);
    for (int v = 0; v < V; v++) logits[V + v] -= 200.0f;   /* far-negative row */
    logits[2 * V + 5] = 90.0f;                              /* one dominant logit */
    for (int t = 0; t <= T; t++) tok[t] = (uint16_t)rng_below(&rng, V);
    tok[3] = 5;   /* row 2's target: the dominant logit */
    for (int t = 0; t < T; t++) {
        const float *l = logits + (size_t)t * V;
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++) if (l[v] > mx) mx = l[v];
        for (int v = 0; v < V; v++) sum += exp(l[v] - mx);
        for (int v = 0; v < V; v++) want[(size_t)t * V + v] = exp(l[v] - mx) / sum;
        wl[t] = log(sum) - (l[tok[t + 1]] - mx);
    }
    crossentropy_forward(logits, losses, tok + 1, T + 1, 1, T, V);
    double e = worst_rel(logits, want, (size_t)T * V, 1e-9);
    CHECK(e < 1e-5, "crossentropy probabilities: relative error %.3g", e);
    for (int t = 0; t < T; t++)
        CHECK_CLOSE(losses[t], wl[t], 1e-5, 1e-6, "crossentropy loss");
    free(logits);
    free(want);
}

int main(void) {
    rng_seed(&rng, 99, 0);
    test_attention_shape((Shape){2, 37, 32, 2});    /* hs 16, T not a multiple of 8 */
    test_attention_shape((Shape){1, 70, 64, 2});    /* hs 32 */
    test_attention_shape((Shape){1, 130, 128, 2});  /* hs 64, T past 8·16 */
    test_attention_shape((Shape){2, 8, 64, 1});     /* one row block */
    test_attention_shape((Shape){1, 1, 32, 2});     /* one token */
    test_attention_shape((Shape){2, 70, 8, 2});     /* hs 4, padded to 16 */
    test_attention_shape((Shape){1, 130, 48, 2});   /* hs 24, padded to 32 */
    test_attention_shape((Shape){3, 19, 80, 5});    /* hs 16, 5 heads, T = 16 + 3 */
    test_layernorm_values();
    test_crossentropy_values();
    return test_done("layers");
}
