/* fuzz_shard.c — the token shard reader (data.h: tokenset_open) and, on
 * files it accepts, the sampler and the held-out batch built on them.
 * The input is the whole shard file. */
#include "data.h"
#include "fuzz_common.h"

#define FZ_V 300          /* a vocabulary that some fuzzed tokens exceed */
#define FZ_T 4
#define FZ_B 2

static void exercise(const TokenSet *ts, int V, size_t file_size) {
    if (ts->n_shards != 1) abort();
    if ((size_t)ts->total_tokens * 2 + 1024 != file_size) {
        fprintf(stderr, "accepted a shard of %zu bytes as %lld tokens\n", file_size,
                (long long)ts->total_tokens);
        abort();
    }
    const Shard *sh = &ts->shards[0];
    uint32_t mx = 0;
    char err[4200];
    uint16_t *all = malloc((size_t)sh->count * sizeof *all);
    if (!all || shard_read(sh, 0, sh->count, all, err, sizeof err) != 0) abort();
    for (int64_t i = 0; i < sh->count; i++) mx = all[i] > mx ? all[i] : mx;
    free(all);
    if (V > 0 && mx >= (uint32_t)V) { fprintf(stderr, "token %u >= V %d accepted\n", mx, V); abort(); }
    uint16_t rows[FZ_B * (FZ_T + 1)];
    for (int kind = 0; kind < 2; kind++) {
        Sampler s;
        if (build_sampler(&s, ts, FZ_T, FZ_B, (SamplerKind)kind, 7, err, sizeof err) != 0) {
            fz_check_error(err, NULL);
            continue;
        }
        for (int64_t step = 0; step < 6; step++) {
            if (sampler_fill(&s, step, 0, FZ_B, rows, err, sizeof err) != 0) abort();
            for (int k = 0; k < FZ_B * (FZ_T + 1); k++)
                if (V > 0 && rows[k] >= V) abort();
        }
        free_sampler(&s);
    }
    if (heldout_check(ts, FZ_T, FZ_B, err, sizeof err) == 0) {
        if (heldout_fill(ts, FZ_T, FZ_B, rows, err, sizeof err) != 0) abort();
    }
    else fz_check_error(err, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128], err[4200];
    fz_path(path, sizeof path, "shard_000000.bin");
    fz_write(path, data, size);
    const int vocabs[2] = {0, FZ_V};
    for (int i = 0; i < 2; i++) {
        TokenSet ts;
        if (tokenset_open(&ts, path, vocabs[i], err, sizeof err) != 0) {
            fz_check_error(err, path);
            if (ts.n_shards != 0 || ts.shards) abort();   /* nothing left open */
            continue;
        }
        exercise(&ts, vocabs[i], size);
        tokenset_close(&ts);
    }
    return 0;
}
