/* mlp_sparse.h — the MLP's second projection and its backward computed on
 * the active units only (`mlp_kernel = sparse | auto`, docs/performance.md).
 *
 * The MLP of a block is  pre = X·W1 (dense),  H = relu(pre + b1),  Y = H·W2 + b2.
 * With most of H exactly zero, five of its six products mostly multiply
 * zeros. The fused bias + ReLU + counting kernel (metrics.c) also writes, per
 * token, the list of its active units and their values (CSR by token, in the
 * same sweep that writes H). From those lists, per token n:
 *   forward    Y[n]      = b2 + Σ_{f active} H[n,f] · W2[f,:]        (gather rows of W2)
 *   backward A dPre[n,f] = dY[n] · W2[f,:]      for active f          (dot)
 *              dW2[f,:] += H[n,f] · dY[n]                            (row update)
 *   backward B dW1ᵀ[f,:]+= dPre[n,f] · X[n]                          (row update)
 *              dX[n]     = Σ_f dPre[n,f] · W1ᵀ[f,:]                  (gather rows of W1ᵀ)
 *              db1[f]   += dPre[n,f]
 * Every weight row touched is d contiguous floats ([F][d] layouts: W2 as
 * stored, W1 transposed into scratch once per backward), so a token's work is
 * a stream of whole-row loads/updates on weights that stay in L2, while the
 * token's own rows (dY[n], X[n], dX[n]) stay in registers. Pass A runs over
 * all tokens before pass B so each pass keeps only two [F][d] tensors hot.
 * The first product X·W1 stays a dense sgemm: the metrics are counted from
 * it, so every metric is that of the dense path.
 *
 * Sums run in another order than sgemm's: results agree with the dense path
 * up to float rounding (tests/test_mlp_sparse.c). Each token's sums are in a
 * fixed order that does not depend on the batch split, so results do not
 * depend on the rank count and a resumed run repeats itself bit for bit.
 */
#ifndef RELUSCOPE_MLP_SPARSE_H
#define RELUSCOPE_MLP_SPARSE_H
#include <stddef.h>
#include <stdint.h>

typedef enum { MLP_DENSE = 0, MLP_SPARSE = 1, MLP_AUTO = 2 } MlpKernel;

/* `auto` takes the sparse path for a layer when its density (active
 * entries / (N·F)) is at most this. Measured on this machine with
 * bench/bench_mlp.c (docs/performance.md, "Sparse MLP"): at the study
 * geometry the sparse MLP (forward + backward) equals the dense one at about
 * 45-50% density; 0.40 keeps a margin for the noise of that measurement. */
#define MLP_SPARSE_CROSSOVER 0.40

/* Entries written past the end of a list by one vector store (the fused
 * kernel stores 16 lanes and advances by the number of active ones). */
#define ACTIVE_LIST_SLACK 16

/* The lists hold 16-bit units: the sparse path serves F <= this
 * (config.c refuses mlp_kernel = sparse | auto above it). */
#define MLP_SPARSE_MAX_F 65536

/* One layer's active units, per token (row) n: unit[k], val[k] for
 * k in start[n] .. start[n+1]-1, units increasing. 6 bytes an entry. */
typedef struct ActiveList {
    uint16_t *unit;    /* [cap + ACTIVE_LIST_SLACK] */
    float *val;        /* [cap + ACTIVE_LIST_SLACK] H[n][unit] (> 0) */
    int64_t *start;    /* [max_rows + 1] */
    size_t cap;        /* entries allocated; grows, never beyond max_rows·F */
    size_t limit;      /* building stops once more entries than this are needed */
    double early_rate; /* auto: ... or once the rows so far are this dense (0: off) */
    int max_rows, F;
    int rows;          /* rows of the last build */
    int complete;      /* 1: every row's list was built (the layer can go sparse) */
    int consumed;      /* 1: the backward has used (and overwritten) the values */
} ActiveList;

/* Room for row `row` (up to F entries) after `used` entries (grows cap by
 * doubling, at most to max_rows·F). Returns 0 when the limit is reached or
 * (auto) the rows so far are clearly above the crossover: building stops
 * there and the layer takes the dense path. */
int active_list_reserve_row(ActiveList *a, size_t used, int row);

/* Per model: the mode, each layer's lists and the backward's scratch. */
typedef struct MlpSparse MlpSparse;

/* For a model of L layers, F units, width d, at most max_rows tokens per
 * forward. kind MLP_DENSE returns NULL (the dense path everywhere). */
MlpSparse *mlp_sparse_create(MlpKernel kind, int L, int max_rows, int F, int d);
void mlp_sparse_free(MlpSparse *s);

/* The lists the fused kernel should build for layer l in a forward over
 * `rows` tokens (sparse: no limit; auto: the crossover), or NULL if s is. */
ActiveList *mlp_sparse_lists(MlpSparse *s, int l, int rows);
/* 1 if layer l's last forward built complete lists for `rows` tokens that
 * its backward has not consumed yet: the layer's projection and backward
 * take the sparse path. */
int mlp_sparse_active(const MlpSparse *s, int l, int rows);
/* After layer l's forward: if its lists are incomplete (auto gave up and
 * the layer takes the dense path), its storage becomes the spare that the
 * next layer without storage builds in (the larger of the two is kept, the
 * other freed): auto holds lists for its sparse layers plus one spare. */
void mlp_sparse_release(MlpSparse *s, int l);
/* Free every layer's lists and the spare (no layer is sparse until its
 * next build): a forward that runs dense everywhere gives their memory back. */
void mlp_sparse_drop(MlpSparse *s);
/* Bytes the lists hold now (every layer's and the spare's). */
size_t mlp_sparse_bytes(const MlpSparse *s);
/* Density of layer l in its last forward (entries / (rows·F)), or -1 if
 * its lists were not completed (auto gave up: above the crossover). */
double mlp_sparse_density(const MlpSparse *s, int l);

/* out[N][d] = b2 + Σ_active val · W2[unit] from layer l's lists
 * (W2 [F][d], b2 [d] or NULL) */
void mlp_sparse_forward(const MlpSparse *s, int l, float *out, const float *w2,
                        const float *b2, int N, int d);

/* The MLP's backward from dY[N][d] (the gradient at its output): dX[N][d]
 * written (= dPre · W1ᵀ); dW1 [d][F], db1 [F], dW2 [F][d], db2 [d]
 * accumulated (+=; db1, db2 NULL: a model without MLP biases). X[N][d] is
 * the MLP's input (ln2), W1 [d][F], W2 [F][d]. */
void mlp_sparse_backward(MlpSparse *s, int l, float *dX, float *dW1, float *db1, float *dW2,
                         float *db2, const float *dY, const float *X, const float *W1,
                         const float *W2, int N, int d);

/* Tests: 1 runs the portable C loops instead of the AVX-512 kernels
 * (the same results up to rounding order). */
void mlp_sparse_set_portable(int on);

#endif
