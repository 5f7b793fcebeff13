"""The King James Bible corpus (.corpus/kjv.txt, written by fetch_corpus.sh) and its splits.

kjv.txt holds the 1189 chapters in Bible order, separated by blank lines; a chapter's first line
is its heading ("Genesis 1"), then one verse per line.

Splits, by chapter, numbered 0..1188 in Bible order:
  held-out    chapter i with i % 20 == 19 (Genesis 20, Genesis 40, Exodus 10, ...): 59 chapters,
              about 5% of the text. Never trained on, not even by the tokenizer, and never used to
              choose anything in training; heldout.txt and heldout-small.txt are excerpts of it.
  validation  chapter i with i % 20 == 9 (Genesis 10, Genesis 30, Genesis 50, ...): 59 chapters.
              Not trained on; its loss picks the checkpoint that is kept.
  train       every other chapter (1071).
Every 20th chapter rather than the last books, so that the held-out text has the same mix of
law, history, poetry, prophecy and letters as the training text.
"""
from dataclasses import dataclass
from pathlib import Path

HELDOUT_EVERY = 20
HELDOUT_REMAINDER = 19
VALIDATION_REMAINDER = 9
EXPECTED_CHAPTERS = 1189

# heldout.txt holds whole held-out chapters in order, up to this many bytes.
HELDOUT_MAX_BYTES = 200_000
# heldout-small.txt holds whole verse lines from the start of heldout.txt, up to this many bytes.
HELDOUT_SMALL_MAX_BYTES = 8_192


@dataclass
class Chapter:
    index: int  # 0-based, in Bible order
    heading: str  # "Genesis 1"
    verses: list  # verse k + 1 is verses[k]

    def text(self):
        return self.heading + "\n" + "\n".join(self.verses)


def split_of(index):
    r = index % HELDOUT_EVERY
    if r == HELDOUT_REMAINDER:
        return "heldout"
    if r == VALIDATION_REMAINDER:
        return "validation"
    return "train"


def read_chapters(path):
    text = Path(path).read_text(encoding="utf-8")
    paragraphs = text.strip("\n").split("\n\n")
    if len(paragraphs) != EXPECTED_CHAPTERS:
        raise SystemExit(
            f"{path}: {len(paragraphs)} chapters, expected {EXPECTED_CHAPTERS} "
            "(write it with scripts/train/fetch_corpus.sh)")
    chapters = []
    for i, p in enumerate(paragraphs):
        lines = p.split("\n")
        if len(lines) < 2 or any(not line for line in lines):
            raise SystemExit(f"{path}: chapter {i + 1} ('{lines[0]}') is malformed")
        chapters.append(Chapter(i, lines[0], lines[1:]))
    return chapters


def split_chapters(chapters):
    """{"train": [...], "validation": [...], "heldout": [...]} in Bible order."""
    out = {"train": [], "validation": [], "heldout": []}
    for c in chapters:
        out[split_of(c.index)].append(c)
    return out


def join_chapters(chapters):
    """The chapters as kjv.txt writes them: blank lines between, a newline at the end."""
    return "\n\n".join(c.text() for c in chapters) + "\n"


def heldout_excerpts(heldout):
    """(heldout.txt text, heldout-small.txt text, names of the chapters in heldout.txt)."""
    kept = []
    for c in heldout:
        if len(join_chapters(kept + [c]).encode("utf-8")) > HELDOUT_MAX_BYTES:
            break
        kept.append(c)
    big = join_chapters(kept)
    small_lines = []
    size = 0
    for line in big.split("\n")[:-1]:
        n = len(line.encode("utf-8")) + 1
        if size + n > HELDOUT_SMALL_MAX_BYTES:
            break
        small_lines.append(line)
        size += n
    # End on a verse: a non-empty line after a non-empty line (not a heading, which follows a blank
    # line, nor the blank line itself).
    while small_lines and not (len(small_lines) >= 2 and small_lines[-1] and small_lines[-2]):
        small_lines.pop()
    small = "\n".join(small_lines) + "\n"
    return big, small, [c.heading for c in kept]
