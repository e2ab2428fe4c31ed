/* test_ncout.c — the NetCDF dataset writer (ncout.h) and `merge`: values
 * read back with the NetCDF C API, padding, resume and rewrites, refused
 * configs, a second writer, bad targets, a full disk, a torn journal, merge
 * == direct write. The kill -9 robustness test is test_ncout_kill.c.
 *
 *   test_ncout                      all tests
 *   test_ncout --write-sample DIR   leave DIR/{direct,part_a,part_b}.nc for
 *                                   tests/t_dataset_xarray.sh
 *   test_ncout --bench [DIR]        cost of write_step + flush per step
 *   test_ncout --live PATH          write PATH for a few seconds, swapping it
 *                                   in at every flush (a reader runs beside) */
#include <sys/mount.h>
#include "ncout_sample.h"

/* ---- tests ---- */

static int count_leftovers(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -c -E '\\.tmp\\.|\\.lock$|\\.work$' > /dev/null",
             dir);
    return system(cmd) == 0;     /* grep -c exits 0 when it found some */
}

static void check_schema(const char *path) {
    int ncid, v, g, dim, type;
    size_t len, chunk[5];
    CHECK(nc_open(path, NC_NOWRITE, &ncid) == NC_NOERR, "%s opens", path);
    const char *dims[7] = {"size", "seed", "step", "layer", "quantile", "eval", "sv"};
    const size_t want[7] = {2, 2, 40, 3, NUM_QUANTILES, 4, TOPK};
    for (int i = 0; i < 7; i++) {
        len = 0;
        nc_inq_dimid(ncid, dims[i], &dim);
        nc_inq_dimlen(ncid, dim, &len);
        CHECK(len == want[i], "dimension %s = %zu, want %zu", dims[i], len, want[i]);
        CHECK(nc_inq_varid(ncid, dims[i][0] == 'e' ? "eval_step" : dims[i], &v) == NC_NOERR,
              "coordinate of %s", dims[i]);
    }
    int nunlim, unlim[4];
    nc_inq_unlimdims(ncid, &nunlim, unlim);
    CHECK(nunlim == 2, "step and eval are unlimited (%d unlimited dims)", nunlim);
    char *names[2] = {0}, text[64] = "";
    nc_inq_varid(ncid, "size", &v);
    nc_get_var_string(ncid, v, names);
    CHECK(names[0] && !strcmp(names[0], "small") && !strcmp(names[1], "big"), "size labels");
    nc_free_string(2, names);
    nc_get_att_text(ncid, NC_GLOBAL, "Conventions", text);
    CHECK(!strncmp(text, "CF-1.8", 6), "Conventions = CF-1.8");
    int nvars, varids[128];
    nc_inq_varids(ncid, &nvars, varids);
    for (int i = 0; i < nvars; i++) {
        char name[NC_MAX_NAME + 1];
        nc_inq_var(ncid, varids[i], name, (nc_type *)&type, NULL, NULL, NULL);
        CHECK(nc_inq_attlen(ncid, varids[i], "long_name", &len) == NC_NOERR, "%s has long_name",
              name);
        if (type != NC_STRING)
            CHECK(nc_inq_attlen(ncid, varids[i], "units", &len) == NC_NOERR, "%s has units", name);
    }
    nc_inq_varid(ncid, "token_use_q", &v);
    int shuffle, deflate, level;
    nc_inq_var_chunking(ncid, v, &type, chunk);
    nc_inq_var_deflate(ncid, v, &shuffle, &deflate, &level);
    CHECK(type == NC_CHUNKED && chunk[0] == 1 && chunk[1] == 1 && chunk[2] >= 16 && chunk[3] == 3 &&
          chunk[4] == NUM_QUANTILES && shuffle && deflate,
          "token_use_q chunked (1,1,n,L,Q), deflated");
    CHECK(nc_inq_attlen(ncid, v, "_FillValue", &len) == NC_NOERR, "token_use_q has _FillValue");
    CHECK(nc_inq_ncid(ncid, "run_big_seed11", &g) == NC_NOERR, "group run_big_seed11");
    nc_inq_varid(g, "fires_since", &v);
    nc_inq_var_chunking(g, v, &type, chunk);
    CHECK(chunk[0] == 1 && chunk[1] == 3 && chunk[2] == 24, "a snapshot is one chunk (1, L, F)");
    nc_close(ncid);
}

static void test_roundtrip(void) {
    Sample s;
    char p[512], side[600];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "direct.nc");
    CHECK(write_file(p, &s, 0, 40, 1) == 0, "write the sample");
    CHECK(verify(p, &s, 40, 40, 1) == 0, "every value reads back; padding is _FillValue");
    CHECK(closed_cleanly(p), "the finished file is cleanly closed (HDF5 superblock flag)");
    check_schema(p);
    const char *ext[3] = {".journal", ".work", ".lock"};
    for (int i = 0; i < 3; i++) {
        snprintf(side, sizeof side, "%s%s", p, ext[i]);
        CHECK(!file_exists(side), "a clean close leaves no %s", ext[i]);
    }
}

static void test_resume_rewrite(void) {
    Sample s;
    char p[512], hist[2048] = "";
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "resume.nc");
    CHECK(write_file(p, &s, 0, 25, 2) == 0, "first session: steps 0..24");
    CHECK(verify(p, &s, 25, 25, 1) == 0, "steps 0..24 there, nothing after");
    CHECK(write_file(p, &s, 15, 40, 3) == 0, "resumed session: steps 15..39 (15..24 again)");
    CHECK(verify(p, &s, 40, 40, 1) == 0, "every step exactly once after rewriting 15..24");
    int ncid;
    nc_open(p, NC_NOWRITE, &ncid);
    nc_get_att_text(ncid, NC_GLOBAL, "history", hist);
    nc_close(ncid);
    CHECK(strstr(hist, "\n") && strstr(hist, "resumed"), "history notes the resume: %s", hist);
}

static void test_config_refusal(void) {
    Sample s, other, benign;
    char p[512], err[1024];
    sample(&s, "small,big", 40, NULL);
    sample(&other, "small,big", 40, "weight_decay = 0.5\n");
    sample(&benign, "small,big", 40, "log_every = 7\nstop_at_step = 3\n");
    path_in(p, sizeof p, "direct.nc");
    Ncout *o = ncout_open(p, &other.m, 0, err, sizeof err);
    CHECK(!o && one_line(err, p) && strstr(err, "weight_decay"), "another config refused: %s", err);
    CHECK(verify(p, &s, 40, 40, 1) == 0, "the refused file is untouched");
    o = ncout_open(p, &benign.m, 0, err, sizeof err);
    CHECK(o != NULL, "keys that do not change the numbers are ignored: %s", o ? "" : err);
    if (o) CHECK(ncout_close(o, err, sizeof err) == 0, "close");
    char copy[512];
    path_in(copy, sizeof copy, "overwrite.nc");
    CHECK(write_file(copy, &s, 0, 10, 4) == 0, "a file to overwrite");
    o = ncout_open(copy, &other.m, 1, err, sizeof err);
    CHECK(o != NULL, "overwrite=1 replaces it: %s", o ? "" : err);
    if (o) ncout_close(o, err, sizeof err);
    CHECK(verify(copy, &other, 0, 0, 1) == 0, "the replacement is empty");
}

static void test_bad_records(void) {
    Sample s;
    char p[512], err[1024];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "records.nc");
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    StepRecord *r = xmalloc(sizeof *r);
    make_step(r, &s, 1, 3);
    r->run = 4;
    CHECK(ncout_write_step(o, r, err, sizeof err) != 0 && one_line(err, "runs 0..3"),
          "unknown run refused: %s", err);
    make_step(r, &s, 2, 3);
    r->L = 2;                                  /* run 2 is the 3-layer size */
    CHECK(ncout_write_step(o, r, err, sizeof err) != 0 && one_line(err, "has 2 layers"),
          "wrong layer count refused: %s", err);
    make_step(r, &s, 0, 40);
    CHECK(ncout_write_step(o, r, err, sizeof err) != 0 && one_line(err, "outside"),
          "a step past the sweep refused: %s", err);
    make_step(r, &s, 0, 39);
    CHECK(ncout_write_step(o, r, err, sizeof err) == 0, "the last step accepted");
    CHECK(ncout_close(o, err, sizeof err) == 0, "close");
    free(r);
}

static void test_lock(void) {
    Sample s;
    char p[512], err[1024];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "lock.nc");
    Ncout *a = ncout_open(p, &s.m, 0, err, sizeof err);
    Ncout *b = a ? ncout_open(p, &s.m, 0, err, sizeof err) : NULL;
    CHECK(a && !b && one_line(err, "another process"), "a second writer is refused: %s", err);
    ncout_close(a, err, sizeof err);
    b = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(b != NULL, "the lock is released by close");
    ncout_close(b, err, sizeof err);
}

static void test_bad_targets(void) {
    Sample s;
    char p[512], err[1024];
    sample(&s, "small,big", 40, NULL);
    const char *bad[3] = {"/nonexistent-reluscope-dir/x.nc", g_dir, "/proc/reluscope-x.nc"};
    for (int i = 0; i < 3; i++) {
        err[0] = '\0';
        Ncout *o = ncout_open(bad[i], &s.m, i == 1, err, sizeof err);
        CHECK(!o && one_line(err, bad[i]), "bad target %s: one-line error: %s", bad[i], err);
        if (o) ncout_close(o, err, sizeof err);
    }
    path_in(p, sizeof p, "garbage.nc");
    FILE *fp = fopen(p, "w");
    fputs("not a netcdf file\n", fp);
    fclose(fp);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(!o && one_line(err, "not a readable NetCDF-4 file"), "garbage refused: %s", err);
    char buf[64] = "";
    fp = fopen(p, "r");
    CHECK(fp && fgets(buf, sizeof buf, fp) && !strcmp(buf, "not a netcdf file\n"),
          "garbage untouched");
    if (fp) fclose(fp);
    o = ncout_open(p, &s.m, 1, err, sizeof err);
    CHECK(o != NULL, "overwrite=1 replaces garbage");
    if (o) ncout_close(o, err, sizeof err);
    CHECK(!count_leftovers(g_dir), "no temporaries or locks left behind");
}

/* Steps [0, *flushed) written in flushes of 10 until a flush fails. */
static int fill_until_failure(Ncout *o, const Sample *s, int64_t *flushed, char *err, size_t n) {
    StepRecord *r = xmalloc(sizeof *r);
    int rc = 0;
    for (int64_t b = 0; b < 100000 && rc == 0; b += 10) {
        for (int64_t st = b; st < b + 10 && rc == 0; st++)
            for (int run = 0; run < 4 && rc == 0; run++) {
                make_step(r, s, run, st);
                rc = ncout_write_step(o, r, err, n);
                if (rc == 0 && st % SNAP_EVERY == 0) {
                    SnapshotRecord sn;
                    make_snapshot(&sn, s, run, st);
                    rc = ncout_write_snapshot(o, &sn, err, n);
                    snapshot_free(&sn);
                }
            }
        if (rc == 0) rc = ncout_flush(o, err, n);
        if (rc == 0) *flushed = b + 10;
    }
    free(r);
    return rc;
}

static void test_full_disk(void) {
    Sample s;
    char mnt[512], p[600], filler[600], err[1024];
    sample(&s, "small,big", 100000, NULL);
    s.m.eval_every = 0;
    path_in(mnt, sizeof mnt, "full");
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        printf("note: full-disk test skipped (cannot mount a small tmpfs: %s)\n", strerror(errno));
        return;
    }
    snprintf(p, sizeof p, "%s/d.nc", mnt);
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    FILE *fp = fopen(filler, "w");
    char block[4096] = {1};
    while (fp && fwrite(block, 1, sizeof block, fp) == sizeof block && fflush(fp) == 0) {}
    if (fp) fclose(fp);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(!o && one_line(err, p), "full disk at create: one-line error naming the file: %s", err);
    CHECK(!file_exists(p) && !count_leftovers(mnt), "full disk at create: no file, no temporaries");
    if (o) ncout_close(o, err, sizeof err);
    unlink(filler);
    o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(o != NULL, "create on the emptied disk: %s", o ? "" : err);
    int64_t flushed = 0;
    if (o) {
        ncout_set_budget(o, 1.0);    /* HDF5 writes at every flush: it meets the full disk too */
        int rc = fill_until_failure(o, &s, &flushed, err, sizeof err);
        CHECK(rc != 0 && one_line(err, mnt), "full disk while writing: one-line error: %s", err);
        printf("full disk: failed after %lld flushed steps: %s\n", (long long)flushed, err);
        ncout_close(o, err, sizeof err);
    }
    CHECK(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=64m") == 0, "remount larger");
    int repaired = 0;
    CHECK(ncout_repair(p, &repaired, err, sizeof err) == 0, "repair after freeing space: %s", err);
    CHECK(verify(p, &s, flushed, flushed + 10, 1) == 0,
          "every flushed step survived the full disk");
    umount2(mnt, MNT_DETACH);
}

/* A child that writes steps [lo, hi) then dies without closing. */
static void write_and_die(const char *p, const Sample *s, int64_t lo, int64_t hi, double budget) {
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) {
        char err[1024];
        Ncout *o = ncout_open(p, &s->m, 0, err, sizeof err);
        if (o) ncout_set_budget(o, budget);
        _exit(o && write_records(o, s, lo, hi, 10, 5, -1) == 0 ? 0 : 3);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child writer %lld..%lld", (long long)lo,
          (long long)hi);
}

static void test_torn_journal(void) {
    Sample s;
    char p[512], j[600], w[600], other[512], cmd[2048], err[1024];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "torn.nc");
    snprintf(j, sizeof j, "%s.journal", p);
    snprintf(w, sizeof w, "%s.work", p);
    write_and_die(p, &s, 0, 40, 1e-6);        /* tiny budget: only the first flush reaches p */
    CHECK(file_exists(j) && verify(p, &s, 10, 40, 1) == 0, "killed writer: p clean, lagging");
    FILE *fp = fopen(w, "w");                  /* a working copy half-written by the kill */
    fputs("half an HDF5 file", fp);
    fclose(fp);
    fp = fopen(j, "ab");
    fwrite("RSJ2\1\0\0\0\xff\xff", 1, 10, fp);   /* half a frame: a torn append */
    fclose(fp);
    int repaired = 0;
    CHECK(ncout_repair(p, &repaired, err, sizeof err) == 0 && repaired, "repair: %s", err);
    CHECK(!file_exists(j) && !file_exists(w) && verify(p, &s, 40, 40, 1) == 0,
          "caught up from the journal, torn tail and working copy ignored");
    CHECK(closed_cleanly(p), "a caught-up file is cleanly closed");
    write_and_die(p, &s, 30, 40, 1e-6);        /* a journal of this dataset ... */
    path_in(other, sizeof other, "other.nc");
    CHECK(write_file(other, &s, 0, 20, 11) == 0, "another dataset");
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.journal'", j, other);
    CHECK(system(cmd) == 0, "copy the journal");
    CHECK(ncout_repair(other, &repaired, err, sizeof err) == 0 && !repaired &&
          verify(other, &s, 20, 20, 1) == 0, "... is never applied to another dataset");
    fp = fopen(j, "r+b");                      /* a journal whose header is damaged */
    fputs("XX", fp);
    fclose(fp);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(!o && one_line(err, j) && strstr(err, "move it away"), "damaged journal: %s", err);
    CHECK(verify(p, &s, 40, 40, 1) == 0, "and the dataset is untouched");
    unlink(j);
}

/* The variables of a group (root: ncid's own) that a file must hold. */
static int var_names(int root, const char **names) {
    const char *coords[2][3] = {{"step", "eval", "eval_step"}, {"snapshot", "snapshot_step", ""}};
    int n = 0;
    for (int i = 0; i < N_OUT_VARS; i++)
        if (outvar_in_root(&OUT_VARS[i]) == root) names[n++] = OUT_VARS[i].name;
    for (int i = 0; i < 3; i++) if (coords[!root][i][0]) names[n++] = coords[!root][i];
    return n;
}

static int same_files(const char *a, const char *b, const Sample *s) {
    int na, nb, bad = 0, va, vb;
    if (nc_open(a, NC_NOWRITE, &na) || nc_open(b, NC_NOWRITE, &nb)) return -1;
    for (int r = -1; r < s->m.n_sizes * 2; r++) {
        int ga = na, gb = nb;
        const char *names[MAX_OUT_VARS + 3];
        int n = var_names(r < 0, names);
        if (r >= 0) {
            char name[128];
            ncout_group_name(s->m.sizes[r / 2].name, s->m.seeds[r % 2], name, sizeof name);
            if (nc_inq_ncid(na, name, &ga) || nc_inq_ncid(nb, name, &gb)) { bad++; continue; }
        }
        for (int i = 0; i < n; i++) {
            const char *name = names[i];
            size_t la[5] = {0}, lb[5] = {0};
            double *x = nc_inq_varid(ga, name, &va) ? NULL : read_var(ga, va, la);
            double *y = nc_inq_varid(gb, name, &vb) ? NULL : read_var(gb, vb, lb);
            size_t total = la[0] * la[1] * la[2] * la[3] * la[4];
            if (!x || !y || memcmp(la, lb, sizeof la) || memcmp(x, y, total * sizeof *x)) {
                fprintf(stderr, "  %s differs\n", name);
                bad++;
            }
            free(x);
            free(y);
        }
    }
    nc_close(na);
    nc_close(nb);
    return bad;
}

static void test_merge(void) {
    Sample a, b, all, c;
    char pa[512], pb[512], pc[512], pa2[512], direct[512], out[512], err[1024], cmd[2048];
    sample(&a, "small", 40, NULL);
    sample(&b, "big", 40, NULL);
    sample(&all, "small,big", 40, NULL);
    sample(&c, "big", 40, "weight_decay = 0.5\n");
    path_in(pa, sizeof pa, "part_a.nc");
    path_in(pb, sizeof pb, "part_b.nc");
    path_in(pc, sizeof pc, "part_c.nc");
    path_in(pa2, sizeof pa2, "part_a2.nc");
    path_in(direct, sizeof direct, "direct.nc");
    path_in(out, sizeof out, "merged.nc");
    CHECK(write_file(pa, &a, 0, 40, 6) == 0 && write_file(pb, &b, 0, 40, 7) == 0 &&
          write_file(pc, &c, 0, 40, 8) == 0, "write the parts");
    char *in[2] = {pa, pb};
    CHECK(ncout_merge(2, in, out, 0, "test merge", err, sizeof err) == 0, "merge: %s", err);
    CHECK(same_files(out, direct, &all) == 0, "merge of the parts == a direct write of the union");
    CHECK(verify(out, &all, 40, 40, 1) == 0, "the merged file reads back");
    CHECK(ncout_merge(2, in, out, 0, "again", err, sizeof err) != 0 && one_line(err, "--force"),
          "an existing output needs --force: %s", err);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", pa, pa2);
    CHECK(system(cmd) == 0, "copy a part");
    char *overlap[2] = {pa, pa2};
    CHECK(ncout_merge(2, overlap, out, 1, "m", err, sizeof err) != 0 && one_line(err, pa) &&
          strstr(err, pa2) && strstr(err, "both hold"), "overlap refused: %s", err);
    char *mixed[2] = {pa, pc};
    CHECK(ncout_merge(2, mixed, out, 1, "m", err, sizeof err) != 0 && one_line(err, pc) &&
          strstr(err, "weight_decay"), "inconsistent configs refused: %s", err);
    snprintf(cmd, sizeof cmd, "%s.journal", pb);
    FILE *fp = fopen(cmd, "w");
    if (fp) fclose(fp);
    CHECK(ncout_merge(2, in, out, 1, "m", err, sizeof err) != 0 && one_line(err, "--repair"),
          "an input left by a killed writer is refused: %s", err);
    unlink(cmd);
    CHECK(same_files(out, direct, &all) == 0, "refused merges left the output alone");
}

/* `reluscope merge` onto a full disk: one error line, exit status 1 (no
 * crash in HDF5's exit handlers), no output left. */
static void test_merge_full_disk(void) {
    char mnt[512], cmd[4096], log[512], pa[512], pb[512];
    const char *bin = getenv("BIN") ? getenv("BIN") : "bin";
    snprintf(cmd, sizeof cmd, "%s/reluscope", bin);
    if (access(cmd, X_OK) != 0) { printf("note: merge full-disk test skipped (no %s)\n", cmd); return; }
    path_in(mnt, sizeof mnt, "mfull");
    path_in(pa, sizeof pa, "part_a.nc");
    path_in(pb, sizeof pb, "part_b.nc");
    path_in(log, sizeof log, "mfull.log");
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=64k") != 0) {
        printf("note: merge full-disk test skipped (cannot mount a small tmpfs: %s)\n",
               strerror(errno));
        return;
    }
    snprintf(cmd, sizeof cmd, "%s/reluscope merge '%s' '%s' -o '%s/out.nc' 2> '%s'", bin, pa, pb,
             mnt, log);
    int status = system(cmd);
    char line[1024] = "", extra[1024] = "";
    FILE *fp = fopen(log, "r");
    int lines = 0;
    while (fp && fgets(lines ? extra : line, sizeof line, fp)) lines++;
    if (fp) fclose(fp);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1, "merge onto a full disk exits 1, no "
          "crash (status %d)", status);
    CHECK(lines == 1 && strstr(line, "out.nc") && strstr(line, "No space left"),
          "one error line naming the output and the full disk: %s", line);
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q .", mnt);
    CHECK(system(cmd) != 0, "no output or temporary left on the full disk");
    umount2(mnt, MNT_DETACH);
}

/* One flipped byte at `off` of a copy q of p, then, in a child (HDF5 may
 * crash on a damaged file, and keeps it in tables it crashes on at exit):
 * 3 = does not open, 0 = every variable reads, 2 = a resume's readability
 * check refuses it naming the variable, 1 = reading the meta already fails
 * (one line), 4 = a resume accepts or says otherwise;
 * a signal number + 100 when HDF5 crashed. */
static int flip_and_resume(const char *p, const char *q, long off, const Sample *s) {
    char cmd[1200], err[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", p, q);
    FILE *fp = system(cmd) == 0 ? fopen(q, "r+b") : NULL;
    int c = fp && fseek(fp, off, SEEK_SET) == 0 ? fgetc(fp) : EOF;
    int ok = c != EOF && fseek(fp, off, SEEK_SET) == 0 && fputc(c ^ 0x55, fp) != EOF;
    if (fp) fclose(fp);
    if (!ok) return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int ncid;
        if (nc_open(q, NC_NOWRITE, &ncid) != NC_NOERR) _exit(3);
        int readable = schema_check_readable(ncid, q, err, sizeof err) == 0;
        nc_close(ncid);
        if (readable) _exit(0);
        Ncout *o = ncout_open(q, &s->m, 0, err, sizeof err);
        /* a damaged chunk of a variable the resume reads for its meta (the
         * size names) is refused there, as "VAR: NetCDF: HDF error" (1);
         * any other by the readability check (2) */
        _exit(!o && one_line(err, q) && strstr(err, "does not read") ? 2
              : !o && one_line(err, q) && strstr(err, "HDF error") ? 1 : 4);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* A resume reads every variable first: a dataset with one flipped byte in
 * a data chunk is refused with one line naming the variable. */
static void test_resume_damaged(void) {
    Sample s;
    char p[512], q[512];
    sample(&s, "small,big", 40, NULL);
    path_in(p, sizeof p, "direct.nc");
    path_in(q, sizeof q, "flipped.nc");
    struct stat st;
    stat(p, &st);
    int tally[5] = {0}, crashed = 0, other = 0;
    for (long off = st.st_size / 4; off < st.st_size - 64 && !tally[2] && !tally[4]; off += 101) {
        int r = flip_and_resume(p, q, off, &s);
        if (r >= 100) crashed++;
        else if (r >= 0 && r <= 4) tally[r]++;
        else other++;
    }
    printf("resume of a file with one flipped byte: %d do not open, %d read whole, %d refused "
           "reading the meta, %d refused by the readability check, %d accepted, %d crashed "
           "inside HDF5\n", tally[3], tally[0], tally[1], tally[2], tally[4], crashed);
    CHECK(tally[2] == 1 && tally[4] == 0 && other == 0,
          "a resume refuses a file whose chunk does not read, with one line naming it");
}

/* Tests that leave HDF5 with a file it cannot close (a full disk, a
 * damaged file) run in a child: HDF5 crashes on such files in its exit
 * handlers, which the program's error paths skip (_exit). */
static void in_child(void (*test)(void), const char *name) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        test();
        fflush(stdout);
        _exit(check_failures ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "%s (in a child) passed (status %d)", name, status);
}

/* ---- --bench: the cost of writing, per training step ---- */

/* What a training run reports: quantiles and batch usage are k/F (F = 1024)
 * drifting slowly; means, loss and norms carry full-precision noise. */
static void fill_bench_record(StepRecord *r, int run, int st, unsigned *seed) {
    r->run = run; r->step = st; r->L = 6;
    r->loss = 3.0 + 1.0 / (st + 1) + 1e-3 * (rand_r(seed) % 100000) / 997.0;
    r->lr = 3e-3 * (1.0 - st / 1e5);
    r->grad_norm = 0.5 + (rand_r(seed) % 100000) / 7919.0;
    r->step_time = 0.05 + (rand_r(seed) % 100000) / 1e9;
    r->tokens_seen = (int64_t)(st + 1) * 4096;
    for (int l = 0; l < 6; l++) {
        LayerMetrics *lm = &r->layers[l];
        double drift = 0.3 + 0.2 * sin(st / 700.0 + l);
        lm->token_use_mean = drift * 0.2 + (rand_r(seed) % 100000) / 3.1e7;
        lm->seq_use_mean = drift * 0.6 + (rand_r(seed) % 100000) / 3.1e7;
        lm->batch_use = floor(1024 * (drift + 0.4) + rand_r(seed) % 3) / 1024.0;
        lm->dead_frac = floor(1024 * (0.6 - drift) + rand_r(seed) % 3) / 1024.0;
        lm->turned_off = (int32_t)(rand_r(seed) % 3);
        lm->revived = (int32_t)(rand_r(seed) % 2);
        for (int q = 0; q < NUM_QUANTILES; q++) {
            double level = 0.5 + q / 10.0;
            lm->token_use_q[q] = floor(1024 * drift * 0.2 * level + rand_r(seed) % 3) / 1024.0;
            lm->seq_use_q[q] = floor(1024 * drift * 0.6 * level + rand_r(seed) % 3) / 1024.0;
        }
    }
}

static double bench_case(const char *p, int n_sizes, int n_seeds, int steps, double budget) {
    NcoutMeta m;
    char err[1024];
    memset(&m, 0, sizeof m);
    m.n_sizes = n_sizes;
    m.n_seeds = n_seeds;
    for (int i = 0; i < n_sizes; i++) {
        m.sizes[i] = (ModelSize){"M", 6, 256, 8, 1024, 256, 4096, .pos = POS_LEARNED};
        m.sizes[i].name[1] = (char)('0' + i);
    }
    for (int k = 0; k < n_seeds; k++) m.seeds[k] = (uint64_t)k;
    m.steps = steps;
    m.config_text = "bench = 1\n";
    unlink(p);
    Ncout *o = ncout_open(p, &m, 1, err, sizeof err);
    if (!o) { fprintf(stderr, "bench: %s\n", err); return -1; }
    ncout_set_budget(o, budget);
    StepRecord *r = xcalloc(1, sizeof *r);
    unsigned seed = 3;
    double spent = 0;
    for (int st = 0; st < steps; st++)
        for (int run = 0; run < n_sizes * n_seeds; run++) {
            fill_bench_record(r, run, st, &seed);
            double t = now_seconds();
            if (ncout_write_step(o, r, err, sizeof err) != 0) return -1;
            int last = (st + 1) % 10 == 0 && run + 1 == n_sizes * n_seeds;
            if (last && ncout_flush(o, err, sizeof err)) return -1;
            spent += now_seconds() - t;
        }
    double t = now_seconds();
    if (ncout_close(o, err, sizeof err) != 0) return -1;
    double close_s = now_seconds() - t;
    free(r);
    struct stat st;
    stat(p, &st);
    printf("  %d run(s) x %d steps, L=6, flush every 10 steps, budget %g: %.1f us per run-step "
           "(close %.0f ms; file %.1f MB)\n", n_sizes * n_seeds, steps, budget,
           1e6 * spent / ((double)steps * n_sizes * n_seeds), close_s * 1e3, st.st_size / 1e6);
    return spent;
}

static int bench(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/bench.nc", dir);
    printf("ncout write cost: ncout_write_step + ncout_flush per step, in %s\n", dir);
    int rc = 0;
    const double budgets[2] = {NCOUT_DEFAULT_BUDGET, 1.0};
    for (int b = 0; b < 2 && rc == 0; b++)
        rc = bench_case(p, 1, 1, 5000, budgets[b]) < 0 || bench_case(p, 3, 3, 2000, budgets[b]) < 0;
    unlink(p);
    return rc;
}

static int write_samples(const char *dir) {
    Sample a, b, all;
    char p[600];
    sample(&a, "small", 40, NULL);
    sample(&b, "big", 40, NULL);
    sample(&all, "small,big", 40, NULL);
    snprintf(p, sizeof p, "%s/direct.nc", dir);
    int rc = write_file(p, &all, 0, 40, 1);
    snprintf(p, sizeof p, "%s/part_a.nc", dir);
    rc |= write_file(p, &a, 0, 40, 2);
    snprintf(p, sizeof p, "%s/part_b.nc", dir);
    rc |= write_file(p, &b, 0, 40, 3);
    return rc ? 1 : 0;
}

/* --live PATH: a writer that swaps PATH at every flush for a few seconds,
 * for t_dataset_xarray.sh's concurrent reader. */
static int live_writer(const char *path) {
    Sample s;
    char err[1024];
    sample(&s, "small,big", 600, NULL);
    unlink(path);
    Ncout *o = ncout_open(path, &s.m, 0, err, sizeof err);
    if (!o) { fprintf(stderr, "%s\n", err); return 1; }
    ncout_set_budget(o, 1.0);
    g_step_us = 300;
    int rc = write_records(o, &s, 0, 600, 10, 1, -1);
    return ncout_close(o, err, sizeof err) != 0 || rc != 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--live")) return live_writer(argv[2]);
    if (argc > 2 && !strcmp(argv[1], "--write-sample")) return write_samples(argv[2]);
    if (argc > 1 && !strcmp(argv[1], "--bench")) return bench(argc > 2 ? argv[2] : "/tmp");
    snprintf(g_dir, sizeof g_dir, "/tmp/test_ncout.XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_roundtrip();
    test_resume_rewrite();
    test_config_refusal();
    test_bad_records();
    test_lock();
    test_bad_targets();
    in_child(test_full_disk, "full disk");
    test_torn_journal();
    test_merge();
    test_merge_full_disk();
    test_resume_damaged();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!check_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_done("test_ncout");
}
