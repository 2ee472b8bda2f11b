"""ganbench: exact, fast, offline-friendly evaluation and benchmarking of GANs."""

__version__ = "0.1.0"
