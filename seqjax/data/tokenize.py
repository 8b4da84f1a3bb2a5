"""Tokenizers for IMDB reviews.

``regex`` (default): ``<br />`` line breaks (HTML tags left in the Stanford reviews) become a
space, then the text is split into runs of word characters (letters, digits, ``_``, with
inner apostrophes kept as separate clitics ``n't``/``'s`` like spaCy) and single
punctuation marks. It is a single compiled ``re.findall`` per review.

``spacy``: ``spacy.blank("en").tokenizer`` — the tokenizer the lab's torchtext pipeline used,
without any model download. Optional (``pip install seqjax[spacy]``) and slower: spaCy builds a
``Doc`` object per review where the regex tokenizer makes one ``re.findall`` call, which is why
regex is the default. ``benchmarks/imdb_read.py`` (results/benchmarks/imdb_read.json) times the
regex tokenizer over all 50,000 reviews; no benchmark times spaCy's.
"""

from __future__ import annotations

import re
from typing import Callable

from seqjax import SeqjaxError

_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
# clitics first (n't, 's, 're, ...), then words, then any other non-space char alone.
_TOKEN = re.compile(r"n't\b|'(?:s|re|ve|ll|d|m)\b|\w+?(?=n't\b)|\w+|[^\w\s]", re.IGNORECASE)


def regex_tokenize(text: str, lower: bool = True) -> list[str]:
    """``str`` -> tokens. ``"Didn't<br />like it!"`` -> ``['did', "n't", 'like', 'it', '!']``."""
    text = _BR.sub(" ", text)
    if lower:
        text = text.lower()
    return _TOKEN.findall(text)


def get_tokenizer(name: str = "regex", lower: bool = True) -> Callable[[str], list[str]]:
    """A tokenizer by name: ``"regex"`` or ``"spacy"``."""
    if name == "regex":
        return lambda text: regex_tokenize(text, lower)
    if name == "spacy":
        try:
            import spacy
        except ImportError:
            raise SeqjaxError("--tokenizer spacy needs spaCy: pip install 'seqjax[spacy]'") from None
        tok = spacy.blank("en").tokenizer

        def spacy_tokenize(text: str) -> list[str]:
            text = _BR.sub(" ", text)
            return [t.text.lower() if lower else t.text for t in tok(text) if not t.is_space]

        return spacy_tokenize
    raise SeqjaxError(f"--tokenizer {name!r}: unknown; choose 'regex' or 'spacy'")
