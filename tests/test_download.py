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
