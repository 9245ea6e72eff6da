"""When run_extract has its model loaded and starts its first batch, and its total x real time.

Not a test. python bench/extract_phases.py ENGINE PRECISION WORKERS  (the 6 demo songs)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from clmr_embed.extract import ExtractConfig, run_extract
from clmr_embed.extract import run as run_module

DEMO = Path(__file__).resolve().parents[2] / "shared" / "audio" / "clmr_demo"


def main() -> None:
    engine, precision, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
    marks: dict[str, float] = {}
    began = time.perf_counter()
    real_open = run_module.open_model

    def timed_open(config: ExtractConfig) -> Any:
        model = real_open(config)
        marks["model loaded"] = time.perf_counter() - began
        real_run = model.run

        def run(windows: Any) -> Any:
            marks.setdefault("first batch starts", time.perf_counter() - began)
            return real_run(windows)

        model.run = run
        return model

    run_module.open_model = timed_open  # type: ignore[assignment]
    files = tuple(sorted(DEMO.glob("*.mp3")))
    with tempfile.TemporaryDirectory() as tmp:
        config = ExtractConfig(inputs=files, output=Path(tmp) / "o.h5", engine=engine,
                               precision=precision, workers=workers, device="cpu")  # fmt: skip
        began = time.perf_counter()
        summary = run_extract(config)
        total = time.perf_counter() - began
    shown = ", ".join(f"{k} {v:.3f} s" for k, v in marks.items())
    print(f"{engine} {precision} workers {workers}: {shown}, total {total:.3f} s, "
          f"{summary.duration_s / total:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
