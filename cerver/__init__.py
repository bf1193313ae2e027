"""Cerver: a self-hostable session gateway for AI apps."""

__version__ = "0.1.0"
