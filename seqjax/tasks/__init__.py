"""Experiments as library functions: ``train(config)`` etc. The CLI only parses and calls these."""
