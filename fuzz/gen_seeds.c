/* gen_seeds.c — writes the generated seed corpora of the fuzz harnesses with
 * the project's own writers (shard_write, checkpoint_save, bpe_save,
 * config_print), so the seeds are exactly what reluscope produces.
 * usage: gen_seeds OUTDIR   (writes OUTDIR/{shard,checkpoint,bpe,config}/...) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bpe.h"
#include "checkpoint.h"
#include "config.h"
#include "data.h"
#include "util.h"

static char out_root[1024];

static void need(int ok, const char *what, const char *err) {
    if (!ok) { fprintf(stderr, "gen_seeds: %s: %s\n", what, err ? err : "failed"); exit(1); }
}

static void path_of(char *p, size_t n, const char *target, const char *name) {
    snprintf(p, n, "%s/%s", out_root, target);
    mkdir_p(p);
    snprintf(p, n, "%s/%s/%s", out_root, target, name);
}

static void shards(void) {
    char p[2048], err[4200];
    uint16_t t[200];
    const int counts[4] = {1, 9, 40, 200};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < counts[k]; i++) t[i] = (uint16_t)((i * 7 + k) % (k == 3 ? 300 : 64));
        char name[64];
        snprintf(name, sizeof name, "shard_%d.bin", counts[k]);
        path_of(p, sizeof p, "shard", name);
        need(shard_write(p, t, counts[k], err, sizeof err) == 0, p, err);
    }
}

static void checkpoint(const ModelSize *s, OptimizerKind kind, int64_t step, const char *name) {
    char dir[2048], err[4200], from[2400], to[2048];
    snprintf(dir, sizeof dir, "%s/.ckpt-%s", out_root, s->name);
    Model m;
    Optimizer o;
    RunState rs;
    build_model(&m, s, 1);
    model_init_params(&m, 11);
    build_optimizer(&o, kind, m.num_params);
    for (size_t i = 0; i < o.n && kind == OPT_ADAMW; i++) {
        o.m[i] = 1e-3f * (float)(i % 5);
        o.v[i] = 1e-6f * (float)(i % 3);
    }
    o.t = step;
    memset(&rs, 0, sizeof rs);
    rs.step = step;
    rs.tokens_seen = step * 4 * s->T;
    rs.seed = 11;
    rs.id = (RunIdentity){0x1234, 0x5678, 0, step};
    rs.rng_state[0] = 1;
    rs.trackers = xcalloc((size_t)s->L, sizeof(DeathTracker));
    for (int l = 0; l < s->L; l++) {
        build_death_tracker(&rs.trackers[l], s->F, 5);
        rs.trackers[l].last_fire[0] = step - 1;
        rs.trackers[l].fires_since_snap[0] = 3;
        rs.trackers[l].tokens_since_snap = 16;
    }
    need(checkpoint_save(dir, s, "steps = 3\nlr = 0.001\n", &m, &o, &rs, 2, err,
                         sizeof err) == 0, dir, err);
    snprintf(from, sizeof from, "%s/ckpt_%08lld.bin", dir, (long long)step);
    path_of(to, sizeof to, "checkpoint", name);
    need(rename(from, to) == 0, to, "rename");
    rmdir(dir);
    for (int l = 0; l < s->L; l++) free_death_tracker(&rs.trackers[l]);
    free(rs.trackers);
    free_optimizer(&o);
    free_model(&m);
}

static void tokenizers(void) {
    char p[2048], err[4200];
    Bpe *b = bpe_new_bytes();
    path_of(p, sizeof p, "bpe", "bytes.bpe");
    need(bpe_save(b, p, err, sizeof err) == 0, p, err);
    bpe_free(b);
    const char *text = "the cat sat on the mat; the cat ate the rat. It's 2024!\n"
                       "naive caf\xc3\xa9 \xe2\x82\xac 12 345 the the the\n";
    BpeCounter *c = bpe_counter_new();
    bpe_counter_add(c, (const uint8_t *)text, strlen(text));
    b = bpe_train(c, 256 + 24, NULL, err, sizeof err);
    need(b != NULL, "bpe_train", err);
    path_of(p, sizeof p, "bpe", "trained.bpe");
    need(bpe_save(b, p, err, sizeof err) == 0, p, err);
    bpe_free(b);
    bpe_counter_free(c);
}

static void configs(void) {
    char p[2048], err[4200];
    Config c;
    config_defaults(&c);
    need(config_set(&c, "train_data", "data/x/train_*.bin", "gen", err, sizeof err) == 0,
         "config", err);
    need(config_set(&c, "size.t2", "L=2 d=32 h=2 F=64 T=32 V=64", "gen", err, sizeof err) == 0,
         "config", err);
    need(config_set(&c, "sizes", "t2, tiny", "gen", err, sizeof err) == 0, "config", err);
    path_of(p, sizeof p, "config", "printed.conf");
    FILE *fp = fopen(p, "w");
    need(fp != NULL, p, "fopen");
    config_print(&c, fp);
    fclose(fp);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: gen_seeds OUTDIR\n"); return 2; }
    snprintf(out_root, sizeof out_root, "%s", argv[1]);
    mkdir_p(out_root);
    shards();
    const ModelSize fz1 = {"fz1", 1, 4, 1, 4, 4, 8, .pos = POS_LEARNED};   /* = FIXED in fuzz_checkpoint.c */
    const ModelSize fz2 = {"fz2", 2, 8, 2, 8, 4, 16, .pos = POS_LEARNED};
    /* every non-default variant value at once: another tensor table */
    const ModelSize fz3 = {"fz3", 1, 4, 2, 4, 4, 8, .pos = POS_ROPE, .untied = 1,
                           .no_mlp_bias = 1, .act = ACT_RELU2};
    checkpoint(&fz1, OPT_ADAMW, 3, "fz1_adamw.bin");
    checkpoint(&fz2, OPT_SGD, 12, "fz2_sgd.bin");
    checkpoint(&fz3, OPT_ADAMW, 5, "fz3_variant.bin");
    tokenizers();
    configs();
    return 0;
}
