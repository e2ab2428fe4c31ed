/* attention.c — causal multi-head attention, forward and backward.
 *
 * Why not cblas_sgemm here: per (sequence, head) the products are tiny
 * (head size 32-64 is the inner dimension of QKᵀ) and causal, so OpenBLAS
 * spends its time packing and in call overhead (36-53 GFLOP/s measured at
 * the benchmark sizes, against 100-145 for the model's big GEMMs). Every
 * product of attention has one shape instead: a block of up to 8 output rows
 * of 16 floats, each row a weighted sum of rows of 16 floats
 *
 *     out[r][0..16) (+)= Σ_k w[r·wr + k·wk] · x[k·xs + 0..16)
 *
 * which `combine16` computes with 8 vector accumulators in registers (one
 * load of x and 8 broadcast multiply-adds per k). QKᵀ, P·V, dY·Vᵀ, dS·K,
 * dSᵀ·Q and Pᵀ·dY are all this with different strides: K and V are first
 * transposed per head so that 16 keys are contiguous. Only the causal part
 * is computed (to the next multiple of 16 keys). Head sizes that are not a
 * multiple of 16 take the blocked-GEMM path at the end of the file.
 *
 * Layouts: qkv[B][T][3C] (q | k | v; head h at channels h·hs of each),
 * out/dout[B][T][C], att[B][NH][T][T] softmax probabilities with exact zeros
 * above the diagonal. Backward accumulates into dqkv. */
#include "layers.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "vecmath.h"

/* 16 floats; may_alias + aligned(4): loads and stores anywhere in a float
 * array (unaligned moves, no strict-aliasing assumptions). */
typedef float vf16 __attribute__((vector_size(64), aligned(4), may_alias));

#define ROWS 8          /* output rows per combine16 block */
#define ATT_BLOCK 64    /* row block of the GEMM path */

static int round16(int n) { return (n + 15) & ~15; }

/* Row stride of the transposed K / V: a multiple of 16 floats that is not a
 * multiple of 256 (1 KB), so walking down its rows does not map every row to
 * the same few L1 sets. */
static int transposed_stride(int T) { return round16(T) + 16; }

size_t attention_scratch_floats(int T, int hs) {
    size_t Tp = (size_t)round16(T), ldt = (size_t)transposed_stride(T), th = (size_t)T * hs;
    size_t forward = (size_t)hs * ldt + th + ROWS * Tp;                /* kt, vh, s */
    size_t backward = (size_t)hs * ldt + 3 * th + ROWS * Tp;           /* vt, kh, dkh, dvh, dp */
    size_t gemm = (size_t)T * T;                                       /* dP of the GEMM path */
    size_t n = forward > backward ? forward : backward;
    return n > gemm ? n : gemm;
}

/* out[r][0..16) = (accumulate ? out : 0) + Σ_{k0<=k<k1} w[r·wr + k·wk]·x[k·xs + 0..16)
 * for r < R. Inlined with R a constant, the accumulators live in registers. */
static inline __attribute__((always_inline)) void
combine16(float *out, size_t os, const float *w, size_t wr, size_t wk,
          const float *x, size_t xs, int k0, int k1, int R, int accumulate) {
    vf16 acc[ROWS];
    for (int r = 0; r < R; r++)
        acc[r] = accumulate ? *(const vf16 *)(out + r * os) : (vf16){0};
    for (int k = k0; k < k1; k++) {
        vf16 xv = *(const vf16 *)(x + (size_t)k * xs);
        const float *wrow = w + (size_t)k * wk;
        for (int r = 0; r < R; r++) acc[r] += wrow[r * wr] * xv;
    }
    for (int r = 0; r < R; r++) *(vf16 *)(out + r * os) = acc[r];
}

/* combine16 over `rows` output rows, 8 at a time, every 16-float column
 * chunk of `width`: out[rows][width] (+)= W[rows][k] · X[k][width]. */
static void combine(float *out, size_t os, const float *w, size_t wr, size_t wk,
                    const float *x, size_t xs, int k0, int k1, int rows, int width,
                    int accumulate) {
    for (int c = 0; c < width; c += 16) {
        int r = 0;
        for (; r + ROWS <= rows; r += ROWS)
            combine16(out + r * os + c, os, w + r * wr, wr, wk, x + c, xs, k0, k1, ROWS,
                      accumulate);
        for (; r < rows; r++)
            combine16(out + r * os + c, os, w + r * wr, wr, wk, x + c, xs, k0, k1, 1,
                      accumulate);
    }
}

/* dst[c][j] = src[j·stride + c]: hs × T, rows ld apart, padded with zeros. */
static void transpose_head(float *dst, size_t ld, const float *src, size_t stride, int T,
                           int hs) {
    for (int c = 0; c < hs; c++) {
        float *d = dst + (size_t)c * ld;
        for (int j = 0; j < T; j++) d[j] = src[(size_t)j * stride + c];
        for (size_t j = T; j < ld; j++) d[j] = 0.0f;
    }
}

/* dst[T][hs] = the head's rows of src (rows `stride` apart), packed: rows
 * 3C floats apart share a few L1 sets, packed rows do not. */
static void pack_head(float *dst, const float *src, size_t stride, int T, int hs) {
    for (int j = 0; j < T; j++) memcpy(dst + (size_t)j * hs, src + (size_t)j * stride,
                                       (size_t)hs * sizeof(float));
}

/* p[0..T) = softmax(scale · s[0..i]) on 0..i, zeros after. */
static void causal_softmax(float *p, const float *s, float scale, int i, int T) {
    float mx = -INFINITY;
    #pragma omp simd reduction(max:mx)
    for (int j = 0; j <= i; j++) mx = s[j] * scale > mx ? s[j] * scale : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int j = 0; j <= i; j++) { p[j] = exp_softmax(s[j] * scale - mx); sum += p[j]; }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j <= i; j++) p[j] *= inv;
    for (int j = i + 1; j < T; j++) p[j] = 0.0f;
}

/* ds[0..T) = scale · p ⊙ (dp − Σ p·dp) on 0..i, zeros after. */
static void causal_softmax_backward(float *ds, const float *p, const float *dp,
                                    float scale, int i, int T) {
    float dot = 0.0f;
    #pragma omp simd reduction(+:dot)
    for (int j = 0; j <= i; j++) dot += p[j] * dp[j];
    #pragma omp simd
    for (int j = 0; j <= i; j++) ds[j] = p[j] * (dp[j] - dot) * scale;
    for (int j = i + 1; j < T; j++) ds[j] = 0.0f;
}

/* One (sequence, head), head size a multiple of 16. */
static void head_forward(float *y, float *p, const float *q, const float *k, const float *v,
                         float *scratch, int T, int C, int hs) {
    size_t C3 = 3 * (size_t)C, th = (size_t)T * hs;
    int Tp = round16(T), ldt = transposed_stride(T);
    float scale = 1.0f / sqrtf((float)hs);
    float *kt = scratch;                          /* [hs][ldt] */
    float *vh = kt + (size_t)hs * ldt;            /* [T][hs] */
    float *s = vh + th;                           /* [ROWS][Tp] scores */
    transpose_head(kt, ldt, k, C3, T, hs);
    pack_head(vh, v, C3, T, hs);
    for (int i0 = 0; i0 < T; i0 += ROWS) {
        int rows = T - i0 < ROWS ? T - i0 : ROWS, keys = i0 + rows;
        /* s[r][j] = q[i0+r] · k[j], j < keys (rounded up to 16) */
        combine(s, Tp, q + i0 * C3, C3, 1, kt, ldt, 0, hs, rows, round16(keys), 0);
        for (int r = 0; r < rows; r++)
            causal_softmax(p + (size_t)(i0 + r) * T, s + (size_t)r * Tp, scale, i0 + r, T);
        /* y[i0+r] = Σ_{j<keys} p[i0+r][j] v[j] */
        combine(y + i0 * (size_t)C, C, p + (size_t)i0 * T, T, 1, vh, hs, 0, keys, rows, hs, 0);
    }
}

/* dst rows (stride apart) += src[T][hs] */
static void add_head(float *dst, size_t stride, const float *src, int T, int hs) {
    for (int j = 0; j < T; j++) {
        float *d = dst + (size_t)j * stride;
        const float *s = src + (size_t)j * hs;
        #pragma omp simd
        for (int c = 0; c < hs; c++) d[c] += s[c];
    }
}

/* One (sequence, head), head size a multiple of 16: dq, dk, dv += …, in one
 * pass over blocks of 8 query rows: dq of the block gathers from the keys
 * before it; dk and dv of those keys receive from the block (into packed
 * accumulators, added to dqkv at the end). */
static void head_backward(float *dq, float *dk, float *dv, const float *dy,
                          const float *q, const float *k, const float *v, const float *p,
                          float *scratch, int T, int C, int hs) {
    size_t C3 = 3 * (size_t)C, th = (size_t)T * hs;
    int Tp = round16(T), ldt = transposed_stride(T);
    float scale = 1.0f / sqrtf((float)hs);
    float *vt = scratch;                          /* [hs][ldt] */
    float *kh = vt + (size_t)hs * ldt;            /* [T][hs] */
    float *dkh = kh + th, *dvh = dkh + th;        /* [T][hs] each */
    float *ds = dvh + th;                         /* [ROWS][Tp]: dP, then dS in place */
    transpose_head(vt, ldt, v, C3, T, hs);
    pack_head(kh, k, C3, T, hs);
    memset(dkh, 0, 2 * th * sizeof(float));
    for (int i0 = 0; i0 < T; i0 += ROWS) {
        int rows = T - i0 < ROWS ? T - i0 : ROWS, keys = i0 + rows;
        /* dP[r][j] = dy[i0+r] · v[j]; then dS = scale · P ⊙ (dP − Σ P·dP) */
        combine(ds, Tp, dy + i0 * (size_t)C, C, 1, vt, ldt, 0, hs, rows, round16(keys), 0);
        for (int r = 0; r < rows; r++)
            causal_softmax_backward(ds + (size_t)r * Tp, p + (size_t)(i0 + r) * T,
                                    ds + (size_t)r * Tp, scale, i0 + r, keys);
        /* dq[i0+r] += Σ_j dS[r][j] k[j] */
        combine(dq + i0 * C3, C3, ds, Tp, 1, kh, hs, 0, keys, rows, hs, 1);
        /* dk[j] += Σ_r dS[r][j] q[i0+r];  dv[j] += Σ_r P[i0+r][j] dy[i0+r]  (j < keys) */
        combine(dkh, hs, ds, 1, Tp, q + i0 * C3, C3, 0, rows, keys, hs, 1);
        combine(dvh, hs, p + (size_t)i0 * T, 1, T, dy + i0 * (size_t)C, C, 0, rows, keys, hs, 1);
    }
    add_head(dk, C3, dkh, T, hs);
    add_head(dv, C3, dvh, T, hs);
}

/* ---- head sizes not a multiple of 16: batched GEMMs over causal row blocks ---- */

static void head_forward_gemm(float *y, float *p, const float *q, const float *k,
                              const float *v, int T, int C, int hs) {
    int C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        /* rows i0..i1-1 attend to columns 0..i1-1 only */
        int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hs, 1.0f,
                    q + (size_t)i0 * C3, C3, k, C3, 0.0f, p + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++)
            causal_softmax(p + (size_t)i * T, p + (size_t)i * T, scale, i, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, i1, 1.0f,
                    p + (size_t)i0 * T, T, v, C3, 0.0f, y + (size_t)i0 * C, C);
    }
}

static void head_backward_gemm(float *dq, float *dk, float *dv, const float *dy,
                               const float *q, const float *k, const float *v,
                               const float *p, float *dp, int T, int C, int hs) {
    int C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
        /* dP = dY · Vᵀ on rows i0..i1, columns 0..i1; then dS in place */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hs, 1.0f,
                    dy + (size_t)i0 * C, C, v, C3, 0.0f, dp + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++)
            causal_softmax_backward(dp + (size_t)i * T, p + (size_t)i * T,
                                    dp + (size_t)i * T, scale, i, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, i1, 1.0f,
                    dp + (size_t)i0 * T, T, k, C3, 1.0f, dq + (size_t)i0 * C3, C3);
    }
    for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
        /* columns j0..j1 receive from rows j0..T only (causal) */
        int j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T, cols = j1 - j0, rows = T - j0;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f,
                    dp + (size_t)j0 * T + j0, T, q + (size_t)j0 * C3, C3, 1.0f,
                    dk + (size_t)j0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f,
                    p + (size_t)j0 * T + j0, T, dy + (size_t)j0 * C, C, 1.0f,
                    dv + (size_t)j0 * C3, C3);
    }
}

void attention_forward(float *out, float *att, const float *qkv, float *scratch,
                       int B, int T, int C, int NH) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)h * hs;
            float *y = out + (size_t)b * T * C + (size_t)h * hs;
            float *p = att + ((size_t)b * NH + h) * T * T;
            if (hs % 16 == 0) head_forward(y, p, q, q + C, q + 2 * C, scratch, T, C, hs);
            else head_forward_gemm(y, p, q, q + C, q + 2 * C, T, C, hs);
        }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *att, float *scratch, int B, int T, int C, int NH) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t qoff = (size_t)b * T * C3 + (size_t)h * hs;
            float *dq = dqkv + qoff;
            const float *q = qkv + qoff, *dy = dout + (size_t)b * T * C + (size_t)h * hs;
            const float *p = att + ((size_t)b * NH + h) * T * T;
            if (hs % 16 == 0)
                head_backward(dq, dq + C, dq + 2 * C, dy, q, q + C, q + 2 * C, p, scratch,
                              T, C, hs);
            else
                head_backward_gemm(dq, dq + C, dq + 2 * C, dy, q, q + C, q + 2 * C, p,
                                   scratch, T, C, hs);
        }
}
