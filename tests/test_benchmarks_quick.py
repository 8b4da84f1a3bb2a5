"""benchmarks/accelerator.py's quick mode: every model in both precisions runs on this backend,
beside PyTorch, and the record says what it measured."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_accelerator_benchmark_runs_every_row(tmp_path):
    out = tmp_path / "cpu.json"
    r = subprocess.run([sys.executable, "accelerator.py", "--quick", "--out", str(out)], cwd=ROOT / "benchmarks",
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads(out.read_text())
    assert rec["backend"] == "cpu" and rec["quick"] and rec["pytorch_device"] == "cpu"
    assert set(rec["rows"]) == {f"{m} {p}" for m in ("charlm", "lstm", "bilstm", "cnn") for p in ("float32", "bfloat16")}
    for name, row in rec["rows"].items():
        assert row["seqjax"] > 0, name
        assert row.get("pytorch", 0) > 0 or "pytorch_error" in row, name
    assert "train in float32 there" in rec["note"]
