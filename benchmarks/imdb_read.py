"""Time to read all 50,000 labelled IMDB reviews from aclImdb_v1.tar.gz (target: < 10 s).

``SEQJAX_DATA_DIR=../shared/data python benchmarks/imdb_read.py`` -> results/benchmarks/imdb_read.json
"""

import time

from common import write

from seqjax.data import download, imdb, tokenize

path = download.fetch("imdb")
t = time.perf_counter()
d = imdb.read_archive(path)
read_s = time.perf_counter() - t
t = time.perf_counter()
n_tok = sum(len(tokenize.regex_tokenize(x)) for s in d.values() for x in s.texts)
tok_s = time.perf_counter() - t
print(f"read {len(d['train']) + len(d['test']):,} reviews in {read_s:.2f}s; "
      f"regex-tokenized {n_tok:,} tokens in {tok_s:.2f}s")
write("imdb_read", {"reviews": len(d["train"]) + len(d["test"]), "read_s": read_s,
                    "tokenize_s": tok_s, "tokens": n_tok, "archive": str(path.name)})
