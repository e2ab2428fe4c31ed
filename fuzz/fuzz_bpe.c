/* fuzz_bpe.c — the BPE merges reader (bpe.h: bpe_load). The input is the
 * whole tokenizer.bpe file. On a file it accepts: save and reload give the
 * same merges, and the tokenizer encodes the input bytes themselves so that
 * decode(encode(x)) == x. */
#include "bpe.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[128], path2[128], err[4200];
    fz_path(path, sizeof path, "tokenizer.bpe");
    fz_path(path2, sizeof path2, "resaved.bpe");
    fz_write(path, data, size);
    Bpe *b = bpe_load(path, err, sizeof err);
    if (!b) { fz_check_error(err, path); return 0; }
    int V = bpe_vocab(b), M = bpe_n_merges(b);
    if (V != 256 + M || V > BPE_MAX_VOCAB) abort();
    if (bpe_save(b, path2, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); abort(); }
    Bpe *b2 = bpe_load(path2, err, sizeof err);
    if (!b2) { fprintf(stderr, "a saved tokenizer does not reload: %s\n", err); abort(); }
    if (bpe_n_merges(b2) != M) abort();
    for (int i = 0; i < M; i++) {
        uint16_t l1, r1, l2, r2;
        bpe_merge_pair(b, i, &l1, &r1);
        bpe_merge_pair(b2, i, &l2, &r2);
        if (l1 != l2 || r1 != r2) abort();
    }
    bpe_free(b2);
    uint16_t *tok = malloc((size ? size : 1) * sizeof *tok);
    uint8_t *back = malloc(size ? size : 1);
    size_t n = bpe_encode(b, data, size, tok);
    if (n > size) abort();
    for (size_t i = 0; i < n; i++) if (tok[i] >= V) abort();
    size_t m = bpe_decode(b, tok, n, back, size);
    if (m != size || (size && memcmp(back, data, size) != 0)) {
        fprintf(stderr, "decode(encode(x)) != x for %zu bytes\n", size);
        abort();
    }
    free(tok);
    free(back);
    bpe_free(b);
    return 0;
}
