/* data.h — token shards (llm.c layout, SPEC §5) and the global-batch sampler.
 *
 * A shard: 256 x int32 header (magic 20240520, version 1, token count, rest 0)
 * then `count` uint16 tokens. Shards stay open and are read with pread (not
 * mmap: a shard truncated under a running job would raise SIGBUS); every
 * read checks that the file is unchanged since it was validated and that
 * every token is < V, so a shard rewritten in place is one error line.
 * Counts and offsets are 64-bit, so files over 2 GiB and more than 2^31
 * tokens work.
 *
 * The sampler makes the global batch of step s a pure function of
 * (seed, step, shards): the corpus is cut into windows of T+1 tokens
 * (window w starts at token w*T of its shard; neighbours share one token).
 * Random mode visits the windows of each epoch in a seeded pseudo-random
 * permutation (a Feistel bijection, so no state is kept); sequential mode in
 * order. Global sequence g = step*B + b uses window perm_{seed,epoch}(g mod W)
 * with epoch = g / W. Rank r of R takes sequences [r*B/R, (r+1)*B/R).
 */
#ifndef RELUSCOPE_DATA_H
#define RELUSCOPE_DATA_H
#include <stddef.h>
#include <stdint.h>
#include "config.h"

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_HEADER_INTS 256

typedef struct {
    char path[RS_PATH_MAX];
    int fd;                     /* open read-only while the set is open */
    int64_t count;              /* tokens */
    int V;                      /* every token read is checked < V (0: not checked) */
    int64_t bytes;              /* the file as validated: size and modification time */
    int64_t mtime_ns;
    uint32_t crc;               /* CRC-32 of the token bytes, as validated */
} Shard;

typedef struct {
    int n_shards;
    Shard *shards;
    int64_t total_tokens;
    uint64_t fingerprint;       /* of every shard's token count and CRC, in order */
    char pattern[RS_PATH_MAX];  /* the glob it was opened with (for messages) */
} TokenSet;

/* Open every shard matching a glob (sorted by name). Validates magic,
 * version, header count vs file size, and every token < V (V = 0: skip);
 * refuses anything but regular files (a FIFO is refused, never waited on).
 * On error: "PATH: problem" in err, -1, nothing left open. */
int  tokenset_open(TokenSet *ts, const char *glob_pattern, int V, char *err, size_t errlen);
void tokenset_close(TokenSet *ts);

/* Tokens [first, first+n) of a shard into out, checked: the file must be
 * the one validated (same size and modification time) and every token < V.
 * -1 + "PATH: problem" otherwise. */
int shard_read(const Shard *sh, int64_t first, int64_t n, uint16_t *out, char *err, size_t errlen);

/* Write a shard atomically. 0 ok, -1 + err. 1 <= count <= 2^32-1 (the
 * header count is read as uint32, so one shard may exceed 2^31 tokens). */
int shard_write(const char *path, const uint16_t *tokens, int64_t count, char *err, size_t errlen);

/* Windows of T+1 tokens at stride T in a shard of `count` tokens:
 * (count-1)/T, or 0 when count < T+1. Windows never straddle shards. */
int64_t shard_windows(int64_t count, int T);
int64_t tokenset_windows(const TokenSet *ts, int T);

typedef struct {
    const TokenSet *ts;
    int T, B;
    SamplerKind kind;
    uint64_t seed;
    int64_t n_windows;          /* total windows of T+1 tokens */
    int64_t *shard_first_window;/* [n_shards+1] prefix sums */
} Sampler;

/* -1 + err if the corpus holds fewer than B windows (smaller than one batch). */
int  build_sampler(Sampler *s, const TokenSet *ts, int T, int B, SamplerKind kind,
                   uint64_t seed, char *err, size_t errlen);
void free_sampler(Sampler *s);

/* Window index of global sequence g (pure function). */
int64_t sampler_window(const Sampler *s, int64_t g);

/* The seeded bijection of [0, W) used by random mode for one epoch. */
int64_t sampler_permute(uint64_t seed, int64_t epoch, int64_t i, int64_t W);

/* Global window w -> (shard index, token offset of its first token). */
void sampler_locate(const Sampler *s, int64_t w, int *shard, int64_t *offset);

/* Copy sequences [first, first+count) of step's global batch into out:
 * count rows of T+1 tokens (inputs are row[0..T-1], targets row[1..T]).
 * -1 + err when a shard changed since it was opened (shard_read). */
int sampler_fill(const Sampler *s, int64_t step, int first, int count, uint16_t *out,
                 char *err, size_t errlen);

/* The fixed held-out batch: the first n_seq windows of the set in order
 * (identical for every seed and size with the same T). If the set holds
 * fewer windows it wraps around; call heldout_check first to refuse that. */
int heldout_fill(const TokenSet *ts, int T, int n_seq, uint16_t *out, char *err, size_t errlen);

/* -1 + "PATTERN: the held-out set needs N windows ..." if the set holds
 * fewer than n_seq windows of T+1 tokens. */
int  heldout_check(const TokenSet *ts, int T, int n_seq, char *err, size_t errlen);

#endif
