"""Similarity search over a store: exact numpy for small stores, a cached usearch index above."""

from clmr_embed.search.embedding import StoreEmbedder, store_model
from clmr_embed.search.query import Neighbour, SearchConfig, Searcher, SimilarResult, similar
from clmr_embed.search.sidecar import sidecar_dir, store_fingerprint
from clmr_embed.search.vectors import LEVELS, Space, load_space, normalise

__all__ = [
    "LEVELS",
    "Neighbour",
    "SearchConfig",
    "Searcher",
    "SimilarResult",
    "Space",
    "StoreEmbedder",
    "load_space",
    "normalise",
    "sidecar_dir",
    "similar",
    "store_fingerprint",
    "store_model",
]
