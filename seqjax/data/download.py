"""Cached, checksummed, resumable downloads with a progress bar.

Lookup order for a named resource (see ``RESOURCES``):

1. an offline folder: ``data_dir`` argument, else the ``SEQJAX_DATA_DIR`` environment variable;
2. the user cache (``$SEQJAX_CACHE`` or ``$XDG_CACHE_HOME/seqjax`` or ``~/.cache/seqjax``);
3. the canonical URL, streamed to ``<cache>/<name>.part`` (resumed with an HTTP Range request
   if a partial file exists), SHA-256 checked, then atomically renamed into the cache.

Every failure a user can fix (checksum mismatch, no network, truncated file) raises
:class:`seqjax.SeqjaxError` with one message naming the file and what to do.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from seqjax import SeqjaxError


@dataclasses.dataclass(frozen=True)
class Resource:
    """A downloadable file.

    Attributes:
      name: file name in the cache / offline folder.
      url: canonical source.
      sha256: accepted SHA-256 digests (hex). The first is the canonical file's; others are
        known-good local variants (e.g. the IMDB archive without the `unsup` reviews).
        Empty means "not pinned": the digest is printed on first download.
    """

    name: str
    url: str
    sha256: tuple[str, ...] = ()


RESOURCES = {
    "nietzsche": Resource(
        "nietzsche.txt",
        "https://s3.amazonaws.com/text-datasets/nietzsche.txt",
        ("dea01ca2da603db6736fd856c585d073ccf3dca68efe4a59c5e73242cdf0b028",),
    ),
    "imdb": Resource(
        "aclImdb_v1.tar.gz",
        "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
        (
            "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",  # Stanford's
            "dfdd94ae6d850f594ecd76beb91390d0b1d92daa967fe268f1e1df9bd6c5c103",  # labelled-only copy
        ),
    ),
    "glove.6B": Resource(
        "glove.6B.zip",
        "https://nlp.stanford.edu/data/glove.6B.zip",  # 862,182,613 bytes
        ("617afb2fe6cbd085c235baf7a465b96f4112bd7f7ccb2b2cbd649fed9cbcf2fb",),
    ),
    # The standard word-vector evaluation sets, as gensim ships them in its test data (the copies
    # every gensim number is scored on): `seqjax embeddings evaluate questions-words`,
    # `seqjax embeddings similarity wordsim353 | simlex999`.
    "questions-words": Resource(  # Mikolov et al. 2013: 19,544 analogy questions in 14 sections
        "questions-words.txt",
        "https://raw.githubusercontent.com/piskvorky/gensim/4.4.0/gensim/test/test_data/questions-words.txt",
        ("8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",),
    ),
    "wordsim353": Resource(  # Finkelstein et al. 2002: 353 word pairs, mean human similarity
        "wordsim353.tsv",
        "https://raw.githubusercontent.com/piskvorky/gensim/4.4.0/gensim/test/test_data/wordsim353.tsv",
        ("f92a022fc2537793a15bc3a8c162ebcd74990e033a228bb6388cb71e4c0b1e1d",),
    ),
    "simlex999": Resource(  # Hill et al. 2015: 999 word pairs, similarity (not relatedness)
        "simlex999.txt",
        "https://raw.githubusercontent.com/piskvorky/gensim/4.4.0/gensim/test/test_data/simlex999.txt",
        ("d5e0501971478a511430ee880bd0121e94ac701ba86d90544d83e6d2ba3db05d",),
    ),
}
ANALOGY_SETS = ("questions-words",)  # names `seqjax embeddings evaluate` takes instead of a path
WORD_PAIR_SETS = ("wordsim353", "simlex999")  # names `seqjax embeddings similarity` takes


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The offline data folder: ``explicit`` if given, else ``$SEQJAX_DATA_DIR``, else None."""
    value = explicit if explicit is not None else os.environ.get("SEQJAX_DATA_DIR")
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """The user cache folder for downloads (created on demand)."""
    if os.environ.get("SEQJAX_CACHE"):
        root, var = Path(os.environ["SEQJAX_CACHE"]), "SEQJAX_CACHE"
    else:
        var = "XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "HOME"
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqjax"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as err:
        raise SeqjaxError(f"{var}={os.environ.get(var, '')}: cannot use {root} as the cache folder "
                          f"({err.strerror or type(err).__name__}); set SEQJAX_CACHE to a writable folder") from None
    return root


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 digest of a file, streamed in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, res: Resource, where: str) -> Path:
    if not res.sha256:
        return path
    digest = sha256sum(path)
    if digest not in res.sha256:
        raise SeqjaxError(
            f"{path}: SHA-256 {digest} does not match {res.name} from {res.url} "
            f"(expected {res.sha256[0]}). The {where} copy is corrupt or a different file: "
            f"delete it and download again, or replace it with the original."
        )
    return path


def fetch(name: str, data_dir_: str | os.PathLike | None = None) -> Path:
    """Path to a verified local copy of resource ``name`` (a key of ``RESOURCES``).

    Raises:
      SeqjaxError: unknown name, checksum mismatch, or missing file with no network.
    """
    if name not in RESOURCES:
        raise SeqjaxError(f"unknown resource {name!r}; known: {', '.join(RESOURCES)}")
    res = RESOURCES[name]
    offline = data_dir(data_dir_)
    if offline is not None:
        local = offline / res.name
        if local.exists():
            return _verify(local, res, "offline")
    cached = cache_dir() / res.name
    if cached.exists():
        return _verify(cached, res, "cached")
    try:
        _download(res.url, cached)
    except (urllib.error.URLError, OSError) as err:
        where = f" and not in {offline}" if offline is not None else ""
        raise SeqjaxError(
            f"{res.name} is not in the cache ({cached.parent}){where}, and downloading "
            f"{res.url} failed ({err}). Connect to the internet, or put the file in a folder "
            f"and point SEQJAX_DATA_DIR (or --data-dir) at it."
        ) from None
    if not res.sha256:
        print(f"{res.name}: downloaded, sha256 {sha256sum(cached)} (not pinned)")
        return cached
    try:
        return _verify(cached, res, "downloaded")
    except SeqjaxError:
        cached.unlink()
        raise


def file_or_set(value: str, names: tuple[str, ...], what: str,
                data_dir_: str | os.PathLike | None = None) -> Path:
    """The file a command argument names: an existing path as given, else a standard set by
    name (one of ``names``, keys of ``RESOURCES``: :func:`fetch`, so checksummed, cached and
    read from the offline folder first). ``what`` describes the file for the error message.

    Raises:
      SeqjaxError: neither an existing file nor one of ``names`` (one line with both fixes),
        or :func:`fetch`'s errors.
    """
    path = Path(value).expanduser()
    if path.exists():
        return path
    if value in names:
        return fetch(value, data_dir_)
    raise SeqjaxError(f"{value}: no such file; give {what}, or the name of a standard set: {', '.join(names)}")


def _download(url: str, dest: Path, chunk: int = 1 << 16) -> None:
    """Stream ``url`` to ``dest`` via ``dest.part``, resuming a partial file if present."""
    part = dest.with_name(dest.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        if done and resp.status != 206:  # server ignored the range: start over
            done = 0
        total = resp.length + done if resp.length is not None else None
        with open(part, "ab" if done else "wb") as f, tqdm(
            total=total, initial=done, unit="B", unit_scale=True, desc=dest.name
        ) as bar:
            while block := resp.read(chunk):
                f.write(block)
                bar.update(len(block))
    if total is not None and part.stat().st_size != total:
        raise OSError(f"connection closed at {part.stat().st_size} of {total} bytes; run again to resume")
    os.replace(part, dest)
