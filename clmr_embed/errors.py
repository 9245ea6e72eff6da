"""One base exception and a subclass per category; the CLI turns them into a red line and exit 1."""


class ClmrEmbedError(Exception):
    """Base class of every error clmr-embed raises on purpose (bad input, not bugs)."""


class AudioDecodeError(ClmrEmbedError):
    """A file could not be decoded, or decoded to unusable audio (empty, NaN/inf, absurd rate)."""


class ModelArtifactError(ClmrEmbedError):
    """An ONNX artifact is missing, unreadable, or lacks the metadata contract."""


class StoreError(ClmrEmbedError):
    """An HDF5 store is locked, of another model/hop/schema, or unreadable."""


class StoreDamagedError(StoreError):
    """Part of a store fails its checksum or cannot be read; the message names the track or file."""


class DiskFullError(StoreError):
    """The disk or the quota filled up while writing a store (ENOSPC, EDQUOT); nothing is lost."""


class CheckpointError(ClmrEmbedError):
    """A checkpoint is missing, not a checkpoint, or of the wrong layout or shape."""


class ConfigError(ClmrEmbedError):
    """A configuration value or file is invalid."""


class DataError(ClmrEmbedError):
    """A data set, manifest or label file is invalid."""


class MissingDependencyError(ClmrEmbedError):
    """An optional dependency (an extra) is not installed; the message names the extra."""


class ParityError(ClmrEmbedError):
    """Exported artifacts disagree with torch beyond tolerance."""
