"""The writer's in-memory view of a store: committed tracks plus the changes it journals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clmr_embed.store.journal import (
    Arrays,
    Journal,
    check_track_id,
    error_entry,
    track_entry,
)


@dataclass(frozen=True)
class StoredTrack:
    """What the writer knows about a committed or journaled track or alias."""

    track_id: str
    relpath: str  # POSIX path relative to the library root
    content_sha256: str  # sha256 of the file's bytes
    alias_of: str  # "" for an embedded track, else the id whose embeddings it shares
    flags: tuple[str, ...]  # e.g. ("short", "silent")


class JournaledChanges:
    """The writer's view (committed tracks plus journaled changes) and the changes it journals.

    Track attrs are the HDF5 group attributes: relpath, content_sha256, duration_s, source_rate,
    channels, n_windows, flags (a list), alias_of. Subclasses provide the committed arrays.
    """

    def __init__(self, journal: Journal, fingerprint: str, also: tuple[str, ...] = ()) -> None:
        self._journal = journal
        self._fp = fingerprint  # written into every entry; replay drops other models' entries
        self._accepted = {fingerprint, *also}  # older spellings of it replay too
        self._tracks: dict[str, dict[str, Any]] = {}  # id -> attrs, committed + journaled
        self._by_content: dict[str, set[str]] = {}  # content sha256 -> embedded ids
        self._aliases: dict[str, set[str]] = {}  # embedded id -> ids of its aliases
        self._errors: dict[str, str] = {}  # relpath -> reason
        self._pending: dict[str, str] = {}  # journal file name -> entry kind

    @property
    def tracks(self) -> dict[str, StoredTrack]:
        """Committed and journaled tracks and aliases by id (a new dict on every call)."""
        return {
            tid: StoredTrack(
                tid, a["relpath"], a["content_sha256"], a["alias_of"], tuple(a["flags"])
            )
            for tid, a in self._tracks.items()
        }

    @property
    def errors(self) -> dict[str, str]:
        """Failed files (relpath -> reason), committed and journaled."""
        return dict(self._errors)

    @property
    def pending(self) -> int:
        """Journal entries not merged into the store yet."""
        return len(self._pending)

    def is_current(self, track_id: str, content_sha256: str) -> bool:
        """True if `track_id` is stored (embedded or alias) with this content."""
        attrs = self._tracks.get(track_id)
        return attrs is not None and attrs["content_sha256"] == content_sha256

    def find_content(self, content_sha256: str) -> str | None:
        """Id of an embedded (non-alias) track with this content, or None."""
        ids = self._by_content.get(content_sha256)
        return min(ids) if ids else None

    def add_alias(self, track_id: str, relpath: str, content_sha256: str, target_id: str) -> None:
        """Journal a file whose content equals that of the embedded track `target_id`.

        Raises:
            ValueError: bad id, or the target is not another embedded track with this content.
        """
        check_track_id(track_id)
        target = self._tracks.get(target_id)
        if target is None or target["alias_of"] or target["content_sha256"] != content_sha256:
            raise ValueError(
                f"alias {track_id} -> {target_id}: the target must be an embedded track "
                f"with content {content_sha256}"
            )
        if track_id == target_id:
            raise ValueError(f"track {track_id} cannot be an alias of itself")
        self._detach_aliases(track_id)
        attrs = dict(target, relpath=relpath, alias_of=target_id)
        self._write(track_entry(track_id), "alias", track_id, attrs)
        self.clear_error(relpath)

    def remove(self, track_id: str) -> None:
        """Journal the removal of a track or alias (for --prune); its aliases keep embeddings."""
        if track_id in self._tracks:
            self._detach_aliases(track_id)
            self._write(track_entry(track_id), "remove", track_id)

    def add_error(self, relpath: str, reason: str) -> None:
        """Journal a failed file (replaces an earlier reason for the same path)."""
        self._write_entry(
            error_entry(relpath), {"kind": "error", "relpath": relpath, "reason": reason}
        )

    def clear_error(self, relpath: str) -> None:
        """Forget a failed file's error (no-op if it has none)."""
        if relpath in self._errors:
            self._write_entry(error_entry(relpath), {"kind": "clear_error", "relpath": relpath})

    def replay(self) -> int:
        """Load the entries a previous writer left; returns how many of another model it dropped."""
        dropped = 0
        for name in self._journal.names():
            loaded = self._journal.read(name, arrays=False)
            if loaded is None or loaded[0].get("fingerprint") not in self._accepted:
                self._journal.delete([name])
                dropped += loaded is not None
            else:
                self._note(name, loaded[0])
        return dropped

    def _put_track(self, track_id: str, attrs: dict[str, Any], arrays: Arrays) -> None:
        """Journal an embedded track; aliases of a replaced, different content are detached."""
        check_track_id(track_id)
        old = self._tracks.get(track_id)
        if old is not None and old["content_sha256"] != attrs["content_sha256"]:
            self._detach_aliases(track_id)
        self._write(track_entry(track_id), "track", track_id, attrs, arrays)
        self.clear_error(attrs["relpath"])

    def _committed_arrays(self, track_id: str) -> Arrays:
        raise NotImplementedError  # the store reads embeddings/starts_s of a committed track

    def _arrays(self, track_id: str) -> Arrays:
        name = track_entry(track_id)
        loaded = self._journal.read(name) if self._pending.get(name) == "track" else None
        return loaded[1] if loaded is not None else self._committed_arrays(track_id)

    def _detach_aliases(self, track_id: str) -> None:
        """Before a track loses its embeddings, re-point its aliases to another track with the
        same content, or promote the first alias to an embedded track (nothing is recomputed)."""
        aliases = sorted(self._aliases.get(track_id, ()))
        if not aliases:
            return
        content = self._tracks[track_id]["content_sha256"]
        others = sorted(self._by_content.get(content, set()) - {track_id})
        target = others[0] if others else aliases.pop(0)
        if not others:
            attrs = dict(self._tracks[track_id], relpath=self._tracks[target]["relpath"])
            self._write(track_entry(target), "track", target, attrs, self._arrays(track_id))
        for alias in aliases:
            self._write(
                track_entry(alias), "alias", alias, dict(self._tracks[alias], alias_of=target)
            )

    def _write(
        self,
        name: str,
        kind: str,
        tid: str,
        attrs: dict[str, Any] | None = None,
        arrays: Arrays | None = None,
    ) -> None:
        meta = {"kind": kind, "track_id": tid} | ({"attrs": attrs} if attrs else {})
        self._write_entry(name, meta, arrays)

    def _write_entry(self, name: str, meta: dict[str, Any], arrays: Arrays | None = None) -> None:
        meta = dict(meta, fingerprint=self._fp)
        self._journal.write(name, meta, arrays)
        self._note(name, meta)

    def _note(self, name: str, meta: dict[str, Any]) -> None:
        """Update the in-memory view with an entry just written or replayed."""
        self._pending[name] = kind = meta["kind"]
        if kind == "error":
            self._errors[meta["relpath"]] = meta["reason"]
        elif kind == "clear_error":
            self._errors.pop(meta["relpath"], None)
        else:
            self._set(meta["track_id"], meta.get("attrs"))

    def _set(self, tid: str, attrs: dict[str, Any] | None) -> None:
        old = self._tracks.pop(tid, None)
        if old is not None:
            self._index(old).discard(tid)
        if attrs is not None:
            self._tracks[tid] = attrs
            self._index(attrs).add(tid)

    def _index(self, attrs: dict[str, Any]) -> set[str]:
        if attrs["alias_of"]:
            return self._aliases.setdefault(attrs["alias_of"], set())
        return self._by_content.setdefault(attrs["content_sha256"], set())
