/* bpe.h — byte-level BPE: pre-splitting, training, encoding, decoding, and
 * the merges file (docs/data.md describes the rules and the format).
 *
 * Tokens 0..255 are the bytes; merge i joins tokens (a, b) into token 256+i.
 * The byte-level tokenizer is the same object with no merges (vocab 256), so
 * every tokenizer decodes exactly: decode(encode(x)) == x for any bytes.
 *
 * Text is first cut into chunks (pre-splitting, bpe_next_chunk); merges
 * never cross a chunk boundary, so training counts each distinct chunk once
 * and encoding caches the tokens of each distinct chunk. */
#ifndef RELUSCOPE_BPE_H
#define RELUSCOPE_BPE_H
#include <stddef.h>
#include <stdint.h>

#define BPE_FORMAT "reluscope-bpe"
#define BPE_VERSION 1
#define BPE_MAX_VOCAB 65536     /* tokens are uint16 */
#define BPE_MAX_CHUNK 256       /* bytes; longer runs are cut (see bpe_next_chunk) */

typedef struct Bpe Bpe;

/* ---- pre-splitting and UTF-8 ---- */

/* End (exclusive) of the chunk that starts at pos < len. */
size_t bpe_next_chunk(const uint8_t *text, size_t len, size_t pos);

/* 0 if s is valid UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF); else -1 with the offset of the first bad byte. */
int utf8_check(const uint8_t *s, size_t len, size_t *bad_offset);

/* ---- tokenizers ---- */

Bpe *bpe_new_bytes(void);                      /* V = 256, no merges */

/* From a merge list: pairs[2i], pairs[2i+1] make token 256+i. NULL + err
 * if a pair names a token not yet defined, repeats an earlier pair, or
 * makes a token longer than BPE_MAX_CHUNK bytes. */
Bpe *bpe_from_merges(const uint16_t *pairs, int n_merges, char *err, size_t errlen);
void bpe_free(Bpe *b);

int  bpe_vocab(const Bpe *b);                  /* 256 + merges */
int  bpe_n_merges(const Bpe *b);
void bpe_merge_pair(const Bpe *b, int i, uint16_t *left, uint16_t *right);

/* The bytes of one token (tok < vocab); returns their count. */
size_t bpe_token_bytes(const Bpe *b, uint16_t tok, const uint8_t **bytes);

/* Encode whole chunks of text starting at *pos while they fit in out
 * (cap >= BPE_MAX_CHUNK guarantees progress); advances *pos and returns the
 * token count. Not thread-safe: it fills the per-chunk cache. */
size_t bpe_encode_some(Bpe *b, const uint8_t *text, size_t len, size_t *pos,
                       uint16_t *out, size_t cap);

/* Encode all of text; out needs room for len tokens (a token is >= 1 byte). */
size_t bpe_encode(Bpe *b, const uint8_t *text, size_t len, uint16_t *out);

/* Decode n tokens into out (up to cap bytes). Returns the full decoded
 * length (which may exceed cap), or SIZE_MAX if a token is >= vocab. */
size_t bpe_decode(const Bpe *b, const uint16_t *tokens, size_t n, uint8_t *out, size_t cap);

/* ---- the merges file ----
 *   line 1:  reluscope-bpe 1 vocab V merges M        (V = 256 + M)
 *   line 2+i: "A B"  merge i joins tokens A and B into token 256+i
 * Save is atomic. Load validates everything; errors read "PATH:LINE: problem". */
int  bpe_save(const Bpe *b, const char *path, char *err, size_t errlen);
Bpe *bpe_load(const char *path, char *err, size_t errlen);

/* ---- training ---- */

typedef struct BpeCounter BpeCounter;   /* distinct chunks and their counts */

BpeCounter *bpe_counter_new(void);
void   bpe_counter_free(BpeCounter *c);
void   bpe_counter_add(BpeCounter *c, const uint8_t *text, size_t len);
size_t bpe_counter_unique(const BpeCounter *c);
int64_t bpe_counter_total(const BpeCounter *c);             /* chunks seen */
/* Distinct chunk i: its bytes (returned), length and count. */
const uint8_t *bpe_counter_chunk(const BpeCounter *c, size_t i, size_t *len, int64_t *count);

typedef struct {
    int n_merges;           /* learned (fewer than asked if the pairs ran out) */
    size_t unique_chunks;
    int64_t total_chunks;
    double seconds;
} BpeTrainStats;

/* Learn vocab-256 merges from the counted chunks: repeatedly merge the most
 * frequent adjacent pair (ties: smallest (left, right)), with incremental
 * pair counts. 256 <= vocab <= 65536, else NULL + err. Stops early, with
 * fewer merges, when no pair is left. */
Bpe *bpe_train(const BpeCounter *c, int vocab, BpeTrainStats *stats, char *err, size_t errlen);

#endif
