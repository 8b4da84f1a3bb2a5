"""Flax linen modules: recurrent cells and layers, the char LM, the IMDB classifiers."""
