/* config.h — the run configuration: a file of `key = value` lines, overridden
 * by `key=value` command-line arguments, every key validated.
 *
 * Model sizes have names. Built in: S, M, P (the benchmark sizes of SPEC §6)
 * and "tiny" (for tests). A config defines more with
 *     size.NAME = L=6 d=512 h=8 F=4096 T=256 V=4096
 * and a sweep lists them:  sizes = S, M   and   seeds = 0, 1, 2 (or 0-2)
 */
#ifndef RELUSCOPE_CONFIG_H
#define RELUSCOPE_CONFIG_H
#include <stdint.h>
#include "util.h"

#define MAX_SIZES 32        /* defined (built-in + config) size names */
#define MAX_RUN_SIZES 16    /* sizes listed in one sweep */
#define MAX_SEEDS 64
#define SIZE_NAME_MAX 32

typedef struct {
    char name[SIZE_NAME_MAX];
    int L;   /* layers */
    int d;   /* model width */
    int h;   /* attention heads; d % h == 0 */
    int F;   /* MLP hidden units */
    int T;   /* context length */
    int V;   /* vocabulary size (<= 65536: tokens are uint16) */
    /* Architecture variants (docs/model.md, src/variant.c): written in a size
     * definition as `pos=rope tie=0 mlp_bias=0 act=relu2`. Each field is the
     * index of its value in the variant table; 0 everywhere = SPEC §2. */
    int pos;          /* PosKind */
    int untied;       /* 1: own output head lmhead[d][V] (tie=0) */
    int no_mlp_bias;  /* 1: no fcb, fcprojb (mlp_bias=0) */
    int act;          /* ActKind */
} ModelSize;

typedef enum { POS_LEARNED = 0, POS_NONE = 1, POS_ROPE = 2 } PosKind;
typedef enum { ACT_RELU = 0, ACT_RELU2 = 1 } ActKind;

typedef enum { SAMPLER_RANDOM = 0, SAMPLER_SEQUENTIAL = 1 } SamplerKind;
typedef enum { OPT_ADAMW = 0, OPT_SGD = 1 } OptimizerKind;

typedef struct {
    /* sweep */
    int n_defined;                   ModelSize defined[MAX_SIZES];
    int n_sizes;                     ModelSize sizes[MAX_RUN_SIZES]; /* `sizes` */
    int n_seeds;                     uint64_t seeds[MAX_SEEDS];      /* `seeds` */
    int ranks_per_run;               /* 0 = planner decides */
    /* data */
    char train_data[RS_PATH_MAX];    /* glob of .bin shards */
    char val_data[RS_PATH_MAX];      /* glob of .bin shards ("" = none) */
    SamplerKind sampler;
    int batch_size;                  /* B: sequences per global batch */
    long steps;
    /* optimizer */
    OptimizerKind optimizer;
    double lr, lr_min;               /* peak, and floor of the cosine */
    long warmup_steps;
    double beta1, beta2, eps, weight_decay;
    double grad_clip;                /* global norm; 0 = off */
    /* metrics */
    long dead_window;                /* W of the off/dead rule */
    long snapshot_every;             /* per-unit snapshots; 0 = off */
    long eval_every;                 /* held-out evaluation; 0 = off */
    long eval_tokens;                /* size of the held-out batch */
    int spectrum_topk;               /* singular values kept per layer */
    /* output and cadence */
    char out_dir[RS_PATH_MAX];
    long log_every, checkpoint_every, flush_every, check_every;
    int overwrite;                   /* allow replacing a dataset of another config */
    /* test-only fault injection: loss becomes NaN at this step (-1 = never) */
    long debug_nan_step;
    /* stop as if preempted once this many steps are done (-1 = never): for
     * preemption drills and resume tests */
    long stop_at_step;
    /* test-only fault injection: group rank 1 perturbs one parameter after
     * this step's update, so the replicas diverge (-1 = never) */
    long debug_diverge_step;
    /* when a run finishes, delete its other checkpoints, keep the final one */
    int checkpoint_final_only;
    /* interventions (include/intervene.h, docs/interventions.md) */
    char fork_from[RS_PATH_MAX];     /* checkpoint every run starts from ("" = none) */
    long data_seed;                  /* seed of the batch order; -1 = the run's seed */
    long resample_dead;              /* re-initialize off units every N steps; 0 = never */
    long debug_kill_step;            /* test-only planted death at this step (-1 = never) */
    int dead_window_set;             /* dead_window was given (not the default) */
    /* the MLP's kernels: MlpKernel of mlp_sparse.h (dense, sparse, auto) */
    int mlp_kernel;
} Config;

/* ---- the key table ----
 * Every key except `size.NAME` is one row of KEYS in src/config.c; setting,
 * defaults, validation, printing, comparing and fingerprinting all walk it.
 * A new key is a field in Config and one row (docs/config.md: "Adding a key"). */

/* How a key's text becomes a value. K_CHOICE: the field is an enum (an int)
 * holding the index of its name in the row's `choices` list. */
typedef enum { K_INT, K_LONG, K_DOUBLE, K_STRING, K_BOOL, K_CHOICE, K_SIZES, K_SEEDS } KeyType;

typedef struct {
    const char *name;
    KeyType type;
    size_t off, size;        /* where the field is in Config, and its size (checked) */
    const char *def;         /* default, as it would be written in a file */
    double lo, hi;           /* valid range of numbers */
    int lo_open, hi_open;    /* 1: the bound itself is excluded */
    int or_never;            /* numbers: -1 ("never") is valid besides [lo, hi] */
    int results;             /* 1: another value changes what a run computes */
    const char *const *choices;  /* K_CHOICE: the names, NULL-terminated */
} ConfigKey;

/* The rows, in printing order. */
const ConfigKey *config_keys(int *count);

/* The value of one key as it is written in a file (strings quoted, reals in
 * the shortest form that reads back exactly, lists as "a, b"). */
void config_key_text(const Config *c, const ConfigKey *k, char *out, size_t n);

/* Defaults, with the built-in sizes defined and sizes = tiny, seeds = 0. */
void config_defaults(Config *c);

/* Apply a file of `key = value` lines ('#' starts a comment). On error:
 * writes "FILE:LINE: problem" into err and returns -1. */
int config_load_file(Config *c, const char *path, char *err, size_t errlen);

/* Apply one "key=value" (from the command line; origin names it in errors). */
int config_set(Config *c, const char *key, const char *value, const char *origin,
               char *err, size_t errlen);

/* Apply one command-line argument "key=value" (origin "command line"). */
int config_override(Config *c, const char *arg, char *err, size_t errlen);

/* Cross-key checks (d % h, F >= 1, eval_tokens vs T, ...). -1 + err on failure. */
int config_validate(const Config *c, char *err, size_t errlen);

/* Apply config text held in memory (e.g. the `config` attribute of a
 * dataset); origin names it in errors. stored = 1 reads text written by
 * config_print of this or an older build: a bad value of a key that does not
 * change results is skipped (the rules may have tightened since). */
int config_load_text(Config *c, const char *text, const char *origin, int stored,
                     char *err, size_t errlen);

/* Print the effective config as loadable `key = value` lines. */
void config_print(const Config *c, FILE *fp);

/* The same text into a malloc'd string (for NetCDF / checkpoint metadata). */
char *config_to_string(const Config *c);

/* Do two configs compute the same numbers? Compares the keys whose row is
 * `results`, the listed sizes (names and shapes) and the seeds; ignore_grid
 * leaves sizes and seeds out (datasets of one sweep split by size or seed).
 * Returns 1 and the first difference in `what` ("lr = 0.003 stored, 0.001
 * now"), or 0. */
int config_diff(const Config *stored, const Config *now, int ignore_grid, char *what, size_t n);

/* The same for two printed configs (dataset attributes): each is read with
 * config_load_text(stored = 1); a text that cannot be read counts as a
 * difference, described in `what`. */
int config_text_diff(const char *stored, const char *now, int ignore_grid, char *what, size_t n);

/* The canonical text of what makes a run's numbers: one "key = value" line
 * per `results` key in table order, sizes and seeds excluded, then one line
 * "size = L=.. d=.. h=.. F=.. T=.. V=.." for `run` (NULL: the sweep's lines
 * "sizes = ..", "seeds = .." and a "size.NAME = .." line per listed size).
 * malloc'd. */
char *config_results_text(const Config *c, const ModelSize *run);

/* 64-bit FNV-1a of config_results_text(c, run): equal fingerprints mean the
 * same result-changing config (for checkpoints: pass the run's size). */
uint64_t config_fingerprint(const Config *c, const ModelSize *run);

/* The effective config as one JSON object: every key of the table with a
 * typed value (numbers, strings, booleans; choices as their names; `sizes`
 * a list of {"name", "L", "d", "h", "F", "T", "V"}; `seeds` a list of
 * integers). Used by `reluscope plan --json`. */
void config_print_json(const Config *c, FILE *fp);

/* s as a JSON string literal (quotes, backslashes, control bytes escaped). */
void json_string(const char *s, FILE *fp);

/* A printed config (read as stored text; origin names it in errors) with its
 * sizes (with their shapes) and seeds replaced, printed again: the config of
 * a merged dataset. NULL + err if the text cannot be read. malloc'd. */
char *config_text_with_grid(const char *text, const char *origin, const ModelSize *sizes,
                            int n_sizes, const uint64_t *seeds, int n_seeds, char *err, size_t errlen);

/* Find a defined size by name; NULL if none. */
const ModelSize *config_find_size(const Config *c, const char *name);

/* Defaults + file (path may be NULL) + "key=value" overrides + validate.
 * -1 + a one-line message on any error (terminal-safe: control bytes and
 * bytes that are not UTF-8 are shown as \xNN, as in every message here). */
int config_load(Config *c, const char *path, int n_overrides, char **overrides,
                char *err, size_t errlen);

/* The same for CLIs: dies with the message. */
void config_build(Config *c, const char *path, int n_overrides, char **overrides);

#endif
