"""Data pipelines: numpy only (no JAX import), so they run in any worker process."""
