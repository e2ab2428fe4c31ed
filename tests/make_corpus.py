#!/usr/bin/python3
"""Writes a small learnable synthetic corpus as llm.c shards (SPEC §5).

Text is a random concatenation of 24 fixed "words" of 4-9 tokens each, so
inside a word the next token is determined and only word boundaries carry
entropy (about ln(24)/6.5 = 0.5 nats per token), while the unigram entropy
is near ln(V). A model that learns gets far below what a unigram model can.

usage: make_corpus.py OUTDIR [--vocab V] [--tokens N] [--seed S]
writes OUTDIR/train_000000.bin and OUTDIR/val_000000.bin
"""
import argparse
import os
import random
import struct


def write_shard(path, tokens):
    header = [20240520, 1, len(tokens)] + [0] * 253
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<256i", *header))
        f.write(struct.pack("<%dH" % len(tokens), *tokens))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--vocab", type=int, default=64)
    ap.add_argument("--tokens", type=int, default=60000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    words = [[rng.randrange(a.vocab) for _ in range(rng.randint(4, 9))] for _ in range(24)]
    def stream(n):
        out = []
        while len(out) < n:
            out.extend(rng.choice(words))
        return out[:n]
    os.makedirs(a.outdir, exist_ok=True)
    write_shard(os.path.join(a.outdir, "train_000000.bin"), stream(a.tokens))
    write_shard(os.path.join(a.outdir, "val_000000.bin"), stream(max(a.tokens // 10, 20000)))


if __name__ == "__main__":
    main()
