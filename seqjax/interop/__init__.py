"""Bridges to other frameworks (optional dependencies)."""
