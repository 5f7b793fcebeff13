"""A byte-level BPE tokenizer trained in plain Python, written as a Hugging Face tokenizer.json.

train_cpu.py uses it where the `tokenizers` library is not installed. It splits text with the
same Llama-3 pre-tokenizer regex as train_model.py, restricted to ASCII (Python's `re` has no
\\p{L}; the corpus is ASCII and train() refuses anything else), maps bytes to GPT-2's printable
characters, and learns merges by pair frequency over the distinct pre-tokens, as `tokenizers`'
BpeTrainer does (ties broken by a fixed rule, so a run repeats). fp8llm's tokenizer reads the result; train_cpu.py
checks that it encodes the held-out text to the same ids as encode() here.
"""
import collections
import re

# train_model.SPLIT_PATTERN with \p{L} -> [A-Za-z] and \p{N} -> [0-9]: the same on ASCII text.
ASCII_SPLIT = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]{1,3}|"
    r" ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def byte_to_unicode():
    """GPT-2's map from the 256 bytes to printable characters (what ByteLevel writes)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(
        range(0xAE, 0xFF + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


BYTES = byte_to_unicode()


def pre_tokens(text):
    return [BYTES_OF(piece) for piece in ASCII_SPLIT.findall(text)]


def BYTES_OF(piece):  # noqa: N802 - reads as the mapping it is
    return "".join(BYTES[b] for b in piece.encode("utf-8"))


class Bpe:
    def __init__(self, vocab, merges, special_tokens):
        self.vocab = vocab  # token string -> id (bytes and merges; specials not included)
        self.merges = merges  # [(a, b)] in rank order
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.special_tokens = special_tokens  # [(content, id)]
        self.cache = {}

    def encode_word(self, word):
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        symbols = list(word)
        while len(symbols) > 1:
            best, at = None, -1
            for i in range(len(symbols) - 1):
                rank = self.ranks.get((symbols[i], symbols[i + 1]))
                if rank is not None and (best is None or rank < best):
                    best, at = rank, i
            if best is None:
                break
            symbols[at:at + 2] = [symbols[at] + symbols[at + 1]]
        ids = [self.vocab[s] for s in symbols]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        """Ids of `text` without special tokens."""
        out = []
        for word in pre_tokens(text):
            out.extend(self.encode_word(word))
        return out

    def to_json(self, split_pattern, bos):
        """tokenizer.json, in the layout train_model.py's `tokenizers` writes."""
        bos_id = dict(self.special_tokens)[bos]
        special = {"SpecialToken": {"id": bos, "type_id": 0}}
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": [
                {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": False, "special": True} for t, i in self.special_tokens],
            "normalizer": None,
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": split_pattern}, "behavior": "Isolated",
                 "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                 "use_regex": False}]},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [special, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [special, {"Sequence": {"id": "A", "type_id": 0}}, special,
                         {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                        "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None,
                      "continuing_subword_prefix": None, "end_of_word_suffix": None,
                      "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": {**dict(self.special_tokens), **self.vocab},
                      "merges": [[a, b] for a, b in self.merges]},
        }


def train(texts, vocab_size, special_tokens, min_frequency=2):
    """A Bpe of at most vocab_size tokens: the special tokens first (ids 0..), then the 256 byte
    characters, then merges."""
    words = collections.Counter()
    for text in texts:
        if not text.isascii():
            raise SystemExit("bpe.train: the text is not ASCII (this trainer's regex is ASCII)")
        words.update(pre_tokens(text))
    specials = [(t, i) for i, t in enumerate(special_tokens)]
    vocab = {}
    for b in range(256):
        vocab[BYTES[b]] = len(specials) + len(vocab)
    entries = [(list(w), n) for w, n in words.items()]
    pair_count = collections.Counter()
    where = collections.defaultdict(set)  # pair -> indices of entries holding it
    for idx, (symbols, n) in enumerate(entries):
        for pair in zip(symbols, symbols[1:]):
            pair_count[pair] += n
            where[pair].add(idx)
    merges = []
    while len(specials) + len(vocab) < vocab_size and pair_count:
        pair, count = max(pair_count.items(), key=lambda kv: kv[1])
        if count < min_frequency:
            break
        merged = pair[0] + pair[1]
        merges.append(pair)
        vocab[merged] = len(specials) + len(vocab)
        for idx in list(where[pair]):
            symbols, n = entries[idx]
            for p in zip(symbols, symbols[1:]):
                pair_count[p] -= n
                if pair_count[p] <= 0:
                    del pair_count[p]
            i, out = 0, []
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
                    out.append(merged)
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            entries[idx] = (out, n)
            for p in zip(out, out[1:]):
                pair_count[p] += n
                where[p].add(idx)
        del where[pair]
        pair_count.pop(pair, None)
    return Bpe(vocab, merges, specials)
