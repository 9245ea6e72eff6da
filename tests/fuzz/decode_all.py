"""Child process of the fuzz test: decode every file under a folder with both decoders.

Prints one JSON line per (file, decoder) before ("start") and after ("done") decoding, so a
crash or a hang names the file it happened on. The outcome is "ok" with the flags, or the
exception's type and message: anything but AudioDecodeError is a bug.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from clmr_embed.audio import DECODERS, WindowSpec, WindowStream
from clmr_embed.errors import AudioDecodeError
from clmr_embed.names import escaped
from clmr_embed.scan import scan_inputs

SPEC = WindowSpec(8000, 2187, 1093)  # the tiny model's rate and window, half-window hop


def main(root: Path) -> None:
    for file in scan_inputs([root]).files:
        for decoder in DECODERS:
            line = {"path": file.relpath, "decoder": decoder}
            print(json.dumps({**line, "event": "start"}), flush=True)
            print(json.dumps({**line, "event": "done", **_outcome(file.path, decoder)}), flush=True)


def _outcome(path: Path, decoder: str) -> dict[str, object]:
    try:
        stream = WindowStream(path, SPEC, chunk_windows=8, decoder=decoder)
        windows = sum(len(chunk.windows) for chunk in stream)
    except AudioDecodeError as exc:
        return {"outcome": "AudioDecodeError", "message": str(exc)}
    except BaseException as exc:
        return {"outcome": type(exc).__name__, "message": escaped(str(exc))}
    return {"outcome": "ok", "windows": windows, "flags": list(stream.decoded.flags)}


if __name__ == "__main__":
    main(Path(os.fsdecode(sys.argv[1])))
