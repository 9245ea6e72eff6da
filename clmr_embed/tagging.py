"""`tag_files`: tag every audio file under some inputs, one outcome per file; bad files go on.

The scoring rules (probabilities, track scores, the best tags) live in `clmr_embed.scores` and
are re-exported here, so `clmr_embed.tagging` is the one place a caller looks for tagging.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from clmr_embed.embed import Embedder, TagResult
from clmr_embed.errors import AudioDecodeError
from clmr_embed.names import escaped
from clmr_embed.scan import scan_inputs
from clmr_embed.scores import TagScore, best_tags, probabilities, track_scores

__all__ = [
    "TagScore",
    "TaggedFile",
    "best_tags",
    "probabilities",
    "tag_files",
    "track_scores",
]


@dataclass(frozen=True)
class TaggedFile:
    """What became of one input path: its tags, why it failed, or why it was passed over."""

    path: str  # the file, escaped for display (valid UTF-8 whatever the name's bytes)
    result: TagResult | None = None  # the tags; None when the file failed or was skipped
    error: str = ""  # why it could not be tagged: a failure (decode error, vanished file)
    skipped: str = ""  # why it was passed over (not audio, a loop of links): not a failure

    @property
    def failed(self) -> bool:
        return bool(self.error)


def tag_files(
    embedder: Embedder,
    inputs: Sequence[Path],
    top_k: int = 10,
    hop_seconds: float | None = None,
    segments: bool = False,
) -> Iterator[TaggedFile]:
    """Tag every audio file under `inputs` (files and folders, scanned recursively).

    Outcomes come one file at a time, as soon as each is tagged, so a caller can show them while
    the rest run. A file that cannot be decoded, or an input path that cannot be read, yields a
    failed outcome and the loop goes on; paths that are not audio yield skipped outcomes.

    Args:
        embedder: an Embedder opened on a tagger model.
        inputs: audio files and/or folders.
        top_k: how many of the best tags each result keeps.
        hop_seconds: window hop; None uses the model's window (back-to-back windows).
        segments: keep the per-window probabilities and start times (a taggram).

    Raises:
        ModelArtifactError: the embedder's model is not a tagger (before any file is read).
    """
    embedder.require_tagger()
    scan = scan_inputs(list(inputs))
    for skipped in scan.skipped:
        if skipped.lost:
            yield TaggedFile(skipped.relpath, error=skipped.reason)
        else:
            yield TaggedFile(skipped.relpath, skipped=skipped.reason)
    for file in scan.files:
        path = escaped(file.path)
        try:
            result = embedder.tag_file(file.path, top_k, hop_seconds, segments=segments)
        except AudioDecodeError as exc:
            yield TaggedFile(path, error=str(exc))
            continue
        yield TaggedFile(path, result=result)
