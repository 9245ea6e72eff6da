"""The HDF5 embedding store: a manifest over immutable checksummed segments, journaled commits."""

from clmr_embed.store.changes import StoredTrack
from clmr_embed.store.check import (
    CheckReport,
    CompactReport,
    DamagedTrack,
    check_store,
    compact_store,
)
from clmr_embed.store.layout import SCHEMA_VERSION, StoreHeader, TrackRecord
from clmr_embed.store.manifest import copy_store
from clmr_embed.store.reader import EmbeddingStore, open_store
from clmr_embed.store.shards import MergeReport, merge_into, merge_stores
from clmr_embed.store.writer import StoreWriter, open_writer

__all__ = [
    "SCHEMA_VERSION",
    "CheckReport",
    "CompactReport",
    "DamagedTrack",
    "EmbeddingStore",
    "MergeReport",
    "StoreHeader",
    "StoredTrack",
    "StoreWriter",
    "TrackRecord",
    "check_store",
    "compact_store",
    "copy_store",
    "merge_into",
    "merge_stores",
    "open_store",
    "open_writer",
]
