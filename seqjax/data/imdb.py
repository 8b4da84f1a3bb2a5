"""IMDB movie reviews (Maas et al. 2011): 25,000 train + 25,000 test, labels 0 = neg, 1 = pos.

Two sources, one record format (``texts: list[str]``, ``labels: int32[N]``):

* ``archive``: the Stanford ``aclImdb_v1.tar.gz`` (read straight from the gzip stream, no
  extraction) or an extracted ``aclImdb/`` folder, layout ``{train,test}/{pos,neg}/*.txt``.
  The ``unsup`` reviews are ignored.
* ``tfds``: tensorflow-datasets (the ``seqjax[tfds]`` extra; ``auto`` does without it)
  ``imdb_reviews/plain_text`` through ``tfds.data_source``
  when it is already prepared in the tfds data dir (reading needs no TensorFlow). Preparing it
  needs TensorFlow (it reads the tar with ``tf.io.gfile``) — on Colab ``prepare=True`` does that.

``source="auto"`` takes the archive from the offline folder / cache if there, else a prepared
tfds copy, else downloads the archive. Records are sorted by (split, label, file name) for the
archive so that a seed gives the same split on every machine.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re
import tarfile
import zlib
from pathlib import Path

import numpy as np

from seqjax import SeqjaxError, first_line
from seqjax.data import download

_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/([^/]+\.txt)$")


@dataclasses.dataclass
class Split:
    """Attributes: ``texts`` (``N`` reviews), ``labels`` ``int32[N]`` (1 = positive)."""

    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx) -> "Split":
        idx = np.asarray(idx)
        return Split([self.texts[i] for i in idx], self.labels[idx])


def _sorted_split(items: list[tuple[str, int, str]]) -> Split:
    items.sort(key=lambda r: (r[1], r[0]))
    return Split([r[2] for r in items], np.array([r[1] for r in items], np.int32))


def read_archive(path: str | os.PathLike) -> dict[str, Split]:
    """Read ``train``/``test`` from an aclImdb ``.tar.gz`` or extracted folder.

    Returns: ``{"train": Split, "test": Split}``.
    Raises: SeqjaxError for a missing path, a truncated/corrupt archive, or a wrong layout.
    """
    path = Path(path)
    recs: dict[str, list] = {"train": [], "test": []}
    if path.is_dir():
        root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
        for split in recs:
            for lab, name in ((0, "neg"), (1, "pos")):
                folder = root / split / name
                for f in folder.glob("*.txt") if folder.is_dir() else ():
                    recs[split].append((f.name, lab, f.read_text(encoding="utf-8", errors="replace")))
    elif path.is_file():
        try:
            # gzip.open raises EOFError on a truncated stream; tarfile's own "r|gz" does not.
            with gzip.open(path, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
                for m in tar:
                    hit = _MEMBER.search(m.name) if m.isfile() else None
                    if hit:
                        data = tar.extractfile(m).read().decode("utf-8", errors="replace")
                        recs[hit[1]].append((hit[3], int(hit[2] == "pos"), data))
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:  # incl. gzip.BadGzipFile
            raise SeqjaxError(
                f"{path}: the archive is truncated or corrupt ({err}); delete it and download "
                f"aclImdb_v1.tar.gz again (seqjax does this when it is missing)"
            ) from None
    else:
        raise SeqjaxError(f"{path}: no such IMDB archive or folder; give aclImdb_v1.tar.gz or "
                          f"its extracted aclImdb/ folder")
    if not recs["train"] or not recs["test"]:
        raise SeqjaxError(
            f"{path}: found {len(recs['train'])} train and {len(recs['test'])} test reviews; give "
            f"aclImdb_v1.tar.gz or a folder in the Stanford layout aclImdb/{{train,test}}/{{pos,neg}}/*.txt"
        )
    return {k: _sorted_split(v) for k, v in recs.items()}


def read_tfds(data_dir: str | None = None, prepare: bool = False) -> dict[str, Split]:
    """Read ``imdb_reviews/plain_text`` train/test via tensorflow-datasets."""
    try:
        import tensorflow_datasets as tfds
    except Exception as err:  # noqa: BLE001 - missing, or installed without its own dependencies
        raise SeqjaxError(f"--source tfds: tensorflow-datasets cannot be imported ({type(err).__name__}: {err}); "
                          f"pip install 'seqjax[tfds]' (and tensorflow, to prepare imdb_reviews once), "
                          f"or use --source archive") from None
    if prepare:
        try:
            builder = tfds.builder("imdb_reviews/plain_text", data_dir=data_dir)
            if not builder.is_prepared():
                builder.download_and_prepare()  # needs TensorFlow
        except Exception as err:  # noqa: BLE001 - tfds raises assorted errors (no TensorFlow, no network)
            raise SeqjaxError(f"--source tfds: imdb_reviews cannot be prepared ({type(err).__name__}: "
                              f"{first_line(err, '')[:200]}); "
                              f"install TensorFlow and connect to the internet once, or use --source archive") from None
    out = {}
    for split in ("train", "test"):
        try:
            ds = tfds.data_source("imdb_reviews/plain_text", split=split, data_dir=data_dir)
        except Exception as err:  # tfds raises assorted errors for an unprepared dataset
            raise SeqjaxError(
                f"tfds imdb_reviews/{split} cannot be read ({type(err).__name__}: "
                f"{first_line(err, '')[:200]}); prepare "
                f"it with TensorFlow installed (--source tfds) or use --source archive"
            ) from None
        texts, labels = [], []
        for ex in ds:
            t = ex["text"]
            texts.append(t.decode("utf-8") if isinstance(t, bytes) else str(t))
            labels.append(int(ex["label"]))
        out[split] = Split(texts, np.array(labels, np.int32))
    return out


def _tfds_prepared() -> bool:
    """Whether ``imdb_reviews`` is prepared in tfds's default data dir."""
    try:
        import tensorflow_datasets as tfds

        return tfds.builder("imdb_reviews/plain_text").is_prepared()
    except Exception:  # tfds missing or broken: fall back to the archive
        return False


def load(source: str = "auto", data_dir: str | None = None) -> dict[str, Split]:
    """IMDB train/test from ``source`` in {"auto", "archive", "tfds"} (see module docstring).

    ``data_dir``: the offline folder (default ``$SEQJAX_DATA_DIR``); tfds reads its own
    default data dir.
    """
    if source == "tfds":
        return read_tfds(prepare=True)
    if source == "archive":
        return read_archive(download.fetch("imdb", data_dir))
    if source != "auto":
        raise SeqjaxError(f"--source {source!r}: choose auto, archive or tfds")
    offline = download.data_dir(data_dir)
    for candidate in ([offline / "aclImdb_v1.tar.gz", offline / "aclImdb"] if offline else []):
        if candidate.exists():
            if candidate.is_file():
                candidate = download.fetch("imdb", data_dir)  # checksum-verified
            return read_archive(candidate)
    if (download.cache_dir() / "aclImdb_v1.tar.gz").exists() or not _tfds_prepared():
        return read_archive(download.fetch("imdb", data_dir))
    return read_tfds()


def train_valid_split(train: Split, valid_fraction: float = 0.3, seed: int = 0
                      ) -> tuple[Split, Split]:
    """The lab's seeded 70/30 split of the training reviews into train and valid."""
    perm = np.random.default_rng(seed).permutation(len(train))
    n_valid = int(round(len(train) * valid_fraction))
    return train.subset(np.sort(perm[n_valid:])), train.subset(np.sort(perm[:n_valid]))
