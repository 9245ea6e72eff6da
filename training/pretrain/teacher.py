"""The musicnn MTT teacher (ONNX + its numpy front end): 16 kHz audio -> taggram or features."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt

from clmr_embed.constants import MTAT_TAGS
from clmr_embed.errors import ConfigError, MissingDependencyError, ModelArtifactError

TEACHER_RATE = 16000  # Hz; musicnn's SR
HOP = 256  # STFT hop in samples (musicnn FFT_HOP)
PATCH_FRAMES = 187  # frames per patch: librosa.time_to_frames(3 s) + 1
PATCH_SECONDS = PATCH_FRAMES * HOP / TEACHER_RATE  # 2.992 s, the span one taggram row scores
PATCHES_PER_RUN = 8  # per ONNX run (~24 s): ~45 MB of activations a patch; speed peaks near 8
WEIGHT_FILES = ("musicnn_mtt.onnx", "musicnn_frontend.py", "musicnn_mtt_reference.npz")
# Output name -> width. max_pool retrieves unseen music best (docs/teacher.md); the default.
OUTPUTS = {"max_pool": 753, "mean_pool": 753, "penultimate": 200, "taggram": 50}


def load_frontend(weights: Path) -> ModuleType:
    """Import `musicnn_frontend.py` from the weights folder (never vendored into this repo)."""
    file = Path(weights) / "musicnn_frontend.py"
    spec = importlib.util.spec_from_file_location("musicnn_frontend", file)
    if spec is None or spec.loader is None or not file.is_file():
        raise ModelArtifactError(f"{file} not found; pass the folder holding the teacher files")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Teacher:
    """musicnn MTT_musicnn as ONNX plus its numpy front end: 16 kHz mono audio -> patch outputs."""

    def __init__(self, weights: Path, threads: int = 0) -> None:
        """Load the three teacher files from `weights`; `threads` 0 lets onnxruntime choose."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError(
                "onnxruntime is not installed; pip install 'clmr-embed[cpu]'"
            ) from None
        weights = Path(weights)
        missing = [n for n in WEIGHT_FILES if not (weights / n).is_file()]
        if missing:
            raise ModelArtifactError(f"{weights} lacks {', '.join(missing)}; see docs/teacher.md")
        self.onnx_path = weights / "musicnn_mtt.onnx"
        self.frontend = load_frontend(weights)
        with np.load(weights / "musicnn_mtt_reference.npz") as ref:
            self.mel_basis = np.asarray(ref["mel_basis"], dtype=np.float32)  # [96, 257]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(self.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.tags = tuple(json.loads(self.metadata.get("tags", "[]")))
        if self.tags != MTAT_TAGS:
            raise ModelArtifactError(
                f"{self.onnx_path}: its tags metadata is not the MTAT top-50 order; use musicnn_mtt"
            )

    def logmel(self, audio_16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """[1 + len // 256, 96] log-mel frames of a whole track, as musicnn computes them."""
        return np.asarray(self.frontend.logmel(audio_16k, self.mel_basis), dtype=np.float32)

    def run(self, patches: npt.NDArray[np.float32], output: str) -> npt.NDArray[np.float32]:
        """One teacher output for [n, 187, 96] log-mel patches: float32 [n, OUTPUTS[output]]."""
        if output not in OUTPUTS:
            raise ConfigError(f"teacher output {output!r} is not one of {list(OUTPUTS)}")
        rows = [np.zeros((0, OUTPUTS[output]), np.float32)]
        for p0 in range(0, len(patches), PATCHES_PER_RUN):
            x = np.ascontiguousarray(patches[p0 : p0 + PATCHES_PER_RUN], dtype=np.float32)
            rows.append(self.session.run([output], {"logmel": x})[0])
        return np.concatenate(rows).astype(np.float32, copy=False)

    def taggram(self, audio_16k: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Per-patch tag probabilities of mono float32 [n] audio at 16 kHz, in bounded memory.

        Returns:
            float32 [n_patches, 50], one row per non-overlapping 187-frame (2.992 s) patch; the
            trailing partial patch is dropped, so audio under one patch gives [0, 50].
        """
        n_patches = (1 + len(audio_16k) // HOP) // PATCH_FRAMES
        rows = [np.zeros((0, len(self.tags)), np.float32)]
        for p0 in range(0, n_patches, PATCHES_PER_RUN):
            x = self._patches(audio_16k, p0, min(p0 + PATCHES_PER_RUN, n_patches))
            rows.append(self.session.run(["taggram"], {"logmel": x})[0])
        return np.concatenate(rows).astype(np.float32, copy=False)

    def _patches(self, audio: npt.NDArray[np.float32], p0: int, p1: int) -> np.ndarray:
        """Log-mel patches p0..p1-1, from just the audio they see (bit-equal to the whole track).

        Frame t covers audio[t*HOP - HOP : t*HOP + HOP]; starting the segment one hop early keeps
        the real left context of the first frame (the front end zero-pads a segment's edges).
        """
        lo = p0 * PATCH_FRAMES * HOP - HOP
        segment = audio[max(lo, 0) : p1 * PATCH_FRAMES * HOP + HOP]
        frames = self.frontend.logmel(segment, self.mel_basis)
        first = 1 if lo >= 0 else 0
        patches: np.ndarray = self.frontend.patches(
            frames[first : first + (p1 - p0) * PATCH_FRAMES]
        )
        return patches


def centred_patches(
    frames: npt.NDArray[np.float32], centres_s: npt.ArrayLike
) -> npt.NDArray[np.float32]:
    """[n, 187, 96] patches of whole-track log-mel `frames`, each centred on a time in seconds.

    Frame t is centred at t * 256 / 16000 s (musicnn's centred STFT). A patch that would run past
    either end of the track is shifted inside it; a track shorter than one patch is padded with
    its last frame's silence level (the front end's value for zeros), so every centre gets a patch.
    """
    centres = np.asarray(centres_s, dtype=np.float64).reshape(-1)
    if len(frames) < PATCH_FRAMES:
        pad = np.full((PATCH_FRAMES - len(frames), frames.shape[1]), frames.min(), np.float32)
        frames = np.concatenate([frames, pad])
    first = np.rint(centres * TEACHER_RATE / HOP).astype(np.int64) - PATCH_FRAMES // 2
    first = np.clip(first, 0, len(frames) - PATCH_FRAMES)
    index = first[:, None] + np.arange(PATCH_FRAMES)[None, :]
    return np.ascontiguousarray(frames[index])
