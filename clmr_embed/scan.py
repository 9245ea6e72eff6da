"""Find audio files under input paths: recursive, sorted, skipping hidden names and link loops."""

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from clmr_embed.errors import DataError

# Extensions FFmpeg (PyAV) decodes as audio; matched case-insensitively.
AUDIO_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac",
     ".aif", ".aiff", ".aifc", ".wma", ".webm", ".mka"}
)  # fmt: skip


@dataclass(frozen=True)
class AudioFile:
    """One file to process."""

    path: Path  # resolved absolute path of the real file
    root: Path  # resolved input folder it was found under (for a file given directly, its folder)
    relpath: str  # POSIX path relative to root (for a file given directly, its name); the track key


def is_audio_file(path: Path) -> bool:
    """True when the name has an audio extension (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def find_audio_files(
    inputs: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[AudioFile]:
    """List the audio files in `inputs` (folders, searched recursively, or files).

    Files given directly are listed whatever their extension: the user named them. In folders,
    non-audio extensions and dot-names (hidden files and folders) are skipped, symlinks are
    followed (each real folder is walked once, so loops end) and the same real file is listed once.

    Args:
        inputs: folders or files; each must exist.
        include: glob patterns; when given, a file is kept only if one matches its relpath or name.
        exclude: glob patterns; a file is dropped if one matches its relpath or name.
            Patterns match case-insensitively (`*.MP3` and `*live*` catch any case).

    Returns:
        AudioFile list: inputs in the given order, each input's files sorted by relpath.

    Raises:
        DataError: an input path does not exist.
    """
    found: list[AudioFile] = []
    seen: set[Path] = set()
    for given in inputs:
        given = Path(given)
        if not given.exists():
            raise DataError(f"input path not found: {given}; check the path")
        for item in sorted(_files_under(given), key=lambda f: f.relpath):
            if item.path in seen or not _selected(item.relpath, include, exclude):
                continue
            seen.add(item.path)
            found.append(item)
    return found


def _files_under(given: Path) -> Iterator[AudioFile]:
    if not given.is_dir():
        path = given.resolve()
        yield AudioFile(path=path, root=path.parent, relpath=path.name)
        return
    root = given.resolve()
    walked = {root}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True, onerror=_warn):
        # Prune in place (os.walk honours it): hidden folders and real folders already walked.
        dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".")]
        dirnames[:] = [d for d in dirnames if _first_visit(Path(dirpath, d), walked)]
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or not is_audio_file(path) or not path.is_file():
                continue  # is_file() drops broken symlinks
            relpath = path.relative_to(root).as_posix()
            yield AudioFile(path=path.resolve(), root=root, relpath=relpath)


def _first_visit(folder: Path, walked: set[Path]) -> bool:
    real = folder.resolve()
    if real in walked:
        return False
    walked.add(real)
    return True


def _selected(relpath: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    names = (relpath.lower(), relpath.rsplit("/", 1)[-1].lower())

    def matches(patterns: Sequence[str]) -> bool:
        return any(fnmatchcase(n, p.lower()) for p in patterns for n in names)

    return (not include or matches(include)) and not matches(exclude)


def _warn(error: OSError) -> None:
    warnings.warn(f"skipped unreadable folder {error.filename}: {error.strerror}", stacklevel=2)
