"""The whole lab in order (``seqjax lab``): Markov chain, GloVe, char-LSTM, IMDB classifiers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from seqjax import configs
from seqjax.tasks import charlm, embeddings, imdb, markov


def _train(task, cfg, command: str) -> None:
    """Run one trained part of the lab, so that ``seqjax lab`` can run again: a part whose results
    JSON already holds this config is skipped; an interrupted (or shorter) one resumes from its
    checkpoints; a new one starts."""
    done = Path(cfg.results)
    if done.is_file():
        try:
            saved = json.loads(done.read_text()).get("config", {})
        except (OSError, ValueError):
            saved = {}
        if {k: v for k, v in saved.items() if k != "resume"} == {
                k: v for k, v in dataclasses.asdict(cfg).items() if k != "resume"}:
            print(f"done before: results in {done}; skipped (delete it to run this part again)")
            return
    task.run(dataclasses.replace(cfg, resume=True), command)


def run(full: bool = False, data_dir: str = "", out: str = "runs/lab", command: str | None = None) -> None:
    """Quick (default): Markov, GloVe, 1 epoch of the char-LSTM and of the CNN. ``full``: the
    runs of results/ (10-epoch char-LSTMs, all five IMDB models, 5 epochs each). Run folders
    and results JSONs go to ``out``; ``command`` is recorded in each results JSON (default:
    this call, written as Python). Run again, it skips the trained parts already finished and
    resumes an interrupted one."""
    command = command or f"seqjax.tasks.lab.run(full={full!r}, data_dir={data_dir!r}, out={out!r})"
    res = Path(out)
    print("== 7.1 Markov chain baseline ==")
    markov.run(configs.MarkovConfig(data_dir=data_dir))
    print("\n== 7.2 word embeddings (GloVe 6B-50d) ==")
    emb = configs.EmbeddingsConfig(data_dir=data_dir, n=5)
    embeddings.run(emb, "analogy", ["man", "king", "woman"])
    embeddings.run(emb, "neighbours", ["korea", "india", "jaguar"])
    epochs = 10 if full else 1
    for layers in ((1, 2) if full else (1,)):
        print(f"\n== 7.1 char-LSTM, {layers} layer(s), {epochs} epoch(s) ==")
        _train(charlm, configs.CharLMConfig(data_dir=data_dir, layers=layers, epochs=epochs,
                                            out=str(res / f"charlm_l{layers}"),
                                            results=str(res / f"charlm_l{layers}.json")), command)
    for model in (("rnn", "lstm", "bilstm", "fasttext", "cnn") if full else ("cnn",)):
        print(f"\n== 7.3/7.4 IMDB {model} ==")
        _train(imdb, configs.ImdbConfig(model=model, data_dir=data_dir, epochs=5 if full else 1,
                                        out=str(res / f"imdb_{model}"), results=str(res / f"imdb_{model}.json")),
               command)
