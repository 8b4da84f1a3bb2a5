"""One module per lab part, each with ``run(config)``: markov, embeddings, charlm, imdb,
word2vec, and lab (all of them in order). charlm and imdb train through
:func:`seqjax.tasks.experiment.run_experiment` and read a run back with
:func:`seqjax.tasks.experiment.load_run`. The CLI only parses a config and calls these."""
