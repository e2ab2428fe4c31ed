/* metrics.h — sparsity instrumentation (SPEC §3). Plain C, never MPI.
 *
 * Per step the ReLU forward pass of each layer fills a UsageCounts view
 * (fused: counted while the activations are written, no extra sweep).
 * Everything that ranks must sum is int64 in ONE contiguous buffer so the
 * comm module reduces it with a single MPI_Allreduce(SUM); the quantiles are
 * then read off the summed histograms as exact order statistics, identical
 * whatever the rank count.
 *
 * Buffer layout (int64), layer l at offset l * usage_stride(F):
 *   fire_count[F]     tokens of the batch on which unit f is active (a > 0)
 *   token_hist[F+1]   token_hist[k] = tokens with exactly k active units
 *   seq_hist[F+1]     seq_hist[k]   = sequences with exactly k distinct active units
 */
#ifndef RELUSCOPE_METRICS_H
#define RELUSCOPE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define NUM_QUANTILES 11
extern const double QUANTILE_LEVELS[NUM_QUANTILES];    /* 0 .. 1 */
extern const int    QUANTILE_LEVELS_E4[NUM_QUANTILES]; /* the same × 10000, exact */

typedef struct {
    int64_t *fire_count;   /* [F] */
    int64_t *token_hist;   /* [F+1] */
    int64_t *seq_hist;     /* [F+1] */
} UsageCounts;

static inline size_t usage_stride(int F) { return (size_t)F + 2 * ((size_t)F + 1); }
UsageCounts usage_view(int64_t *buffer, int layer, int F);

/* Float statistics of the pre-activations, only on snapshot steps.
 * Reduced across ranks with MAX (premax) and SUM (presum), in one
 * float buffer per kind: layer l at offset l * F. */
typedef struct {
    float  *premax;   /* [F] max pre-activation over the batch's tokens */
    double *presum;   /* [F] sum of pre-activations (mean = presum / tokens) */
} PreactStats;

/* The fused ReLU + counting kernel (called by the model's MLP forward):
 *   x = pre[n][f] + bias[f]; act[n][f] = x > 0 ? x : +0; counts updated;
 * for B sequences of T tokens (N = B*T rows of F). `counts` may be NULL
 * (no counting), `pre_stats` may be NULL (not a snapshot step).
 * `pre` and `act` may alias (in place): they are the same pointer or
 * disjoint (a partial overlap is an error). seen_scratch: F bytes of scratch
 * whose contents on entry do not matter; needed only when counting.
 * Counts and stats ACCUMULATE (+=, max) into what the caller passes. */
void relu_count_forward(float *act, const float *pre, const float *bias,
                        int B, int T, int F, UsageCounts *counts,
                        PreactStats *pre_stats, uint8_t *seen_scratch);

/* The same, also building the per-token lists of active units that the
 * sparse MLP path uses (mlp_sparse.h), in the same sweep: each row's
 * entries are appended while the row is written. lists NULL: as above. */
struct ActiveList;
void relu_count_forward_lists(float *act, const float *pre, const float *bias,
                              int B, int T, int F, UsageCounts *counts,
                              PreactStats *pre_stats, uint8_t *seen_scratch,
                              struct ActiveList *lists);

/* Quantile rule of SPEC §3 on a histogram of counts 0..F over total items:
 * the value x(max(1, ceil(q*total))) of the sorted items. q given ×10000
 * (0..10000). total <= 0 (no items) returns 0. */
int hist_quantile(const int64_t *hist, int F, int64_t total, int q_e4);

/* Derived per-layer numbers of one step (from summed counts). */
typedef struct {
    double token_use_mean, seq_use_mean, batch_use;
    double token_use_q[NUM_QUANTILES], seq_use_q[NUM_QUANTILES];
    double hot_frac;       /* units active on more than half of the tokens / F */
    double dead_frac;
    int32_t turned_off, revived;
    /* resample_dead (intervene.h): units re-initialized at the step; units
     * re-initialized earlier that turned off again at the step, and the sum
     * over those of (last firing step - re-initialization step) */
    int32_t resampled, redied;
    int64_t redied_life;
} LayerMetrics;

void usage_summarize(const UsageCounts *c, int F, LayerMetrics *out);

/* The off/dead state of one layer's units across steps (SPEC §3):
 * unit f is off at step s iff s - last_fire[f] >= W (last_fire = -1: never);
 * turned_off: off at s and not at s-1; revived: off at s-1 and fires at s.
 * Also the snapshot accumulators (fire count since the last snapshot). */
typedef struct {
    int F;
    long window;                 /* W */
    int64_t *last_fire;          /* [F] step of the last firing, -1 = never */
    int64_t *fires_since_snap;   /* [F] */
    int64_t tokens_since_snap;
    int64_t *born;               /* [F] step of the unit's last re-initialization
                                    (resample_dead), -1 = none or died since */
} DeathTracker;

void build_death_tracker(DeathTracker *t, int F, long window);
void free_death_tracker(DeathTracker *t);
/* Zero fires_since_snap and tokens_since_snap after a snapshot is taken
 * (last_fire is kept: it is the off/dead state). */
void death_tracker_reset_snapshot(DeathTracker *t);
/* Advance by one step with this step's summed fire counts; fills the
 * dead_frac, turned_off, revived, redied and redied_life fields of m (a
 * re-initialized unit that turns off again ends its life: born = -1). */
void death_tracker_step(DeathTracker *t, long step, const int64_t *fire_count,
                        int64_t tokens, LayerMetrics *m);

#endif
