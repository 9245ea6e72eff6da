"""The HDF5 embedding store: header check, per-track groups, journaled copy-on-write commits."""

from clmr_embed.store.changes import StoredTrack
from clmr_embed.store.layout import SCHEMA_VERSION, StoreHeader, TrackRecord
from clmr_embed.store.reader import EmbeddingStore, open_store
from clmr_embed.store.writer import StoreWriter, open_writer

__all__ = [
    "SCHEMA_VERSION",
    "EmbeddingStore",
    "StoreHeader",
    "StoredTrack",
    "StoreWriter",
    "TrackRecord",
    "open_store",
    "open_writer",
]
