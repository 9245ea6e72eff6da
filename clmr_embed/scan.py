"""Find audio files under input paths, and report every path that was passed over and why."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from clmr_embed.errors import DataError
from clmr_embed.names import escaped, name_bytes, shown
from clmr_embed.roots import LibraryRoot

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
    relpath: str  # the track key: POSIX path under root, bytes that are not UTF-8 as \xNN
    relpath_bytes: bytes = b""  # the same path as raw file-system bytes (b"": relpath's UTF-8)

    def __post_init__(self) -> None:
        if not self.relpath_bytes:
            object.__setattr__(self, "relpath_bytes", self.relpath.encode("utf-8"))


@dataclass(frozen=True)
class Skipped:
    """A path the scan passed over: not a file it can read, or a folder it cannot list."""

    relpath: str  # like AudioFile.relpath
    reason: str  # one line naming the path and what to do
    lost: bool  # True: audio may be missing from the run (the run fails); False: a note only


@dataclass
class Scan:
    """What a scan found."""

    files: list[AudioFile] = field(default_factory=list)  # in input order, sorted per input
    skipped: list[Skipped] = field(default_factory=list)  # in the order they were met
    roots: list[LibraryRoot] = field(default_factory=list)  # one per input: where relpaths are


def is_audio_file(path: Path) -> bool:
    """True when the name has an audio extension (any case)."""
    return path.suffix.lower() in AUDIO_EXTENSIONS


def scan_inputs(
    inputs: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> Scan:
    """List the audio files in `inputs` (folders, searched recursively, or files).

    Files given directly are listed whatever their extension: the user named them. In folders,
    non-audio extensions and dot-names (hidden files and folders) are passed over silently;
    symlinks are followed (each real folder is walked once, so loops end) and the same real file
    is listed once. Everything else passed over is in `Scan.skipped`: folders that cannot be
    listed, broken links, link loops, and inputs or audio-named entries that are not regular
    files (a FIFO or /dev/zero would block hashing forever).

    With several inputs, the relpath of a file found in a folder starts with that folder's name
    ("music/a.wav", "more/a.wav"), so two folders holding the same names do not clash.

    Args:
        inputs: folders or files; each must exist.
        include: glob patterns; when given, a file is kept only if one matches its relpath or name.
        exclude: glob patterns; a file is dropped if one matches its relpath or name.
            Patterns match case-insensitively (`*.MP3` and `*live*` catch any case).

    Raises:
        DataError: an input path does not exist.
    """
    scan = Scan()
    seen: set[Path] = set()
    walked: set[tuple[int, int]] = set()
    for given in map(Path, inputs):
        if not given.exists():  # also a broken symlink
            raise DataError(f"input path not found: {shown(given)}; check the path")
        prefix = _prefix(given) if len(inputs) > 1 else b""
        walk = _Walk(given, prefix, walked, scan.skipped)
        root = LibraryRoot(walk.root, escaped(os.fsdecode(prefix)))
        if root not in scan.roots:
            scan.roots.append(root)
        found = walk.files()
        for item in sorted(found, key=lambda f: f.relpath_bytes):
            if item.path in seen or not _selected(item.relpath, include, exclude):
                continue
            seen.add(item.path)
            scan.files.append(item)
    return scan


def find_audio_files(
    inputs: Sequence[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> list[AudioFile]:
    """The files of `scan_inputs` (what was skipped is dropped)."""
    return scan_inputs(inputs, include, exclude).files


def _prefix(given: Path) -> bytes:
    """b"name/" for a folder among several inputs; a file given directly keeps its bare name."""
    return name_bytes(given.resolve().name) + b"/" if given.is_dir() else b""


def _file(path: Path, root: Path, relpath: bytes) -> AudioFile:
    return AudioFile(path.resolve(), root, escaped(os.fsdecode(relpath)), relpath)


class _Walk:
    """One input's files; what it passes over goes to `skipped`.

    Iterative (a stack of folders, not recursion), so a hostile tree thousands of folders deep
    cannot exhaust Python's stack.
    """

    def __init__(
        self, given: Path, prefix: bytes, walked: set[tuple[int, int]], skipped: list[Skipped]
    ):
        self.given = given
        self.prefix = prefix
        # (device, inode) of the folders already walked, across inputs: cheaper than resolving
        # each folder's path (O(depth) system calls), and it catches bind-mount loops too
        self.walked = walked
        self.skipped = skipped
        self.root = given.resolve() if given.is_dir() else given.resolve().parent
        self.stack: list[tuple[Path, bytes]] = []  # (folder, its relpath with a trailing /)

    def files(self) -> Iterator[AudioFile]:
        if not self.given.is_dir():
            yield from self._given_file()
            return
        self.walked.add(_identity(os.stat(self.root)))
        self.stack.append((self.root, b""))
        while self.stack:
            folder, relpath = self.stack.pop()
            for entry in self._list(folder, relpath):
                found = self._entry(entry, relpath + name_bytes(entry.name))
                if found is not None:
                    yield found

    def _given_file(self) -> Iterator[AudioFile]:
        path = self.given.resolve()
        relpath = name_bytes(path.name)
        kind = _kind(os.stat(path).st_mode)
        if kind:
            self._skip(
                relpath, f"{shown(self.given)}: {kind}, not an audio file; name a file", True
            )
            return
        yield _file(path, self.root, relpath)

    def _list(self, folder: Path, relpath: bytes) -> list[os.DirEntry[str]]:
        """The folder's entries that are not hidden (dot-names: .cache, .Trash, ._ files)."""
        try:
            with os.scandir(folder) as listing:
                return [entry for entry in listing if not entry.name.startswith(".")]
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            reason = f"{shown(folder)}: cannot list folder ({why}); check its permissions"
            self._skip(relpath.rstrip(b"/") or b".", reason, True)
            return []

    def _entry(self, entry: os.DirEntry[str], relpath: bytes) -> AudioFile | None:
        path = Path(entry.path)
        try:
            status = os.stat(path)  # follows links
        except OSError as exc:
            if entry.is_symlink():
                self._skip_link(path, relpath, exc)
            return None
        mode = status.st_mode
        if stat.S_ISDIR(mode):
            self._subfolder(path, relpath, _identity(status))
        elif is_audio_file(path) and stat.S_ISREG(mode):
            return _file(path, self.root, self.prefix + relpath)
        elif is_audio_file(path):
            self._skip(relpath, f"{shown(path)}: {_kind(mode)}, not an audio file; skipped", False)
        return None

    def _subfolder(self, path: Path, relpath: bytes, identity: tuple[int, int]) -> None:
        if identity not in self.walked:
            self.walked.add(identity)
            self.stack.append((path, relpath + b"/"))
        elif path.is_symlink() and path.parent.resolve().is_relative_to(real := path.resolve()):
            self._skip(relpath, f"{shown(path)}: a symlink loop back to {shown(real)}", False)
        # else: another route to a folder already walked; its files are listed once

    def _skip_link(self, path: Path, relpath: bytes, exc: OSError) -> None:
        if exc.errno == errno.ELOOP:
            reason = f"{shown(path)}: a symlink loop (the link resolves to itself)"
        else:
            target = shown(os.readlink(path))
            reason = f"{shown(path)}: a broken symlink (its target {target} does not exist)"
        self._skip(relpath, reason, False)

    def _skip(self, relpath: bytes, reason: str, lost: bool) -> None:
        self.skipped.append(Skipped(escaped(os.fsdecode(self.prefix + relpath)), reason, lost))


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def _kind(mode: int) -> str:
    """ "" for a regular file, else what it is ("a FIFO", "a character device", ...)."""
    if stat.S_ISREG(mode):
        return ""
    kinds = {
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def _selected(relpath: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    names = (relpath.lower(), relpath.rsplit("/", 1)[-1].lower())

    def matches(patterns: Sequence[str]) -> bool:
        return any(fnmatchcase(n, p.lower()) for p in patterns for n in names)

    return (not include or matches(include)) and not matches(exclude)
