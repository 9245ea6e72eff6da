"""What an extract run must do: new, changed, unchanged, duplicate and missing tracks."""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from clmr_embed.digest import file_sha256
from clmr_embed.names import escaped, name_bytes, shown
from clmr_embed.scan import AudioFile


def track_id_for(relpath: str | bytes) -> str:
    """Stable id of a track: a hash of the raw bytes of its POSIX path under the library root.

    It survives moving the library folder, a path with '/' never nests HDF5 groups, and a name
    that is not UTF-8 (old disks, Samba shares) hashes as its bytes on disk (relpath_bytes); a
    UTF-8 name gets the same id as hashing its text.
    """
    raw = relpath if isinstance(relpath, bytes) else name_bytes(relpath)
    return hashlib.sha1(raw).hexdigest()[:20]


class StoreView(Protocol):
    """The store queries planning needs (StoreWriter implements them)."""

    def is_current(self, track_id: str, content_sha256: str) -> bool: ...
    def find_content(self, content_sha256: str) -> str | None: ...


@dataclass(frozen=True)
class PlannedTrack:
    """One scanned file and its identity."""

    file: AudioFile  # where it is
    track_id: str  # stable id (hash of relpath)
    content: str  # sha256 of its bytes


@dataclass
class Plan:
    """The work of one run."""

    todo: list[PlannedTrack] = field(default_factory=list)  # to decode and embed
    unchanged: list[PlannedTrack] = field(default_factory=list)  # already in the store
    aliases: list[tuple[PlannedTrack, str]] = field(default_factory=list)  # (dup, target id)
    pending_aliases: list[tuple[PlannedTrack, str]] = field(default_factory=list)  # to a todo
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (error key, reason)
    missing: list[str] = field(default_factory=list)  # stored ids no longer found
    repairs: set[str] = field(default_factory=set)  # planned ids whose stored arrays are damaged


def _hash_all(files: list[AudioFile], threads: int) -> list[str | OSError]:
    def one(file: AudioFile) -> str | OSError:
        try:
            return file_sha256(file.path)
        except OSError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(one, files))


def make_plan(
    files: list[AudioFile],
    store: StoreView,
    stored_ids: set[str],
    threads: int = 4,
    damaged: Collection[str] = frozenset(),
) -> Plan:
    """Decide per file: embed, skip (unchanged content), or alias (identical content elsewhere).

    A stored track in `damaged` (its arrays fail their checksum) counts as absent: its file is
    embedded again, or aliased to an intact twin, and its id is listed in `plan.repairs`.
    """
    plan = Plan()
    first_with_content: dict[str, str] = {}  # content -> id of the todo track embedding it
    seen: dict[str, AudioFile] = {}  # track id -> the file that holds it
    keys: dict[str, AudioFile] = {}  # relpath -> the file that holds it
    for file, digest in zip(files, _hash_all(files, threads), strict=True):
        track_id = track_id_for(file.relpath_bytes)
        if owner := keys.get(file.relpath) or seen.get(track_id):
            plan.unreadable.append(_clash(file, owner))
            continue
        seen[track_id] = keys[file.relpath] = file
        if isinstance(digest, OSError):
            why = digest.strerror or digest
            reason = f"{shown(file.path)}: cannot read ({why}); check its permissions"
            plan.unreadable.append((file.relpath, reason))
            continue
        _classify(plan, PlannedTrack(file, track_id, digest), store, damaged, first_with_content)
    plan.missing = sorted(stored_ids - set(seen))
    return plan


def _classify(
    plan: Plan,
    track: PlannedTrack,
    store: StoreView,
    damaged: Collection[str],
    first_with_content: dict[str, str],
) -> None:
    digest = track.content
    if track.track_id in damaged:
        plan.repairs.add(track.track_id)
    elif store.is_current(track.track_id, digest):
        plan.unchanged.append(track)
        return
    target = store.find_content(digest)
    if target and target != track.track_id and target not in damaged:
        plan.aliases.append((track, target))
    elif digest in first_with_content:
        plan.pending_aliases.append((track, first_with_content[digest]))
    else:
        first_with_content[digest] = track.track_id
        plan.todo.append(track)


def _clash(file: AudioFile, first: AudioFile) -> tuple[str, str]:
    """The error of a file whose relpath another input holds, keyed by its own full path."""
    # not by the relpath: that key belongs to the embedded file, whose success clears its error
    reason = (
        f"{shown(file.path)}: same relative path {shown(file.relpath)} as {shown(first.path)}; "
        "rename one of the input folders or extract them into separate stores"
    )
    return escaped(file.path), reason
