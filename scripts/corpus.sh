#!/usr/bin/env bash
# make corpus: the Brown corpus, ready to train on. Fetches the text once
# (scripts/fetch-brown.sh: ${RELUSCOPE_CACHE:-~/.cache/reluscope}/brown/*.txt)
# and prepares it (BPE, 4096 tokens) into data/brown/ (train_000000.bin,
# val_000000.bin, meta.txt). Idempotent: a prepared folder is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."
brown=$(bash scripts/fetch-brown.sh | tail -n 1)
if [ ! -f data/brown/meta.txt ]; then
    bin/reluscope prepare --out data/brown --tokenizer bpe --vocab 4096 "$brown"/*.txt
fi
echo "corpus: text in $brown, tokens in $(pwd)/data/brown"
