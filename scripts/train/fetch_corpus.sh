#!/usr/bin/env bash
# Writes the training corpus, the King James Bible as plain text, into .corpus/ at the repository
# root (git-ignored): .corpus/kjv.txt, with the package's copyright file and where it came from.
# Run it on a Debian machine with apt (root not needed for `apt-get download`); the GPU machine
# that trains the model has no network, so .corpus/ is carried there.
#
# Source: the Debian package bible-kjv-text (the text, compressed for random access) and
# bible-kjv (the `bible` program, only used here to decompress it; it is not kept). Both are
# downloaded and unpacked with dpkg -x, never installed.
#
# Licence: the King James Version was translated in 1611; the package's copyright file
# (/usr/share/doc/bible-kjv-text/copyright, copied to .corpus/COPYRIGHT) says its copyright has
# expired, and the compressed data file is "provided for unrestricted use" by its author, Chip
# Chapin (1989). The text is in the public domain (in the United Kingdom the Crown's letters
# patent cover printing the Authorized Version, which does not concern a model trained on it).
#
# Format of kjv.txt: one chapter per paragraph, chapters separated by one blank line; a chapter's
# first line is its heading ("Genesis 1", "1 Samuel 3", "Psalms 23": the full book names the
# package prints), then one verse per line, in order (line k after the heading is verse k).
# The package's own references ("Ge1:1", "1Sm3:4") are abbreviations no reader writes, so they
# are dropped: the text reads as a printed Bible without verse numbers, and the verse structure
# stays recoverable from the line numbers. Runs of spaces are collapsed (two verses have a
# double space after a full stop, one a trailing space).
#
#   scripts/train/fetch_corpus.sh [OUT_DIR]        (default: .corpus at the repository root)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/.corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$work"
# apt-get download runs as the _apt user where it can; a directory it can write avoids a warning.
chmod 777 "$work"
apt-get download bible-kjv-text bible-kjv >/dev/null
for deb in ./*.deb; do dpkg -x "$deb" unpacked; done
bible=(unpacked/usr/bin/bible -p "$work/unpacked/usr/lib")

# Plain mode (-f turns pretty-printing off): one verse per line, "Ge1:1 In the beginning ...".
"${bible[@]}" -f Gen1:1-Rev22:21 >verses.txt
# Pretty mode prints each chapter's heading with the full book name on a line of its own.
"${bible[@]}" Gen1:1-Rev22:21 | grep -E '^[^ ].* [0-9]+$' >headings.txt

mkdir -p "$out"
awk -v headings=headings.txt '
  BEGIN {
    while ((getline h < headings) > 0) heading[++nheadings] = h
  }
  {
    ref = $1
    text = substr($0, length(ref) + 2)
    gsub(/ +/, " ", text)
    sub(/^ /, "", text)
    sub(/ $/, "", text)
    colon = index(ref, ":")
    if (colon == 0) { print "fetch_corpus: no reference in line " NR ": " $0 > "/dev/stderr"; exit 1 }
    chapter = substr(ref, 1, colon - 1)
    verse = substr(ref, colon + 1) + 0
    if (chapter != current) {
      current = chapter
      if (++n > nheadings) { print "fetch_corpus: more chapters than headings" > "/dev/stderr"; exit 1 }
      if (n > 1) print ""
      print heading[n]
      expected = 1
    }
    if (verse != expected) {
      print "fetch_corpus: " ref " out of order (expected verse " expected ")" > "/dev/stderr"; exit 1
    }
    expected++
    print text
    verses++
  }
  END {
    if (n != nheadings) { print "fetch_corpus: " n " chapters, " nheadings " headings" > "/dev/stderr"; exit 1 }
    print "fetch_corpus: " n " chapters, " verses " verses" > "/dev/stderr"
  }' verses.txt >kjv.txt

# The whole Bible has 1189 chapters and 31102 verses; anything else means the package changed.
chapters=$(grep -c '^$' kjv.txt || true)
[[ $((chapters + 1)) -eq 1189 ]] || { echo "fetch_corpus: expected 1189 chapters, got $((chapters + 1))" >&2; exit 1; }

cp kjv.txt "$out/kjv.txt"
cp unpacked/usr/share/doc/bible-kjv-text/copyright "$out/COPYRIGHT"
{
  echo "kjv.txt: the King James Bible, from the Debian packages below by scripts/train/fetch_corpus.sh"
  for deb in ./*.deb; do
    echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) sha256 $(sha256sum "$deb" | cut -d' ' -f1)"
  done
  echo "kjv.txt sha256 $(sha256sum kjv.txt | cut -d' ' -f1)"
} >"$out/SOURCE"
echo "wrote $out/kjv.txt ($(wc -c <kjv.txt) bytes), $out/COPYRIGHT, $out/SOURCE"
