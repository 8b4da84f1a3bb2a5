import hashlib
import http.server
import threading
import urllib.error

import pytest

from seqjax import SeqjaxError
from seqjax.data import download


def _resource(monkeypatch, data: bytes, url="http://127.0.0.1:1/none"):
    res = download.Resource("thing.bin", url, (hashlib.sha256(data).hexdigest(),))
    monkeypatch.setitem(download.RESOURCES, "thing", res)
    return res


def test_offline_folder_is_used_first(tmp_path, monkeypatch):
    _resource(monkeypatch, b"hello")
    (tmp_path / "thing.bin").write_bytes(b"hello")
    assert download.fetch("thing", tmp_path) == tmp_path / "thing.bin"
    monkeypatch.setenv("SEQJAX_DATA_DIR", str(tmp_path))
    assert download.fetch("thing") == tmp_path / "thing.bin"


def test_checksum_mismatch_names_file_and_fix(tmp_path, monkeypatch):
    _resource(monkeypatch, b"hello")
    (tmp_path / "thing.bin").write_bytes(b"hellO")
    with pytest.raises(SeqjaxError, match=r"thing.bin.*does not match.*delete it"):
        download.fetch("thing", tmp_path)


def test_missing_file_without_network(tmp_path, monkeypatch):
    _resource(monkeypatch, b"hello")

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    with pytest.raises(SeqjaxError, match=r"thing.bin is not in the cache.*SEQJAX_DATA_DIR"):
        download.fetch("thing", tmp_path)


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = bytes(range(256)) * 400
    served_ranges: list = []

    def do_GET(self):
        start = 0
        rng = self.headers.get("Range")
        if rng:
            start = int(rng.split("=")[1].rstrip("-"))
        self.served_ranges.append(start)
        body = self.payload[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_port}/thing.bin"
    httpd.shutdown()


def test_download_resumes_partial_file_and_verifies(server, monkeypatch):
    payload = _RangeHandler.payload
    _resource(monkeypatch, payload, server)
    part = download.cache_dir() / "thing.bin.part"
    part.write_bytes(payload[:1000])
    _RangeHandler.served_ranges.clear()
    path = download.fetch("thing")
    assert path.read_bytes() == payload
    assert _RangeHandler.served_ranges == [1000]
    assert not part.exists()


def test_corrupt_download_is_removed(server, monkeypatch):
    res = download.Resource("thing.bin", server, ("0" * 64,))
    monkeypatch.setitem(download.RESOURCES, "thing", res)
    with pytest.raises(SeqjaxError, match="downloaded copy is corrupt"):
        download.fetch("thing")
    assert not (download.cache_dir() / "thing.bin").exists()


def test_unknown_resource():
    with pytest.raises(SeqjaxError, match="unknown resource"):
        download.fetch("nope")


# ---- the standard word-vector evaluation sets, by name -------------------------------------------
SETS = {"questions-words": "questions-words.txt", "wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}
VECTORS = "".join(f"{w} {a} {b}\n" for w, a, b in [("tiger", 1.0, 0.1), ("cat", 0.9, 0.2), ("love", 0.1, 1.0),
                                                    ("sex", 0.2, 0.8), ("old", -1.0, 0.3), ("new", 1.0, -0.3),
                                                    ("smart", 0.5, 0.5), ("intelligent", 0.6, 0.4),
                                                    ("hard", 0.3, -0.2), ("difficult", 0.2, -0.1)])


@pytest.mark.realdata
def test_the_pinned_digests_are_those_of_the_published_sets():
    """The SHA-256 pinned for each set is the one of the copy in SEQJAX_DATA_DIR (../shared/data),
    whose README gives its source and digest."""
    from conftest import real_data_dir

    for name, file in SETS.items():
        assert download.RESOURCES[name].name == file
        assert download.RESOURCES[name].sha256 == (download.sha256sum(real_data_dir() / file),), name
    assert set(download.ANALOGY_SETS) | set(download.WORD_PAIR_SETS) == set(SETS)


class _FilesHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``files[name]`` at ``/name``; counts the requests."""

    files: dict = {}
    requests: list = []

    def do_GET(self):
        self.requests.append(self.path)
        body = self.files[self.path.lstrip("/")]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_a_set_by_name_is_downloaded_checksummed_cached_and_read(tmp_path, monkeypatch, capsys):
    """``seqjax embeddings similarity wordsim353``: fetched from its URL once, checked against its
    pinned digest, then read from the cache; a served file with other bytes is refused; a path
    still works; anything else is one line naming both fixes."""
    from seqjax import cli

    pairs = b"# Word 1\tWord 2\tHuman (mean)\ntiger\tcat\t7.35\nlove\tsex\t6.77\nold\tnew\t1.58\n"
    _FilesHandler.files, _FilesHandler.requests = {"wordsim353.tsv": pairs}, []
    httpd = http.server.HTTPServer(("127.0.0.1", 0), _FilesHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_port}/wordsim353.tsv"
    monkeypatch.setitem(download.RESOURCES, "wordsim353",
                        download.Resource("wordsim353.tsv", url, (hashlib.sha256(pairs).hexdigest(),)))
    monkeypatch.delenv("SEQJAX_DATA_DIR", raising=False)
    (tmp_path / "v.txt").write_text(VECTORS)
    similarity = ["embeddings", "similarity", "--vectors", str(tmp_path / "v.txt")]
    try:
        for _ in range(2):
            assert cli.main([*similarity, "wordsim353"]) == 0
            out = capsys.readouterr().out
            assert f"{download.cache_dir() / 'wordsim353.tsv'}" in out and "pairs used    3 of 3" in out, out
        assert _FilesHandler.requests == ["/wordsim353.tsv"]  # the second run read the cache
        (download.cache_dir() / "wordsim353.tsv").unlink()
        _FilesHandler.files["wordsim353.tsv"] = pairs.replace(b"7.35", b"7.36")
        assert cli.main([*similarity, "wordsim353"]) == 2
        assert "does not match wordsim353.tsv" in capsys.readouterr().err
    finally:
        httpd.shutdown()
    (tmp_path / "mine.tsv").write_bytes(pairs)
    assert cli.main([*similarity, str(tmp_path / "mine.tsv")]) == 0
    assert "mine.tsv" in capsys.readouterr().out
    assert cli.main([*similarity, "wordsim35"]) == 2
    assert capsys.readouterr().err == ("seqjax: error: wordsim35: no such file; give a word-pair file, or the name "
                                       "of a standard set: wordsim353, simlex999\n")


@pytest.mark.realdata
def test_the_standard_sets_are_read_from_the_offline_folder(tmp_path, monkeypatch, capsys):
    """With SEQJAX_DATA_DIR (or --data-dir) holding the files, no download: all 19,544 analogy
    questions in 14 sections, 353 and 999 word pairs."""
    from conftest import real_data_dir

    from seqjax import cli

    monkeypatch.setattr(download, "_download", lambda *a: pytest.fail("downloaded"))
    (tmp_path / "v.txt").write_text(VECTORS)
    common = ["--vectors", str(tmp_path / "v.txt"), "--data-dir", str(real_data_dir())]
    assert cli.main(["embeddings", "evaluate", "questions-words", *common]) == 0
    lines = capsys.readouterr().out.splitlines()
    total = next(line.split() for line in lines if line.startswith("total"))
    assert int(total[2]) + int(total[3]) == 19544 and len(lines) == 2 + 14 + 1, lines  # answered + oov
    for name, n in (("wordsim353", 353), ("simlex999", 999)):
        assert cli.main(["embeddings", "similarity", name, *common]) == 0
        out = capsys.readouterr().out
        assert str(real_data_dir() / SETS[name]) in out and f" of {n}; " in out, out
