/* attention.c — causal multi-head attention, forward and backward.
 *
 * Two choices, both measured (docs/performance.md):
 *
 * 1. No T × T probability matrix is kept. The forward keeps, per query row,
 *    the log-sum-exp of its scaled scores; the backward recomputes a block of
 *    probabilities from it. Storing P costs B·h·T² floats per layer (200 MB a
 *    step at size M, 400 MB at P) written once and read twice: that memory
 *    traffic, not arithmetic, was most of attention's time. Recomputing adds
 *    one product of the six (+17% attention FLOPs) and runs from L1.
 *
 * 2. Not cblas_sgemm: per (sequence, head) the products are tiny (head size
 *    32-64 is the inner dimension of QKᵀ), and OpenBLAS spends its time
 *    packing (36-53 GFLOP/s measured). Every product here has one shape: up
 *    to 8 output rows of 16 floats, each a weighted sum of rows of 16 floats,
 *
 *        out[r][0..16) (+)= Σ_k w[r·wr + k·wk] · x[k·xs + 0..16)
 *
 *    which `combine_rows` computes with 8 rows × 32 floats of accumulators in
 *    registers (two loads of x and 8 broadcasts, 16 multiply-adds per k). QKᵀ, P·V, dY·Vᵀ, dS·K,
 *    dSᵀ·Q and Pᵀ·dY are all this with different strides. K and V are first
 *    transposed or packed per head (rows 3C floats apart map onto a few L1
 *    cache sets; packed rows do not), with the head size padded to a multiple
 *    of 16 with zeros, so any head size works.
 *
 * Queries go in blocks of 16 rows against the keys up to the block's last row
 * (the masked upper triangle is never computed). Layouts: qkv[B][T][3C]
 * (q | k | v; head h at channels h·hs of each), out/dout[B][T][C],
 * lse[B][NH][T]. The backward writes every element of dqkv (each row block of
 * dQ once, dK and dV once per head), so dqkv needs no zeroing first. */
#include "layers.h"
#include <math.h>
#include <string.h>
#include "vecmath.h"

/* 16 floats; may_alias + aligned(4): loads and stores anywhere in a float
 * array (unaligned moves, no strict-aliasing assumptions). */
typedef float vf16 __attribute__((vector_size(64), aligned(4), may_alias));

#define ROWS 8     /* output rows of combine_rows */
#define QBLOCK 16  /* query rows per block: the k-range of the dK, dV products */

static int round16(int n) { return (n + 15) & ~15; }

/* Row stride of a transposed K / V: a multiple of 16 floats that is not a
 * multiple of 256 (1 KB), so walking down its rows does not map them all to
 * the same few L1 sets. */
static int transposed_stride(int T) { return round16(T) + 16; }

/* The scratch of one (sequence, head); Head views it. */
typedef struct {
    int T, hs, hsp, Tp, ldt;   /* hsp: head size rounded up to 16 */
    float *kt, *vt;            /* [hs][ldt] transposed K, V */
    float *kh, *vh;            /* [T][hsp] packed K, V */
    float *dkh, *dvh;          /* [T][hsp] dK, dV accumulators */
    float *pb, *db;            /* [QBLOCK][Tp] probabilities, dP then dS */
    float *qb, *dyb, *ob;      /* [QBLOCK][hsp] packed block rows: q, dy, output */
} Head;

/* Point h's views into mem (if not NULL); returns the floats they take. */
static size_t head_layout(Head *h, float *mem, int T, int hs) {
    h->T = T; h->hs = hs; h->hsp = round16(hs); h->Tp = round16(T);
    h->ldt = transposed_stride(T);
    size_t tr = (size_t)hs * h->ldt, pk = (size_t)T * h->hsp;
    size_t bl = (size_t)QBLOCK * h->Tp, rw = (size_t)QBLOCK * h->hsp;
    float **views[] = {&h->kt, &h->vt, &h->kh, &h->vh, &h->dkh, &h->dvh,
                       &h->pb, &h->db, &h->qb, &h->dyb, &h->ob};
    size_t sizes[] = {tr, tr, pk, pk, pk, pk, bl, bl, rw, rw, rw}, off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        *views[i] = mem ? mem + off : NULL;
        off += sizes[i];
    }
    return off;
}

size_t attention_scratch_floats(int T, int hs) {
    Head h;
    return head_layout(&h, NULL, T, hs);
}

/* out[r][0..16·NV) = (accumulate ? out : 0) + Σ_{k0<=k<k1} w[r·wr + k·wk]·x[k·xs + 0..16·NV)
 * for r < R, NV = 1 or 2 vectors of 16. Inlined with R and NV constants, the
 * R·NV accumulators live in registers; NV = 2 uses each broadcast weight
 * twice (measured 1.3x faster than NV = 1 on hot data). */
static inline __attribute__((always_inline)) void
combine_rows(float *out, size_t os, const float *w, size_t wr, size_t wk, const float *x,
             size_t xs, int k0, int k1, int R, int NV, int accumulate) {
    vf16 acc[ROWS][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++)
            acc[r][v] = accumulate ? *(const vf16 *)(out + r * os + 16 * v) : (vf16){0};
    for (int k = k0; k < k1; k++) {
        vf16 xv[2];
        for (int v = 0; v < NV; v++) xv[v] = *(const vf16 *)(x + (size_t)k * xs + 16 * v);
        const float *wrow = w + (size_t)k * wk;
        for (int r = 0; r < R; r++) {
            float wt = wrow[r * wr];
            for (int v = 0; v < NV; v++) acc[r][v] += wt * xv[v];
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) *(vf16 *)(out + r * os + 16 * v) = acc[r][v];
}

/* combine_rows over `rows` output rows: 8 at a time, then one by one. */
static inline __attribute__((always_inline)) void
combine_block(float *out, size_t os, const float *w, size_t wr, size_t wk, const float *x,
              size_t xs, int k0, int k1, int rows, int NV, int accumulate) {
    int r = 0;
    for (; r + ROWS <= rows; r += ROWS)
        combine_rows(out + r * os, os, w + r * wr, wr, wk, x, xs, k0, k1, ROWS, NV, accumulate);
    for (; r < rows; r++)
        combine_rows(out + r * os, os, w + r * wr, wr, wk, x, xs, k0, k1, 1, NV, accumulate);
}

/* out[rows][width] (+)= W[rows][k0..k1) · X[k0..k1)[width], width a multiple
 * of 16: 32 columns at a time, then the last 16 if any. */
static void combine(float *out, size_t os, const float *w, size_t wr, size_t wk,
                    const float *x, size_t xs, int k0, int k1, int rows, int width,
                    int accumulate) {
    int c = 0;
    for (; c + 32 <= width; c += 32)
        combine_block(out + c, os, w, wr, wk, x + c, xs, k0, k1, rows, 2, accumulate);
    if (c < width)
        combine_block(out + c, os, w, wr, wk, x + c, xs, k0, k1, rows, 1, accumulate);
}

/* dst[c][j] = src[j·stride + c] for c < hs, j < T; zeros up to ld. Row by
 * row of src: walking down a column of src instead would touch one cache
 * line per element, in the few L1 sets that rows 3C floats apart share. */
static void transpose_rows(float *dst, size_t ld, const float *src, size_t stride, int T,
                           int hs) {
    for (int j = 0; j < T; j++) {
        const float *s = src + (size_t)j * stride;
        for (int c = 0; c < hs; c++) dst[(size_t)c * ld + j] = s[c];
    }
    for (int c = 0; c < hs; c++)
        for (size_t j = T; j < ld; j++) dst[(size_t)c * ld + j] = 0.0f;
}

/* dst[n][hsp] = src rows (stride apart), hs floats each, zero-padded. */
static void pack_rows(float *dst, int hsp, const float *src, size_t stride, int n, int hs) {
    for (int j = 0; j < n; j++) {
        float *d = dst + (size_t)j * hsp;
        memcpy(d, src + (size_t)j * stride, (size_t)hs * sizeof(float));
        for (int c = hs; c < hsp; c++) d[c] = 0.0f;
    }
}

/* dst rows (stride apart) = the first hs floats of src[n][hsp] rows. */
static void unpack_rows(float *dst, size_t stride, const float *src, int hsp, int n, int hs) {
    for (int j = 0; j < n; j++)
        memcpy(dst + (size_t)j * stride, src + (size_t)j * hsp, (size_t)hs * sizeof(float));
}

/* Row i of the block: p[0..i] = exp(scale · s − max) in place, unnormalized
 * (the output row is scaled by *inv = 1/Σ instead: hs multiplies, not i),
 * zeros on i+1..width-1; returns log Σ_j exp(scale · s_j). */
static float causal_softmax(float *p, float scale, int i, int width, float *inv) {
    float mx = -INFINITY;
    #pragma omp simd reduction(max:mx)
    for (int j = 0; j <= i; j++) mx = p[j] * scale > mx ? p[j] * scale : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int j = 0; j <= i; j++) { p[j] = exp_softmax(p[j] * scale - mx); sum += p[j]; }
    for (int j = i + 1; j < width; j++) p[j] = 0.0f;
    *inv = 1.0f / sum;
    return mx + logf(sum);
}

/* Row i of the block, from the forward's log-sum-exp: p[0..i] =
 * exp(scale · s − lse) in place, zeros on i+1..width-1. */
static void causal_probs(float *p, float scale, float lse, int i, int width) {
    #pragma omp simd
    for (int j = 0; j <= i; j++) p[j] = exp_softmax(p[j] * scale - lse);
    for (int j = i + 1; j < width; j++) p[j] = 0.0f;
}

/* ds[0..i] = scale · p ⊙ (dp − Σ p·dp) in place over dp, zeros after. */
static void causal_softmax_backward(float *ds, const float *p, float scale, int i, int width) {
    float dot = 0.0f;
    #pragma omp simd reduction(+:dot)
    for (int j = 0; j <= i; j++) dot += p[j] * ds[j];
    #pragma omp simd
    for (int j = 0; j <= i; j++) ds[j] = p[j] * (ds[j] - dot) * scale;
    for (int j = i + 1; j < width; j++) ds[j] = 0.0f;
}

/* Scores of query rows i0..i0+rows-1 against keys 0..keys-1 (rounded up to
 * 16) into h->pb: pb[r][j] = q[i0+r] · k[j]. */
static void block_scores(const Head *h, const float *q, size_t qs, int i0, int rows, int keys) {
    combine(h->pb, h->Tp, q + (size_t)i0 * qs, qs, 1, h->kt, h->ldt, 0, h->hs, rows,
            round16(keys), 0);
}

static void head_forward(Head *h, float *y, size_t ys, float *lse, const float *q,
                         const float *k, const float *v, size_t qs) {
    int T = h->T;
    float scale = 1.0f / sqrtf((float)h->hs);
    transpose_rows(h->kt, h->ldt, k, qs, T, h->hs);
    pack_rows(h->vh, h->hsp, v, qs, T, h->hs);
    for (int i0 = 0; i0 < T; i0 += QBLOCK) {
        int rows = T - i0 < QBLOCK ? T - i0 : QBLOCK, keys = i0 + rows;
        float inv[QBLOCK];
        block_scores(h, q, qs, i0, rows, keys);
        for (int r = 0; r < rows; r++)
            lse[i0 + r] = causal_softmax(h->pb + (size_t)r * h->Tp, scale, i0 + r, keys, &inv[r]);
        /* y[i0+r] = (Σ_{j<keys} e[r][j] v[j]) / Σ_j e[r][j] */
        combine(h->ob, h->hsp, h->pb, h->Tp, 1, h->vh, h->hsp, 0, keys, rows, h->hsp, 0);
        for (int r = 0; r < rows; r++) {
            const float *o = h->ob + (size_t)r * h->hsp;
            float *yr = y + (size_t)(i0 + r) * ys;
            #pragma omp simd
            for (int c = 0; c < h->hs; c++) yr[c] = o[c] * inv[r];
        }
    }
}

/* One pass over blocks of QBLOCK query rows: recompute the block's P, then dQ of
 * the block gathers from the keys before it, and dK, dV of those keys
 * receive from the block (packed accumulators, written to dqkv at the end). */
static void head_backward(Head *h, float *dq, float *dk, float *dv, const float *dy,
                          size_t ys, const float *lse, const float *q, const float *k,
                          const float *v, size_t qs) {
    int T = h->T, hs = h->hs, hsp = h->hsp, Tp = h->Tp;
    float scale = 1.0f / sqrtf((float)hs);
    transpose_rows(h->kt, h->ldt, k, qs, T, hs);
    transpose_rows(h->vt, h->ldt, v, qs, T, hs);
    pack_rows(h->kh, hsp, k, qs, T, hs);
    memset(h->dkh, 0, 2 * (size_t)T * hsp * sizeof(float));   /* dkh, dvh */
    for (int i0 = 0; i0 < T; i0 += QBLOCK) {
        int rows = T - i0 < QBLOCK ? T - i0 : QBLOCK, keys = i0 + rows;
        block_scores(h, q, qs, i0, rows, keys);
        for (int r = 0; r < rows; r++)
            causal_probs(h->pb + (size_t)r * Tp, scale, lse[i0 + r], i0 + r, keys);
        pack_rows(h->qb, hsp, q + (size_t)i0 * qs, qs, rows, hs);
        pack_rows(h->dyb, hsp, dy + (size_t)i0 * ys, ys, rows, hs);
        /* dP[r][j] = dy[i0+r] · v[j], then dS in place */
        combine(h->db, Tp, h->dyb, hsp, 1, h->vt, h->ldt, 0, hs, rows, round16(keys), 0);
        for (int r = 0; r < rows; r++)
            causal_softmax_backward(h->db + (size_t)r * Tp, h->pb + (size_t)r * Tp, scale,
                                    i0 + r, keys);
        /* dq[i0+r] = Σ_j dS[r][j] k[j] */
        combine(h->ob, hsp, h->db, Tp, 1, h->kh, hsp, 0, keys, rows, hsp, 0);
        unpack_rows(dq + (size_t)i0 * qs, qs, h->ob, hsp, rows, hs);
        /* dk[j] += Σ_r dS[r][j] q[i0+r];  dv[j] += Σ_r P[r][j] dy[i0+r]  (j < keys;
         * entries above the diagonal are exact zeros) */
        combine(h->dkh, hsp, h->db, 1, Tp, h->qb, hsp, 0, rows, keys, hsp, 1);
        combine(h->dvh, hsp, h->pb, 1, Tp, h->dyb, hsp, 0, rows, keys, hsp, 1);
    }
    unpack_rows(dk, qs, h->dkh, hsp, T, hs);
    unpack_rows(dv, qs, h->dvh, hsp, T, hs);
}

void attention_forward(float *out, float *lse, const float *qkv, float *scratch,
                       int B, int T, int C, int NH) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    Head h;
    head_layout(&h, scratch, T, hs);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < NH; n++) {
            const float *q = qkv + (size_t)b * T * C3 + (size_t)n * hs;
            head_forward(&h, out + (size_t)b * T * C + (size_t)n * hs, C,
                         lse + ((size_t)b * NH + n) * T, q, q + C, q + 2 * C, C3);
        }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *lse, float *scratch, int B, int T, int C, int NH) {
    int hs = C / NH;
    size_t C3 = 3 * (size_t)C;
    Head h;
    head_layout(&h, scratch, T, hs);
    for (int b = 0; b < B; b++)
        for (int n = 0; n < NH; n++) {
            size_t off = (size_t)b * T * C3 + (size_t)n * hs;
            float *dq = dqkv + off;
            const float *q = qkv + off;
            head_backward(&h, dq, dq + C, dq + 2 * C, dout + (size_t)b * T * C + (size_t)n * hs,
                          C, lse + ((size_t)b * NH + n) * T, q, q + C, q + 2 * C, C3);
        }
}

/* ---- rotary position embedding (layers.h) ---- */

void rope_tables(float *cos_t, float *sin_t, int T, int hs) {
    int half = hs / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double angle = t * pow(10000.0, -2.0 * i / hs);   /* in double: exact to float */
            cos_t[(size_t)t * half + i] = (float)cos(angle);
            sin_t[(size_t)t * half + i] = (float)sin(angle);
        }
}

/* Turn every head of the q and k parts of B*T rows by sign·(t·θ_i). */
static void rope_turn(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                      int NH, float sign) {
    int hs = C / NH, half = hs / 2;
    for (size_t n = 0; n < (size_t)B * T; n++) {
        size_t t = n % (size_t)T;
        const float *cs = cos_t + t * half, *sn = sin_t + t * half;
        float *row = qkv + n * 3 * (size_t)C;
        for (int part = 0; part < 2 * NH; part++) {   /* q heads, then k heads */
            float *x = row + (size_t)part * hs, *y = x + half;
            #pragma omp simd
            for (int i = 0; i < half; i++) {
                float a = x[i], b = y[i], s = sign * sn[i];
                x[i] = a * cs[i] - b * s;
                y[i] = a * s + b * cs[i];
            }
        }
    }
}

void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                  int NH) {
    rope_turn(qkv, cos_t, sin_t, B, T, C, NH, 1.0f);
}

void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                   int NH) {
    rope_turn(dqkv, cos_t, sin_t, B, T, C, NH, -1.0f);
}
