/* util.h — errors, allocation, atomic files, checksums, timing, byte buffers.
 * Plain C, no MPI: every module may use it. */
#ifndef RELUSCOPE_UTIL_H
#define RELUSCOPE_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RS_PATH_MAX 4096

/* Print "reluscope: error: <message>" on one line and exit(1).
 * A hook (set by comm.c) lets the MPI layer abort the whole job instead. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
void warn_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Format a one-line error into err (if err and errlen) and return -1: the
 * idiom of every function that reports "FILE: problem" to its caller. */
int fail_msg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void set_die_hook(void (*hook)(int exit_code));

void *xmalloc(size_t bytes);            /* dies on failure; names the size */
void *xcalloc(size_t n, size_t size);
void *xaligned_alloc(size_t bytes);     /* 64-byte aligned, zeroed; free with free() */

/* Atomic file: write to "<path>.tmp.<pid>", then fsync + rename + fsync(dir).
 * A crash at any instant leaves either the old file or the complete new one. */
typedef struct {
    FILE *fp;
    char tmp_path[RS_PATH_MAX];
    char final_path[RS_PATH_MAX];
} AtomicFile;
int  atomic_open(AtomicFile *af, const char *path);   /* 0 ok, -1 (errno set) */
int  atomic_commit(AtomicFile *af);                   /* 0 ok, -1: tmp removed */
void atomic_abort(AtomicFile *af);                    /* remove the temporary */
/* Commit, or abort if write_failed; on failure "PATH: problem" in err, -1. */
int  atomic_finish(AtomicFile *af, int write_failed, char *err, size_t errlen);
int  fsync_dir_of(const char *path);

/* Open path read-only for reading a file the program expects to be regular:
 * with O_NONBLOCK (an open of a FIFO would wait for a writer forever, and a
 * read of it would block), then checked with fstat. Returns the fd (blocking
 * mode restored), or -1 with the bare problem in why: "cannot open: <errno
 * text>", or "is a FIFO, not a regular file" (a directory, socket, device
 * likewise). */
struct stat;
int open_regular(const char *path, struct stat *st, char *why, size_t n);

/* Under an address-space limit (ulimit -v, RLIMIT_AS), is there room for
 * `planned` more bytes beyond what is mapped now? OpenBLAS spins forever
 * when its buffers cannot be mapped, so a job that would hit the limit is
 * refused at start instead. 0, or -1 with the numbers in why. */
int address_space_check(double planned, char *why, size_t n);

/* Create a directory and its parents (like mkdir -p). 0 ok, -1 errno set. */
int mkdir_p(const char *path);

uint32_t crc32_update(uint32_t crc, const void *data, size_t len); /* zlib crc32 */

double now_seconds(void);               /* monotonic clock */
/* A whole decimal integer (no trailing text, no overflow): 0 ok, -1 not one. */
int parse_i64(const char *s, int64_t *v);

/* Write all bytes; fail on short write. 0 ok, -1 error. */
int write_all(FILE *fp, const void *buf, size_t len);

/* Rewrites a message in place so that it can go to a terminal: control bytes
 * (C0, DEL, C1) and bytes that are not UTF-8 (a binary file given as input
 * echoes them) become \xNN; valid UTF-8 text stays. Idempotent. Returns -1,
 * so that a reader can end with `return terminal_safe(err, errlen);`. */
int terminal_safe(char *msg, size_t msglen);

/* A growable byte buffer (dies when memory runs out) ... */
typedef struct {
    unsigned char *p;
    size_t len, cap;
} Bytes;
void bytes_reserve(Bytes *b, size_t more);           /* room for `more` bytes after len */
void bytes_put(Bytes *b, const void *src, size_t n);
void bytes_put_u32(Bytes *b, uint32_t v);            /* native endian */
void bytes_put_u64(Bytes *b, uint64_t v);
void bytes_put_f64(Bytes *b, double v);
void bytes_pad8(Bytes *b);                           /* zeros up to a multiple of 8 */
void bytes_free(Bytes *b);

/* ... and bounds-checked reading of what bytes_put_* wrote: a read past
 * the end returns 0 / NULL and sets `bad`, which sticks. */
typedef struct {
    const unsigned char *p;
    size_t n, off;
    int bad;
} Cursor;
uint32_t cur_u32(Cursor *c);
uint64_t cur_u64(Cursor *c);
double   cur_f64(Cursor *c);
const void *cur_take(Cursor *c, size_t n);           /* n bytes in place */

#endif
