/* test_ncout_journal.c — the dataset writer's journal (ncout_journal.c,
 * ncout_update.c): it stays bounded by the records the published file
 * lacks; a damaged frame in its middle is refused on resume and skipped,
 * with a warning, by `merge --repair` (every record around it applied);
 * crafted frames (a step past the sweep, sequence numbers going backwards)
 * and a journal of another variable table are refused, the journal kept. */
#include "ncout_sample.h"

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* Steps of 4 runs in flushes of 10, journal size after each flush. */
static void test_bounded(double budget, long *max_size, long *last_size, int64_t steps) {
    Sample s;
    char p[512], j[600], err[1024];
    sample(&s, "small,big", steps, NULL);
    s.m.eval_every = 0;
    s.m.snapshot_every = 0;
    path_in(p, sizeof p, "bounded.nc");
    snprintf(j, sizeof j, "%s.journal", p);
    unlink(p);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(o != NULL, "open: %s", o ? "" : err);
    if (!o) return;
    ncout_set_budget(o, budget);
    StepRecord *r = xmalloc(sizeof *r);
    *max_size = 0;
    int rc = 0;
    for (int64_t b = 0; b < steps && rc == 0; b += 10) {
        for (int64_t st = b; st < b + 10 && rc == 0; st++)
            for (int run = 0; run < 4 && rc == 0; run++) {
                make_step(r, &s, run, st);
                rc = ncout_write_step(o, r, err, sizeof err);
            }
        if (rc == 0) rc = ncout_flush(o, err, sizeof err);
        *last_size = file_size(j);
        if (*last_size > *max_size) *max_size = *last_size;
    }
    CHECK(rc == 0, "writes: %s", rc ? err : "");
    if (budget < 1) {
        CHECK(ncout_sync(o, err, sizeof err) == 0, "sync: %s", err);
        *last_size = file_size(j);
    }
    CHECK(ncout_close(o, err, sizeof err) == 0, "close: %s", err);
    Want w;                              /* (no snapshot groups: "damaged" counts them) */
    verify_ex(p, &s, steps, steps, 1, &w);
    CHECK(w.missing == 0 && w.wrong == 0, "every step there after the cut-backs (%d missing, %d "
          "wrong)", w.missing, w.wrong);
    free(r);
}

static void test_journal_bounded(void) {
    long max_size, last;
    test_bounded(1.0, &max_size, &last, 300);
    CHECK(max_size == JOURNAL_HEAD, "update at every flush: the journal is cut back to its %d-byte "
          "header each time (largest seen %ld bytes, 120 flushed steps per 10 flushes)",
          JOURNAL_HEAD, max_size);
    test_bounded(1e-9, &max_size, &last, 300);
    CHECK(max_size > 10000 && last == JOURNAL_HEAD, "updates held back: the journal grows to %ld "
          "bytes with the unpublished records, and a sync cuts it back to %ld", max_size, last);
}

/* A child writes steps [0, 40) with a budget that keeps every flushed
 * record in the journal, then dies without closing. */
static void killed_writer(const char *p, const Sample *s) {
    pid_t pid = fork();
    if (pid == 0) {
        char err[1024];
        Ncout *o = ncout_open(p, &s->m, 0, err, sizeof err);
        if (o) ncout_set_budget(o, 1e-9);
        _exit(o && write_records(o, s, 0, 40, 10, 5, -1) == 0 ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child writer");
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    long size = file_size(path);
    unsigned char *b = xmalloc(size > 0 ? (size_t)size : 1);
    *n = fp && size > 0 ? fread(b, 1, (size_t)size, fp) : 0;
    if (fp) fclose(fp);
    return b;
}

static void write_all_to(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b, 1, n, fp) == n && fclose(fp) == 0, "write %s", path);
}

/* Offset (from the file's start) of the middle step frame of a journal. */
static size_t middle_step_frame(const unsigned char *b, size_t n, uint64_t *seq) {
    Frame *fr;
    size_t used, off = JOURNAL_HEAD, at = 0;
    int corrupt, nf = frames_parse(b + JOURNAL_HEAD, n - JOURNAL_HEAD, &fr, &used, &corrupt);
    for (int i = 0, steps = 0; i < nf; i++) {
        if (fr[i].type == FR_STEP && ++steps == 40) { at = off; *seq = fr[i].seq; }
        CHECK(!fr[i].owned, "the sample's frames are too small to be deflated");
        off += (FRAME_HEAD + fr[i].len + 4 + 7) / 8 * 8;
    }
    frames_free(fr, nf);
    return at;
}

static void test_damaged_middle(void) {
    Sample s;
    char p[512], j[600], err[1024];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "damaged.nc");
    snprintf(j, sizeof j, "%s.journal", p);
    killed_writer(p, &s);
    size_t n;
    unsigned char *b = read_all(j, &n);
    uint64_t seq = 0;
    size_t at = middle_step_frame(b, n, &seq);
    CHECK(at > JOURNAL_HEAD && at + 64 < n, "a step frame in the middle (at byte %zu of %zu)", at, n);
    b[at + FRAME_HEAD + 40] ^= 0x10;                      /* one flipped bit in its payload */
    write_all_to(j, b, n);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(!o && one_line(err, j) && strstr(err, "--repair") && strstr(err, "kept"),
          "resume refuses a journal damaged in the middle: %s", err);
    if (o) ncout_close(o, err, sizeof err);
    CHECK(file_exists(j), "the journal is kept");
    int repaired = 0;
    CHECK(ncout_repair(p, &repaired, err, sizeof err) == 0 && repaired,
          "merge --repair resynchronises after the damaged frame: %s", err);
    Want w;
    verify_ex(p, &s, 40, 40, 0, &w);
    /* one step record of a 2- or 3-layer run: 5 + 8 L + 22 L values */
    CHECK(w.wrong == 0 && w.damaged == 0 && w.missing > 0 && w.missing <= 5 + 30 * 3,
          "only the damaged record is missing (%d values missing, %d wrong, %d damaged)",
          w.missing, w.wrong, w.damaged);
    CHECK(!file_exists(j), "the repaired dataset has no journal left");
    free(b);
}

/* A journal of killed_writer with one more valid frame appended. */
static void append_crafted(const char *j, RecKind kind, const void *rec, uint64_t seq) {
    Bytes payload = {0}, frame = {0};
    record_encode(kind, rec, &payload);
    frame_append(&frame, (int)kind, seq, &payload);
    FILE *fp = fopen(j, "ab");
    CHECK(fp && fwrite(frame.p, 1, frame.len, fp) == frame.len && fclose(fp) == 0, "append");
    bytes_free(&payload);
    bytes_free(&frame);
}

static void test_crafted(void) {
    Sample s;
    char p[512], j[600], err[1024];
    sample(&s, "small,big", 40, NULL);
    StepRecord *r = xmalloc(sizeof *r);
    const char *want[2] = {"outside", "backwards"};
    for (int k = 0; k < 2; k++) {
        path_in(p, sizeof p, k ? "crafted_seq.nc" : "crafted_step.nc");
        snprintf(j, sizeof j, "%s.journal", p);
        killed_writer(p, &s);
        make_step(r, &s, 1, k ? 3 : 40);                 /* step 40 of a 40-step sweep */
        append_crafted(j, REC_STEP, r, k ? 2 : 1u << 30);
        int repaired = 0;
        int rc = ncout_repair(p, &repaired, err, sizeof err);
        CHECK(rc != 0 && one_line(err, p) && (strstr(err, want[k]) || strstr(err, "not fit")),
              "a crafted frame (%s) is refused: %s", k ? "sequence going back" : "step >= steps",
              err);
        CHECK(file_exists(j) && verify(p, &s, 10, 40, 1) == 0,
              "the journal is kept, the dataset untouched");
    }
    free(r);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_ncout_journal.XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_journal_bounded();
    test_damaged_middle();
    test_crafted();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!check_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_done("test_ncout_journal");
}
