/* resume.c — the checkpoints a sweep may resume from (see resume.h). */
#include "resume.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sink.h"
#include "sweep.h"
#include "util.h"

void run_expect(const Config *c, int run, const CorpusPrints *cp, RunExpect *want) {
    int si, ki;
    run_size_seed(c, run, &si, &ki);
    memset(want, 0, sizeof *want);
    want->seed = c->seeds[ki];
    want->id.config = config_fingerprint(c, &c->sizes[si]);
    want->id.train_corpus = cp->train;
    want->id.val_corpus = cp->val;
    want->id.steps = c->steps;
    /* a fork's tokens include its parent's, counted at the parent's batch */
    want->tokens_per_step = c->fork_from[0] ? 0 : (int64_t)c->batch_size * c->sizes[si].T;
}

void run_checkpoint_dir(const Config *c, int run, char *dir, size_t n) {
    char name[96];
    run_name(c, run, name, sizeof name);
    if ((size_t)snprintf(dir, n, "%s/checkpoints/%s", c->out_dir, name) >= n)
        die("out_dir '%s': path too long", c->out_dir);
}

/* Moves the files of f with the given verdict (all when verdict < 0) into
 * dir/replaced-<UTC time>/ and says so; 0, or -1 + an error line. */
static int move_aside(const char *dir, CkptFile *f, int n, int verdict, const char *reason) {
    char dest[RS_PATH_MAX], stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
    if ((size_t)snprintf(dest, sizeof dest, "%s/replaced-%s", dir, stamp) >= sizeof dest - 64 ||
        mkdir_p(dest) != 0) {
        fprintf(stderr, "reluscope: error: %s: cannot create a folder to move checkpoints aside "
                "into: %s\n", dest, strerror(errno));
        return -1;
    }
    int moved = 0;
    for (int i = 0; i < n; i++) {
        if (!f[i].path[0] || (verdict >= 0 && (int)f[i].verdict != verdict)) continue;
        char to[RS_PATH_MAX + 64];
        const char *base = strrchr(f[i].path, '/');
        snprintf(to, sizeof to, "%s%s", dest, base ? base : "/");
        if (rename(f[i].path, to) != 0) {
            fprintf(stderr, "reluscope: error: %s: cannot move it aside to %s: %s\n", f[i].path,
                    dest, strerror(errno));
            return -1;
        }
        f[i].path[0] = '\0';   /* gone from dir */
        moved++;
    }
    fsync_dir_of(dest);
    warn_msg("%s: overwrite = 1: moved %d checkpoint(s) aside to %s (%s)", dir, moved, dest, reason);
    return 0;
}

/* The newest own checkpoint (index into f, or -1); reports damaged ones it
 * passes and refuses unreadable ones. -2 after an error line. */
static int newest_own(CkptFile *f, int n) {
    for (int i = 0; i < n; i++) {
        if (f[i].verdict == CKPT_UNREADABLE) {
            fprintf(stderr, "reluscope: error: %s: the checkpoint cannot be read (%s): fix its "
                    "permissions, or move it away to resume from an older one\n", f[i].path,
                    f[i].why);
            return -2;
        }
        if (f[i].verdict == CKPT_OK) return i;
        if (f[i].verdict == CKPT_DAMAGED)
            warn_msg("%s: damaged checkpoint (%s), skipped", f[i].path, f[i].why);
    }
    return -1;
}

static int check_run_folder(const Config *c, int run, const CorpusPrints *cp) {
    char dir[RS_PATH_MAX], name[96];
    run_checkpoint_dir(c, run, dir, sizeof dir);
    run_name(c, run, name, sizeof name);
    int stale = checkpoint_remove_stale_temps(dir);
    if (stale) warn_msg("%s: removed %d temporary file(s) left by killed processes", dir, stale);
    RunExpect want;
    run_expect(c, run, cp, &want);
    char *text = config_to_string(c);
    want.config_text = text;
    int si, ki;
    run_size_seed(c, run, &si, &ki);
    CkptFile *f;
    int n = checkpoint_scan(dir, &c->sizes[si], &want, &f);
    free(text);
    if (n < 0) {
        if (errno == ENOENT) return 0;
        fprintf(stderr, "reluscope: error: %s: cannot list checkpoints: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0, other = -1;
    for (int i = 0; i < n && other < 0; i++)
        if (f[i].verdict == CKPT_OTHER_RUN) other = i;
    if (other >= 0) {
        if (c->overwrite) {
            rc = move_aside(dir, f, n, CKPT_OTHER_RUN, f[other].why);
        } else {
            fprintf(stderr, "reluscope: error: %s: %s; run %s resumes only from its own: pass "
                    "overwrite=1 to move such checkpoints aside and retrain, or use another "
                    "out_dir\n", f[other].path, f[other].why, name);
            rc = -1;
        }
    }
    int own = rc == 0 ? newest_own(f, n) : -1;
    if (own == -2) rc = -1;
    if (own >= 0) {
        int64_t first = 0, k = f[own].step;   /* a fork's records start at its parent's step */
        if (c->fork_from[0] && checkpoint_peek(c->fork_from, NULL, NULL, &first, NULL, 0) != 0)
            first = 0;
        int64_t missing = sink_first_missing_step(run, first, k);
        if (missing < k) {
            char reason[3 * RS_PATH_MAX];
            snprintf(reason, sizeof reason, "run %s: its checkpoint %s continues from step %lld, "
                     "but %s/dataset.nc lacks step %lld (the dataset was replaced or lost)",
                     name, f[own].path, (long long)k, c->out_dir, (long long)missing);
            if (c->overwrite) {
                rc = move_aside(dir, f, n, -1, reason);
            } else {
                fprintf(stderr, "reluscope: error: %s: pass overwrite=1 to move the run's "
                        "checkpoints aside and retrain it from step 0\n", reason);
                rc = -1;
            }
        }
    }
    free(f);
    return rc;
}

int resume_check_all(const Config *c, const CorpusPrints *cp) {
    int runs = c->n_sizes * c->n_seeds;
    for (int run = 0; run < runs; run++)
        if (check_run_folder(c, run, cp) != 0) return -1;
    return 0;
}
