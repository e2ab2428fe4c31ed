/* util.c — errors, allocation, atomic files, checksums, timing, byte buffers. */
#include "util.h"
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static void (*die_hook)(int) = NULL;

void set_die_hook(void (*hook)(int)) { die_hook = hook; }

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("reluscope: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    if (die_hook) die_hook(1);
    /* _exit, not exit: atexit handlers of libraries (HDF5 closing a file
     * whose write just failed) must not run on a broken state and crash */
    _exit(1);
}

void warn_msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("reluscope: warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int fail_msg(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of memory allocating %zu bytes", bytes);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *xaligned_alloc(size_t bytes) {
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) die("out of memory allocating %zu bytes", bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

int atomic_open(AtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) + 32 >= RS_PATH_MAX) { errno = ENAMETOOLONG; return -1; }
    snprintf(af->final_path, sizeof af->final_path, "%s", path);
    snprintf(af->tmp_path, sizeof af->tmp_path, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    return af->fp ? 0 : -1;
}

int atomic_commit(AtomicFile *af) {
    int saved;
    if (fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0) goto fail;
    if (fclose(af->fp) != 0) { af->fp = NULL; goto fail; }
    af->fp = NULL;
    if (rename(af->tmp_path, af->final_path) != 0) goto fail;
    fsync_dir_of(af->final_path);
    return 0;
fail:
    saved = errno;
    atomic_abort(af);
    errno = saved;
    return -1;
}

void atomic_abort(AtomicFile *af) {
    if (af->fp) fclose(af->fp);
    af->fp = NULL;
    if (af->tmp_path[0]) unlink(af->tmp_path);
}

int atomic_finish(AtomicFile *af, int write_failed, char *err, size_t errlen) {
    if (write_failed) {
        int saved = errno;
        atomic_abort(af);
        return fail_msg(err, errlen, "%s: write failed: %s", af->final_path, strerror(saved));
    }
    if (atomic_commit(af) != 0)
        return fail_msg(err, errlen, "%s: cannot commit: %s", af->final_path, strerror(errno));
    return 0;
}

int fsync_dir_of(const char *path) {
    char copy[RS_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int open_regular(const char *path, struct stat *st, char *why, size_t n) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return fail_msg(why, n, "cannot open: %s", strerror(errno));
    if (fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        return fail_msg(why, n, "cannot open: %s", strerror(e));
    }
    if (!S_ISREG(st->st_mode)) {
        mode_t m = st->st_mode;
        close(fd);
        return fail_msg(why, n, "is %s, not a regular file",
                        S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
                        : S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device"
                        : "special");
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

int address_space_check(double planned, char *why, size_t n) {
    struct rlimit lim;
    if (getrlimit(RLIMIT_AS, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 0;
    double mapped = 0;   /* what is mapped now: libraries, MPI, OpenBLAS */
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long pages;
    if (fp && fscanf(fp, "%lu", &pages) == 1) mapped = (double)pages * (double)sysconf(_SC_PAGESIZE);
    if (fp) fclose(fp);
    double limit = (double)lim.rlim_cur, mb = 1024.0 * 1024.0;
    if (mapped + planned <= limit) return 0;
    return fail_msg(why, n, "the address-space limit (ulimit -v) is %.0f MB, but %.0f MB are "
                    "mapped already and this job plans %.0f MB more (model, optimizer, "
                    "activations, BLAS buffers): raise it to at least %.0f MB (ulimit -v %.0f) "
                    "or train smaller sizes", limit / mb, mapped / mb, planned / mb,
                    (mapped + planned) / mb, (mapped + planned) / 1024.0);
}

int mkdir_p(const char *path) {
    char buf[RS_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) { errno = ENAMETOOLONG; return -1; }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) { errno = ENOTDIR; return -1; }
    return 0;
}

uint32_t crc32_update(uint32_t crc, const void *data, size_t len) {
    const unsigned char *p = data;
    while (len > 0) {   /* zlib takes uInt lengths: feed in 1 GiB pieces */
        uInt piece = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = (uint32_t)crc32(crc, p, piece);
        p += piece;
        len -= piece;
    }
    return crc;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int write_all(FILE *fp, const void *buf, size_t len) {
    return fwrite(buf, 1, len, fp) == len ? 0 : -1;
}

/* Length of the valid UTF-8 sequence at s (0 if it is not one). */
static size_t utf8_len(const unsigned char *s) {
    size_t len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (s[0] >= 0xF5 || (s[0] == 0xC2 && s[1] < 0xA0)) return 0;   /* C1 controls too */
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* See util.h. Idempotent: the output is printable ASCII and valid UTF-8. */
int terminal_safe(char *err, size_t errlen) {
    if (!err || errlen == 0) return -1;
    size_t n = strlen(err), o = 0;
    char *in = xmalloc(n + 1);
    memcpy(in, err, n + 1);
    for (size_t i = 0; i < n && o + 1 < errlen;) {
        const unsigned char *u = (const unsigned char *)in + i;
        size_t len = u[0] < 0x80 ? (u[0] >= 0x20 && u[0] != 0x7F) : utf8_len(u);
        if (len == 0) {
            if (o + 5 > errlen) break;
            o += (size_t)snprintf(err + o, errlen - o, "\\x%02X", u[0]);
            i++;
        } else {
            if (o + len >= errlen) break;
            memcpy(err + o, u, len);
            o += len;
            i += len;
        }
    }
    err[o] = '\0';
    free(in);
    return -1;
}

/* ---- byte buffers ---- */

void bytes_reserve(Bytes *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) die("out of memory growing a buffer to %zu bytes", cap);
    b->p = p;
    b->cap = cap;
}

void bytes_put(Bytes *b, const void *src, size_t n) {
    bytes_reserve(b, n);
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}
void bytes_put_u32(Bytes *b, uint32_t v) { bytes_put(b, &v, 4); }
void bytes_put_u64(Bytes *b, uint64_t v) { bytes_put(b, &v, 8); }
void bytes_put_f64(Bytes *b, double v) { bytes_put(b, &v, 8); }
void bytes_pad8(Bytes *b) {
    static const unsigned char zero[8] = {0};
    bytes_put(b, zero, (8 - b->len % 8) % 8);
}
void bytes_free(Bytes *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

const void *cur_take(Cursor *c, size_t n) {
    if (c->bad || n > c->n - c->off) { c->bad = 1; return NULL; }
    const void *p = c->p + c->off;
    c->off += n;
    return p;
}
uint32_t cur_u32(Cursor *c) {
    uint32_t v = 0;
    const void *p = cur_take(c, 4);
    if (p) memcpy(&v, p, 4);
    return v;
}
uint64_t cur_u64(Cursor *c) {
    uint64_t v = 0;
    const void *p = cur_take(c, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}
double cur_f64(Cursor *c) {
    double v = 0;
    const void *p = cur_take(c, 8);
    if (p) memcpy(&v, p, 8);
    return v;
}

int parse_i64(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *v = x;
    return 0;
}
