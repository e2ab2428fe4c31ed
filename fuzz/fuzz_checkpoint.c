/* fuzz_checkpoint.c — the checkpoint reader (checkpoint.h: checkpoint_peek,
 * checkpoint_load). The input is the whole checkpoint file.
 *
 * Every input is tried twice: as it is, and with its last 4 bytes replaced
 * by the CRC-32 of the bytes before them, so that the fuzzer also reaches
 * the checks behind the checksum (tensor table, tracker header, the copy
 * into the model). Each variant is loaded into a model of the fixed tiny
 * size of the seed corpus (fuzz/gen_seeds.c) and, when the header describes
 * another tiny size, into a model built for that size. */
#include "checkpoint.h"
#include "fuzz_common.h"
#include "util.h"

/* Must match the first checkpoint seed written by gen_seeds.c. */
static const ModelSize FIXED = {"fz1", 1, 4, 1, 4, 4, 8, .pos = POS_LEARNED};

typedef struct { Model m; Optimizer opt; RunState rs; } Target;

static void target_build(Target *t, const ModelSize *s) {
    build_model(&t->m, s, 1);
    build_optimizer(&t->opt, OPT_ADAMW, t->m.num_params);
    memset(&t->rs, 0, sizeof t->rs);
    t->rs.trackers = xcalloc((size_t)s->L, sizeof(DeathTracker));
    for (int l = 0; l < s->L; l++) build_death_tracker(&t->rs.trackers[l], s->F, 5);
}

static void target_free(Target *t, const ModelSize *s) {
    for (int l = 0; l < s->L; l++) free_death_tracker(&t->rs.trackers[l]);
    free(t->rs.trackers);
    free_optimizer(&t->opt);
    free_model(&t->m);
}

static int tiny(const ModelSize *s) {
    return s->L <= 4 && s->d <= 32 && s->h <= s->d && s->F <= 64 && s->T <= 16 && s->V <= 512;
}

static int same_shape(const ModelSize *a, const ModelSize *b) {
    return a->L == b->L && a->d == b->d && a->h == b->h && a->F == b->F && a->T == b->T &&
           a->V == b->V;
}

static void try_file(const char *path) {
    static Target fixed;
    static int built = 0;
    if (!built) { target_build(&fixed, &FIXED); built = 1; }
    char err[4200];
    ModelSize s;
    uint64_t seed = 0;
    int64_t step = -1;
    int peek = checkpoint_peek(path, &s, &seed, &step, err, sizeof err);
    if (peek != 0) fz_check_error(err, path);
    else if (step < 0 || s.L < 1 || s.d < 1 || s.h < 1 || s.F < 1 || s.T < 1 || s.V < 1) {
        fprintf(stderr, "peek accepted an implausible header\n");
        abort();
    } else if (s.d % s.h != 0) {
        /* config.c refuses such a size ("d=.. is not a multiple of h=.."); a
         * checkpoint must not smuggle one into `eval` (attention would use
         * head size d/h rounded down, or 0 when h > d) */
        fprintf(stderr, "peek accepted a size with d=%d not a multiple of h=%d\n", s.d, s.h);
        abort();
    }
    int rc = checkpoint_load(path, &FIXED, NULL, &fixed.m, &fixed.opt, &fixed.rs, err, sizeof err);
    if (rc != 0) fz_check_error(err, path);
    if (rc == 0 && (peek != 0 || !same_shape(&s, &FIXED))) {
        fprintf(stderr, "load accepted a file that peek refused or of another size\n");
        abort();
    }
    if (rc == 0 && (fixed.rs.step != step || fixed.rs.seed != seed)) abort();
    if (peek == 0 && !same_shape(&s, &FIXED) && tiny(&s)) {
        Target t;
        target_build(&t, &s);
        if (checkpoint_load(path, &s, NULL, &t.m, &t.opt, &t.rs, err, sizeof err) != 0) {
            fprintf(stderr, "peek accepted but load into its own size failed: %s\n", err);
            abort();
        }
        target_free(&t, &s);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128];
    fz_path(path, sizeof path, "ckpt_00000001.bin");
    fz_write(path, data, size);
    try_file(path);
    if (size >= 8) {
        uint8_t *fixed = malloc(size);
        memcpy(fixed, data, size);
        uint32_t crc = crc32_update(0, fixed, size - 4);
        for (int i = 0; i < 4; i++) fixed[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        fz_write(path, fixed, size);
        try_file(path);
        free(fixed);
    }
    return 0;
}
