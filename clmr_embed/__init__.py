"""clmr-embed: CLMR music embeddings from raw audio, torch-free at run time."""

__version__ = "0.1.0"

__all__ = ["__version__"]
