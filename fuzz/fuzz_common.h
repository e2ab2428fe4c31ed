/* fuzz_common.h — shared by the libFuzzer harnesses (fuzz/run.sh builds them).
 *
 * The readers under test take a path, so each input is written to a file in
 * a private temporary folder (one per fuzzing process, removed at exit).
 * A harness never calls MPI and never lets the code under test reach die():
 * any exit() inside the target counts as a failure for libFuzzer. */
#ifndef RELUSCOPE_FUZZ_COMMON_H
#define RELUSCOPE_FUZZ_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[64];

static void fz_cleanup(void) {
    if (!fz_dir[0]) return;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0) { /* nothing to do: /tmp is cleaned eventually */ }
}

/* A private folder for this process's files. */
static const char *fz_tmpdir(void) {
    if (!fz_dir[0]) {
        snprintf(fz_dir, sizeof fz_dir, "/tmp/reluscope-fuzz.XXXXXX");
        if (!mkdtemp(fz_dir)) { perror("mkdtemp"); abort(); }
        atexit(fz_cleanup);
    }
    return fz_dir;
}

/* "<tmpdir>/<name>" into out. */
static void fz_path(char *out, size_t n, const char *name) {
    snprintf(out, n, "%s/%s", fz_tmpdir(), name);
}

/* Write exactly these bytes to path (replacing it). Aborts on I/O failure:
 * that is the harness's problem, not a finding. */
static void fz_write(const char *path, const uint8_t *data, size_t size) {
    FILE *fp = fopen(path, "wb");
    if (!fp) { perror(path); abort(); }
    if (size && fwrite(data, 1, size, fp) != size) { perror(path); abort(); }
    if (fclose(fp) != 0) { perror(path); abort(); }
}

/* An error message must be one non-empty line that names the file. */
static void fz_check_error(const char *err, const char *path) {
    if (!err[0]) { fprintf(stderr, "empty error message\n"); abort(); }
    if (strchr(err, '\n')) { fprintf(stderr, "multi-line error: %s\n", err); abort(); }
    if (path && !strstr(err, path)) {
        fprintf(stderr, "error does not name the file %s: %s\n", path, err);
        abort();
    }
}

#endif
