/* bpe_train.c — learning BPE merges from counted chunks.
 *
 * Each distinct chunk is a "word" (a token array with a count). Pair counts
 * are kept for every adjacent pair, with a list of the words that contain
 * it, and a max-heap picks the next merge. A merge rewrites only the words
 * on its pair's list and adjusts the counts of the pairs next to each
 * occurrence, so one merge costs about the number of its occurrences, not a
 * pass over the corpus: that is what makes a few MB train in about a second.
 *
 * The heap is lazy: whenever a pair's count changes it is pushed again with
 * its new count, so the one entry equal to the current count is valid and
 * every other entry of that pair is stale and dropped when it surfaces. */
#include "bpe.h"
#include "util.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { uint16_t *tok; uint32_t len; int64_t count; } Word;

typedef struct {
    uint32_t key;               /* left << 16 | right */
    int touched;                /* count changed during the current merge */
    int64_t count;              /* occurrences weighted by word counts */
    int32_t *where; int32_t nw, cw;   /* words that (may) contain the pair */
} Pair;

typedef struct { int64_t count; uint32_t key; } HeapItem;

typedef struct {
    Word *words; size_t n_words;
    uint16_t *arena;
    Pair *pairs; size_t n_pairs, cap_pairs;
    int32_t *slot; size_t mask;      /* key -> pair index, -1 empty */
    HeapItem *heap; size_t n_heap, cap_heap;
    int32_t *touched; size_t n_touched, cap_touched;
} Trainer;

static inline uint32_t pkey(uint16_t l, uint16_t r) { return (uint32_t)l << 16 | r; }

static inline size_t key_slot(uint32_t key, size_t mask) {
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 24) & mask;
}

static void grow_slots(Trainer *tr) {
    size_t n = 2 * (tr->mask + 1);
    free(tr->slot);
    tr->slot = xmalloc(n * sizeof *tr->slot);
    memset(tr->slot, 0xff, n * sizeof *tr->slot);
    tr->mask = n - 1;
    for (size_t i = 0; i < tr->n_pairs; i++) {
        size_t j = key_slot(tr->pairs[i].key, tr->mask);
        while (tr->slot[j] >= 0) j = (j + 1) & tr->mask;
        tr->slot[j] = (int32_t)i;
    }
}

static int32_t pair_index(Trainer *tr, uint32_t key) {
    size_t j = key_slot(key, tr->mask);
    for (; tr->slot[j] >= 0; j = (j + 1) & tr->mask)
        if (tr->pairs[tr->slot[j]].key == key) return tr->slot[j];
    if (tr->n_pairs == tr->cap_pairs) {
        tr->cap_pairs = tr->cap_pairs ? 2 * tr->cap_pairs : 4096;
        tr->pairs = realloc(tr->pairs, tr->cap_pairs * sizeof *tr->pairs);
        if (!tr->pairs) die("out of memory growing the BPE pair table");
    }
    int32_t idx = (int32_t)tr->n_pairs++;
    tr->pairs[idx] = (Pair){ .key = key };
    tr->slot[j] = idx;
    if (2 * tr->n_pairs > tr->mask + 1) grow_slots(tr);
    return idx;
}

static void push_i32(int32_t **a, size_t *n, size_t *cap, int32_t v) {
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        *a = realloc(*a, *cap * sizeof **a);
        if (!*a) die("out of memory growing a BPE training list");
    }
    (*a)[(*n)++] = v;
}

/* Change a pair's count by delta; a word gaining the pair joins its list. */
static void pair_delta(Trainer *tr, uint32_t key, int64_t delta, int32_t word) {
    int32_t i = pair_index(tr, key);
    Pair *p = &tr->pairs[i];
    p->count += delta;
    if (delta > 0 && (p->nw == 0 || p->where[p->nw - 1] != word)) {
        size_t nw = (size_t)p->nw, cw = (size_t)p->cw;
        push_i32(&p->where, &nw, &cw, word);
        p->nw = (int32_t)nw;
        p->cw = (int32_t)cw;
    }
    if (!p->touched) {
        p->touched = 1;
        push_i32(&tr->touched, &tr->n_touched, &tr->cap_touched, i);
    }
}

/* ---------------------------------------------------------------- heap */

static inline int better(HeapItem x, HeapItem y) {   /* ties: smaller pair first */
    return x.count > y.count || (x.count == y.count && x.key < y.key);
}

static void heap_push(Trainer *tr, int64_t count, uint32_t key) {
    if (tr->n_heap == tr->cap_heap) {
        tr->cap_heap = tr->cap_heap ? 2 * tr->cap_heap : 4096;
        tr->heap = realloc(tr->heap, tr->cap_heap * sizeof *tr->heap);
        if (!tr->heap) die("out of memory growing the BPE heap");
    }
    HeapItem it = { count, key };
    size_t i = tr->n_heap++;
    while (i > 0 && better(it, tr->heap[(i - 1) / 2])) {
        tr->heap[i] = tr->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    tr->heap[i] = it;
}

static HeapItem heap_pop(Trainer *tr) {
    HeapItem top = tr->heap[0], last = tr->heap[--tr->n_heap];
    size_t i = 0, n = tr->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && better(tr->heap[c + 1], tr->heap[c])) c++;
        if (!better(tr->heap[c], last)) break;
        tr->heap[i] = tr->heap[c];
        i = c;
    }
    if (n > 0) tr->heap[i] = last;
    return top;
}

/* The most frequent pair, or -1 when no pair is left. */
static int32_t pop_best(Trainer *tr) {
    while (tr->n_heap > 0) {
        HeapItem it = heap_pop(tr);
        int32_t i = pair_index(tr, it.key);
        if (it.count > 0 && tr->pairs[i].count == it.count) return i;
    }
    return -1;
}

/* Push the new count of every pair changed by the last merge. */
static void flush_touched(Trainer *tr) {
    for (size_t k = 0; k < tr->n_touched; k++) {
        Pair *p = &tr->pairs[tr->touched[k]];
        p->touched = 0;
        if (p->count > 0) heap_push(tr, p->count, p->key);
    }
    tr->n_touched = 0;
}

/* ------------------------------------------------------------ training */

static void trainer_init(Trainer *tr, const BpeCounter *c) {
    memset(tr, 0, sizeof *tr);
    tr->mask = 4095;
    tr->slot = xmalloc((tr->mask + 1) * sizeof *tr->slot);
    memset(tr->slot, 0xff, (tr->mask + 1) * sizeof *tr->slot);
    tr->n_words = bpe_counter_unique(c);
    tr->words = xcalloc(tr->n_words, sizeof *tr->words);
    size_t total = 0, len;
    int64_t count;
    for (size_t w = 0; w < tr->n_words; w++) {
        bpe_counter_chunk(c, w, &len, &count);
        total += len;
    }
    tr->arena = xmalloc(total * sizeof *tr->arena);
    size_t off = 0;
    for (size_t w = 0; w < tr->n_words; w++) {
        const uint8_t *s = bpe_counter_chunk(c, w, &len, &count);
        Word *wd = &tr->words[w];
        wd->tok = tr->arena + off;
        wd->len = (uint32_t)len;
        wd->count = count;
        for (size_t i = 0; i < len; i++) wd->tok[i] = s[i];
        for (size_t i = 0; i + 1 < len; i++)
            pair_delta(tr, pkey(wd->tok[i], wd->tok[i + 1]), count, (int32_t)w);
        off += len;
    }
    flush_touched(tr);
}

/* Replace every (l, r) in word wi by t, moving the counts of the pairs
 * around each occurrence: (x,l) becomes (x,t) and (r,y) becomes (t,y). The
 * left neighbour is read from the output, so back-to-back occurrences
 * (l r l r, or l l l with l == r) are counted right. */
static void merge_word(Trainer *tr, int32_t wi, uint16_t l, uint16_t r, uint16_t t) {
    Word *w = &tr->words[wi];
    uint16_t *x = w->tok;
    int64_t c = w->count;
    size_t n = w->len, j = 0;
    for (size_t i = 0; i < n;) {
        if (i + 1 < n && x[i] == l && x[i + 1] == r) {
            if (j > 0) {
                pair_delta(tr, pkey(x[j - 1], l), -c, wi);
                pair_delta(tr, pkey(x[j - 1], t), c, wi);
            }
            if (i + 2 < n) {
                pair_delta(tr, pkey(r, x[i + 2]), -c, wi);
                pair_delta(tr, pkey(t, x[i + 2]), c, wi);
            }
            pair_delta(tr, pkey(l, r), -c, wi);
            x[j++] = t;
            i += 2;
        } else {
            x[j++] = x[i++];
        }
    }
    w->len = (uint32_t)j;
}

static void trainer_free(Trainer *tr) {
    for (size_t i = 0; i < tr->n_pairs; i++) free(tr->pairs[i].where);
    free(tr->pairs); free(tr->slot); free(tr->heap); free(tr->touched);
    free(tr->words); free(tr->arena);
}

Bpe *bpe_train(const BpeCounter *c, int vocab, BpeTrainStats *stats, char *err, size_t errlen) {
    if (vocab < 256 || vocab > BPE_MAX_VOCAB) {
        snprintf(err, errlen, "BPE vocabulary %d out of range: 256 to %d (tokens are uint16)",
                 vocab, BPE_MAX_VOCAB);
        return NULL;
    }
    double t0 = now_seconds();
    Trainer tr;
    trainer_init(&tr, c);
    int want = vocab - 256, m = 0;
    uint16_t *merges = xmalloc(2 * ((size_t)want + 1) * sizeof *merges);
    for (; m < want; m++) {
        int32_t best = pop_best(&tr);
        if (best < 0) break;              /* every chunk is a single token */
        uint32_t key = tr.pairs[best].key;
        uint16_t l = (uint16_t)(key >> 16), r = (uint16_t)(key & 0xFFFF);
        uint16_t t = (uint16_t)(256 + m);
        merges[2 * m] = l;
        merges[2 * m + 1] = r;
        /* take the list: merging adds pairs, which may move the pair table */
        int32_t *where = tr.pairs[best].where, nw = tr.pairs[best].nw;
        tr.pairs[best].where = NULL;
        tr.pairs[best].nw = tr.pairs[best].cw = 0;
        for (int32_t k = 0; k < nw; k++) merge_word(&tr, where[k], l, r, t);
        free(where);
        flush_touched(&tr);
    }
    Bpe *b = bpe_from_merges(merges, m, err, errlen);
    free(merges);
    if (stats) {
        stats->n_merges = m;
        stats->unique_chunks = tr.n_words;
        stats->total_chunks = bpe_counter_total(c);
        stats->seconds = now_seconds() - t0;
    }
    trainer_free(&tr);
    return b;
}
