/* mlp_sparse.c — the MLP's projection and backward on the active units
 * (the design is in mlp_sparse.h). Two implementations of each kernel: the
 * portable C loops, and AVX-512 kernels that hold a block of up to 64 of the
 * d columns in registers (4 vectors; masked lanes for a ragged last block).
 * Both sum in the same per-token order of units. */
#include "mlp_sparse.h"
#include <stdlib.h>
#include <string.h>
#include "util.h"
#ifdef __AVX512F__
#include <immintrin.h>
#endif

struct MlpSparse {
    MlpKernel kind;
    int L, max_rows, F, d;
    ActiveList *lists;   /* [L] */
    ActiveList spare;    /* auto: the storage of a layer that gave up (its unit,
                          * val, cap), handed to the next layer without lists */
    float *w1t;          /* [F][d] W1ᵀ of the layer being differentiated */
    float *dw1t;         /* [F][d] its gradient, added into dW1 at the end */
    float *g;            /* [g_cap] dPre of each active entry, when d > 64 (else
                          * it overwrites the entry's value in the lists) */
    size_t g_cap;
};

/* auto's early exit (active_list_reserve_row) */
#define AUTO_EARLY_FACTOR 1.0
#define AUTO_EARLY_ROWS 128

static int portable;
void mlp_sparse_set_portable(int on) { portable = on; }

/* ---- the lists ---- */

static void *grow(void *p, size_t bytes) {
    void *q = realloc(p, bytes);
    if (!q) die("out of memory: cannot grow the active lists to %zu bytes", bytes);
    return q;
}

int active_list_reserve_row(ActiveList *a, size_t used, int row) {
    if (used > a->limit) return 0;
    /* auto: give up as soon as the rows so far are clearly denser than the
     * crossover (AUTO_EARLY_RATE times it, after AUTO_EARLY_ROWS rows), so
     * that a dense layer pays for a fraction of its rows only (at 50% density
     * and the 0.40 crossover: 16% of 8192 rows) */
    if (a->early_rate > 0 &&
        (double)used > a->early_rate * (double)row * a->F + (double)AUTO_EARLY_ROWS * a->F)
        return 0;
    size_t need = used + (size_t)a->F;
    if (need <= a->cap) return 1;
    /* never beyond max_rows·F (the whole tensor), nor far past the limit */
    size_t whole = (size_t)a->max_rows * a->F;
    size_t top = a->limit + (size_t)a->F < whole ? a->limit + (size_t)a->F : whole;
    /* grow by a quarter: the lists' memory stays within 25% of the most a
     * layer needed (a few reallocations in the first steps, then reused) */
    size_t cap = a->cap + a->cap / 4 > need ? a->cap + a->cap / 4 : need;
    if (cap < 65536) cap = 65536;
    if (cap > top) cap = top;
    a->unit = grow(a->unit, (cap + ACTIVE_LIST_SLACK) * sizeof *a->unit);
    a->val = grow(a->val, (cap + ACTIVE_LIST_SLACK) * sizeof *a->val);
    a->cap = cap;
    return 1;
}

MlpSparse *mlp_sparse_create(MlpKernel kind, int L, int max_rows, int F, int d) {
    if (kind == MLP_DENSE) return NULL;
    if (L < 1 || max_rows < 1 || F < 1 || d < 1 || F > MLP_SPARSE_MAX_F)
        die("mlp_sparse_create: bad shape L=%d rows=%d F=%d d=%d (F <= %d)", L, max_rows, F, d,
            MLP_SPARSE_MAX_F);
    MlpSparse *s = xcalloc(1, sizeof *s);
    s->kind = kind;
    s->L = L; s->max_rows = max_rows; s->F = F; s->d = d;
    s->lists = xcalloc((size_t)L, sizeof *s->lists);
    for (int l = 0; l < L; l++) {
        ActiveList *a = &s->lists[l];
        a->start = xmalloc(((size_t)max_rows + 1) * sizeof *a->start);
        a->max_rows = max_rows;
        a->F = F;
    }
    s->w1t = xaligned_alloc((size_t)F * d * sizeof(float));
    s->dw1t = xaligned_alloc((size_t)F * d * sizeof(float));
    return s;
}

void mlp_sparse_free(MlpSparse *s) {
    if (!s) return;
    for (int l = 0; l < s->L; l++) {
        free(s->lists[l].unit);
        free(s->lists[l].val);
        free(s->lists[l].start);
    }
    free(s->lists);
    free(s->spare.unit);
    free(s->spare.val);
    free(s->w1t);
    free(s->dw1t);
    free(s->g);
    free(s);
}

/* Move the storage (unit, val, cap) of `from` into `to`, whose own is freed. */
static void move_storage(ActiveList *to, ActiveList *from) {
    free(to->unit);
    free(to->val);
    to->unit = from->unit; to->val = from->val; to->cap = from->cap;
    from->unit = NULL; from->val = NULL; from->cap = 0;
}

ActiveList *mlp_sparse_lists(MlpSparse *s, int l, int rows) {
    if (!s) return NULL;
    ActiveList *a = &s->lists[l];
    if (a->cap == 0 && s->spare.cap > 0) move_storage(a, &s->spare);
    /* sized from the measured need: lists that the last complete build
     * filled to less than half are cut to 25% above what it used (the ~50%
     * density of the first steps does not stay allocated for the whole run) */
    size_t used = a->complete && a->rows > 0 ? (size_t)a->start[a->rows] : a->cap;
    size_t want = used + used / 4 > 65536 ? used + used / 4 : 65536;
    if (a->cap > 2 * want) {
        a->unit = grow(a->unit, (want + ACTIVE_LIST_SLACK) * sizeof *a->unit);
        a->val = grow(a->val, (want + ACTIVE_LIST_SLACK) * sizeof *a->val);
        a->cap = want;
    }
    size_t whole = (size_t)rows * s->F;
    a->limit = s->kind == MLP_AUTO ? (size_t)(MLP_SPARSE_CROSSOVER * (double)whole) : whole;
    a->early_rate = s->kind == MLP_AUTO ? AUTO_EARLY_FACTOR * MLP_SPARSE_CROSSOVER : 0.0;
    a->complete = 0;
    return a;
}

void mlp_sparse_release(MlpSparse *s, int l) {
    if (!s || s->lists[l].complete) return;
    ActiveList *a = &s->lists[l];
    if (a->cap == 0) return;
    if (a->cap > s->spare.cap) {   /* keep the larger of the two */
        move_storage(&s->spare, a);
    } else {
        free(a->unit);
        free(a->val);
        a->unit = NULL; a->val = NULL; a->cap = 0;
    }
}

void mlp_sparse_drop(MlpSparse *s) {
    if (!s) return;
    for (int l = 0; l < s->L; l++) {
        ActiveList *a = &s->lists[l];
        free(a->unit);
        free(a->val);
        a->unit = NULL; a->val = NULL; a->cap = 0;
        a->complete = 0;
    }
    free(s->spare.unit);
    free(s->spare.val);
    s->spare.unit = NULL; s->spare.val = NULL; s->spare.cap = 0;
}

size_t mlp_sparse_bytes(const MlpSparse *s) {
    if (!s) return 0;
    size_t entries = s->spare.cap + (s->spare.cap ? ACTIVE_LIST_SLACK : 0);
    for (int l = 0; l < s->L; l++)
        entries += s->lists[l].cap + (s->lists[l].cap ? ACTIVE_LIST_SLACK : 0);
    return entries * (sizeof(uint16_t) + sizeof(float)) +
           (size_t)s->L * ((size_t)s->max_rows + 1) * sizeof(int64_t);
}

int mlp_sparse_active(const MlpSparse *s, int l, int rows) {
    return s && s->lists[l].complete && !s->lists[l].consumed && s->lists[l].rows == rows;
}

double mlp_sparse_density(const MlpSparse *s, int l) {
    if (!s || !s->lists[l].complete || s->lists[l].rows < 1) return -1.0;
    const ActiveList *a = &s->lists[l];
    return (double)a->start[a->rows] / ((double)a->rows * a->F);
}

/* ---- portable kernels ---- */

static void forward_portable(float *out, const ActiveList *a, const float *w2,
                             const float *b2, int N, int d) {
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * d;
        for (int c = 0; c < d; c++) o[c] = b2 ? b2[c] : 0.0f;
        for (int64_t e = a->start[n]; e < a->start[n + 1]; e++) {
            const float *w = w2 + (size_t)a->unit[e] * d;
            float h = a->val[e];
            for (int c = 0; c < d; c++) o[c] += h * w[c];
        }
    }
}

/* pass A: g = dPre of every entry, dW2 rows updated */
static void pass_a_portable(float *g, float *dW2, const ActiveList *a, const float *dY,
                            const float *W2, int N, int d) {
    for (int n = 0; n < N; n++) {
        const float *dy = dY + (size_t)n * d;
        for (int64_t e = a->start[n]; e < a->start[n + 1]; e++) {
            const float *w = W2 + (size_t)a->unit[e] * d;
            float *gw = dW2 + (size_t)a->unit[e] * d, h = a->val[e], s = 0.0f;
            for (int c = 0; c < d; c++) {
                s += dy[c] * w[c];
                gw[c] += h * dy[c];
            }
            g[e] = s;
        }
    }
}

/* pass B: dX written, dW1ᵀ rows and db1 updated */
static void pass_b_portable(float *dX, float *dw1t, float *db1, const ActiveList *a,
                            const float *g, const float *X, const float *w1t, int N, int d) {
    for (int n = 0; n < N; n++) {
        const float *x = X + (size_t)n * d;
        float *dx = dX + (size_t)n * d;
        for (int c = 0; c < d; c++) dx[c] = 0.0f;
        for (int64_t e = a->start[n]; e < a->start[n + 1]; e++) {
            int f = a->unit[e];
            const float *wt = w1t + (size_t)f * d;
            float *gt = dw1t + (size_t)f * d, gg = g[e];
            if (db1) db1[f] += gg;
            for (int c = 0; c < d; c++) {
                dx[c] += gg * wt[c];
                gt[c] += gg * x[c];
            }
        }
    }
}

/* ---- AVX-512 kernels: one block of NV <= 4 vectors of columns c0.. ---- */
#ifdef __AVX512F__
#define KERNEL static inline __attribute__((always_inline))
/* FULL (a constant of each expansion): every lane of the block is a
 * column, plain loads and stores; else masked ones for the ragged end */
#define LD(m, p) (FULL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((m), (p)))
#define ST(p, m, v) (FULL ? _mm512_storeu_ps((p), (v)) : _mm512_mask_storeu_ps((p), (m), (v)))

typedef struct { __mmask16 m[4]; } Lanes;

KERNEL void forward_block(float *out, const ActiveList *a, const float *w2, const float *b2,
                          int N, int d, int c0, Lanes k, const int NV, const int FULL) {
    for (int n = 0; n < N; n++) {
        __m512 s0[4], s1[4];   /* two partial sums: even and odd entries */
        for (int v = 0; v < NV; v++) {
            s0[v] = b2 ? LD(k.m[v], b2 + c0 + 16 * v) : _mm512_setzero_ps();
            s1[v] = _mm512_setzero_ps();
        }
        int64_t e = a->start[n], end = a->start[n + 1];
        for (; e + 1 < end; e += 2) {
            const float *wa = w2 + (size_t)a->unit[e] * d + c0;
            const float *wb = w2 + (size_t)a->unit[e + 1] * d + c0;
            __m512 ha = _mm512_set1_ps(a->val[e]), hb = _mm512_set1_ps(a->val[e + 1]);
            for (int v = 0; v < NV; v++) {
                s0[v] = _mm512_fmadd_ps(ha, LD(k.m[v], wa + 16 * v), s0[v]);
                s1[v] = _mm512_fmadd_ps(hb, LD(k.m[v], wb + 16 * v), s1[v]);
            }
        }
        if (e < end) {
            const float *wa = w2 + (size_t)a->unit[e] * d + c0;
            __m512 ha = _mm512_set1_ps(a->val[e]);
            for (int v = 0; v < NV; v++) s0[v] = _mm512_fmadd_ps(ha, LD(k.m[v], wa + 16 * v), s0[v]);
        }
        float *o = out + (size_t)n * d + c0;
        for (int v = 0; v < NV; v++) ST(o + 16 * v, k.m[v], _mm512_add_ps(s0[v], s1[v]));
    }
}

KERNEL void pass_a_block(float *g, float *dW2, const ActiveList *a, const float *dY,
                         const float *W2, int N, int d, int c0, Lanes k, const int NV, const int FULL) {
    for (int n = 0; n < N; n++) {
        __m512 dy[4];
        for (int v = 0; v < NV; v++) dy[v] = LD(k.m[v], dY + (size_t)n * d + c0 + 16 * v);
        for (int64_t e = a->start[n]; e < a->start[n + 1]; e++) {
            const float *w = W2 + (size_t)a->unit[e] * d + c0;
            float *gw = dW2 + (size_t)a->unit[e] * d + c0;
            __m512 h = _mm512_set1_ps(a->val[e]);
            __m512 p = _mm512_mul_ps(dy[0], LD(k.m[0], w));
            for (int v = 1; v < NV; v++) p = _mm512_fmadd_ps(dy[v], LD(k.m[v], w + 16 * v), p);
            float s = _mm512_reduce_add_ps(p);
            g[e] = c0 == 0 ? s : g[e] + s;
            for (int v = 0; v < NV; v++)
                ST(gw + 16 * v, k.m[v], _mm512_fmadd_ps(h, dy[v], LD(k.m[v], gw + 16 * v)));
        }
    }
}

KERNEL void pass_b_block(float *dX, float *dw1t, float *db1, const ActiveList *a,
                         const float *g, const float *X, const float *w1t, int N, int d,
                         int c0, Lanes k, const int NV, const int FULL) {
    for (int n = 0; n < N; n++) {
        __m512 x[4], dx[4];
        for (int v = 0; v < NV; v++) {
            x[v] = LD(k.m[v], X + (size_t)n * d + c0 + 16 * v);
            dx[v] = _mm512_setzero_ps();
        }
        for (int64_t e = a->start[n]; e < a->start[n + 1]; e++) {
            int f = a->unit[e];
            const float *wt = w1t + (size_t)f * d + c0;
            float *gt = dw1t + (size_t)f * d + c0;
            __m512 gg = _mm512_set1_ps(g[e]);
            if (c0 == 0 && db1) db1[f] += g[e];
            for (int v = 0; v < NV; v++) {
                dx[v] = _mm512_fmadd_ps(gg, LD(k.m[v], wt + 16 * v), dx[v]);
                ST(gt + 16 * v, k.m[v], _mm512_fmadd_ps(gg, x[v], LD(k.m[v], gt + 16 * v)));
            }
        }
        for (int v = 0; v < NV; v++) ST(dX + (size_t)n * d + c0 + 16 * v, k.m[v], dx[v]);
    }
}

/* Lanes of columns c0 .. c0+w-1 (w <= 64) in 4 vectors; returns the count of
 * vectors used. */
static int block_lanes(int w, Lanes *k) {
    for (int v = 0; v < 4; v++) {
        int lanes = w - 16 * v;
        lanes = lanes < 0 ? 0 : lanes > 16 ? 16 : lanes;
        k->m[v] = (__mmask16)((1u << lanes) - 1u);
    }
    return (w + 15) / 16;
}

/* Every column block of a kernel: KERNEL_CALL(NV, FULL) expands the kernel
 * with a constant vector count, so each width compiles to its own
 * fully-unrolled loop; 64 columns (the common case) without masks. */
#define FOR_BLOCKS(d, KERNEL_CALL)                                               \
    for (int c0 = 0; c0 < (d); c0 += 64) {                                       \
        Lanes k;                                                                 \
        int w = (d) - c0 < 64 ? (d) - c0 : 64;                                   \
        switch (w == 64 ? 0 : block_lanes(w, &k)) {                              \
            case 0: block_lanes(64, &k); KERNEL_CALL(4, 1); break;               \
            case 1: KERNEL_CALL(1, 0); break;                                    \
            case 2: KERNEL_CALL(2, 0); break;                                    \
            case 3: KERNEL_CALL(3, 0); break;                                    \
            default: KERNEL_CALL(4, 0); break;                                   \
        }                                                                        \
    }
#endif

/* ---- the entry points ---- */

void mlp_sparse_forward(const MlpSparse *s, int l, float *out, const float *w2,
                        const float *b2, int N, int d) {
    if (!mlp_sparse_active(s, l, N) || d != s->d)
        die("mlp_sparse_forward: layer %d has no complete lists for %d rows", l, N);
    const ActiveList *a = &s->lists[l];
#ifdef __AVX512F__
    if (!portable) {
#define CALL(NV, FULL) forward_block(out, a, w2, b2, N, d, c0, k, NV, FULL)
        FOR_BLOCKS(d, CALL)
#undef CALL
        return;
    }
#endif
    forward_portable(out, a, w2, b2, N, d);
}

/* dst[F][d] = src[d][F]ᵀ, and back with accumulation, in 16 × 16 tiles */
static void transpose(float *dst, const float *src, int rows, int cols) {
    for (int r0 = 0; r0 < rows; r0 += 16)
        for (int c0 = 0; c0 < cols; c0 += 16)
            for (int r = r0; r < rows && r < r0 + 16; r++)
                for (int c = c0; c < cols && c < c0 + 16; c++)
                    dst[(size_t)c * rows + r] = src[(size_t)r * cols + c];
}

static void transpose_add(float *dst, const float *src, int rows, int cols) {
    for (int r0 = 0; r0 < rows; r0 += 16)
        for (int c0 = 0; c0 < cols; c0 += 16)
            for (int r = r0; r < rows && r < r0 + 16; r++)
                for (int c = c0; c < cols && c < c0 + 16; c++)
                    dst[(size_t)c * rows + r] += src[(size_t)r * cols + c];
}

void mlp_sparse_backward(MlpSparse *s, int l, float *dX, float *dW1, float *db1, float *dW2,
                         float *db2, const float *dY, const float *X, const float *W1,
                         const float *W2, int N, int d) {
    ActiveList *a = &s->lists[l];
    int F = s->F;
    if (!mlp_sparse_active(s, l, N) || d != s->d)
        die("mlp_sparse_backward: layer %d has no complete lists for %d rows", l, N);
    /* dPre of each entry: with one block of columns (d <= 64) pass A writes it
     * over the entry's value, which it has just used for the last time (the
     * lists are consumed: a second backward of the same forward is refused);
     * wider layers sum it over blocks in a buffer of their own */
    size_t entries = (size_t)a->start[N];
    float *g = a->val;
    if (d > 64) {
        if (entries > s->g_cap) {   /* grows to the largest layer's entries, then reused */
            s->g = grow(s->g, entries * sizeof *s->g);
            s->g_cap = entries;
        }
        g = s->g;
    }
    s->lists[l].consumed = 1;
    for (int n = 0; db2 && n < N; n++)   /* db1, db2 NULL: no MLP biases (mlp_bias=0) */
        for (int c = 0; c < d; c++) db2[c] += dY[(size_t)n * d + c];
    transpose(s->w1t, W1, d, F);
    memset(s->dw1t, 0, (size_t)F * d * sizeof(float));
    float *w1t = s->w1t, *dw1t = s->dw1t;
#ifdef __AVX512F__
    if (!portable) {
#define CALL_A(NV, FULL) pass_a_block(g, dW2, a, dY, W2, N, d, c0, k, NV, FULL)
#define CALL_B(NV, FULL) pass_b_block(dX, dw1t, db1, a, g, X, w1t, N, d, c0, k, NV, FULL)
        FOR_BLOCKS(d, CALL_A)
        FOR_BLOCKS(d, CALL_B)
#undef CALL_A
#undef CALL_B
        transpose_add(dW1, dw1t, F, d);
        return;
    }
#endif
    pass_a_portable(g, dW2, a, dY, W2, N, d);
    pass_b_portable(dX, dw1t, db1, a, g, X, w1t, N, d);
    transpose_add(dW1, dw1t, F, d);
}
