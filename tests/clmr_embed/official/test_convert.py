"""Torch-free conversion: each official layout gives the torch model's outputs (<= 1e-5 x scale)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.artifact import parse_metadata
from clmr_embed.constants import MTAT_TAGS
from clmr_embed.digest import file_sha256
from clmr_embed.engines.reference import load_reference
from clmr_embed.errors import CheckpointError
from clmr_embed.official.convert import Conversion, convert
from tests.fixtures.official import (
    encoder_state,
    head_state,
    lightning,
    prefixed,
    save,
    v1_1550,
    v1_raw,
)
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import EncoderConfig, HeadConfig
from training.samplecnn import SampleCNN, TaggerHead
from training.weights import load_checkpoint, load_head

TOLERANCE = 1e-5
SMALL = (8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32)


def _audio() -> np.ndarray:
    """Four real music windows (the shipped reference windows), (4, 1, 59049) float32."""
    return load_reference().windows(22050, 59049)[:4, None, :]


def _run(model: Path) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"audio": _audio()}), strict=True))


def _torch(checkpoint: Path, head: Path | None = None) -> dict[str, np.ndarray]:
    """The torch model's outputs, loaded by training's (torch) import of the same files."""
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.encoder_config is not None and ckpt.encoder_state is not None
    encoder = SampleCNN(ckpt.encoder_config).eval()
    encoder.load_state_dict(ckpt.encoder_state)
    with torch.no_grad():
        embedding = encoder(torch.from_numpy(_audio()))
        outputs = {"embedding": embedding.numpy()}
        head_ckpt = load_head(head) if head else ckpt if ckpt.head_state else None
        if head_ckpt is not None and head_ckpt.head_config is not None:
            module = TaggerHead(head_ckpt.head_config).eval()
            assert head_ckpt.head_state is not None
            module.load_state_dict(head_ckpt.head_state)
            outputs["logits"] = module(embedding).numpy()
    return outputs


def _assert_parity(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert set(got) == set(want)
    for name in want:
        # Relative to the output's scale: float32 summation order differs between CPUs.
        scale = max(1.0, float(np.abs(want[name]).max()))
        assert np.abs(got[name] - want[name]).max() <= TOLERANCE * scale, name
        assert np.abs(want[name]).max() > 0.01  # not a trivially zero output


LAYOUTS: dict[str, Callable[[Path], Path]] = {
    "v1-raw": lambda d: save(d / "clmr_checkpoint_10000.pt", v1_raw(1)),
    "v1-raw-legacy": lambda d: save(d / "old.pt", v1_raw(2), legacy=True),
    "v1-1550": lambda d: save(d / "clmr_checkpoint_1550.pt", v1_1550(3)),
    "lightning": lambda d: save(d / "last.ckpt", lightning(4)),
    "lightning-linear-eval": lambda d: save(d / "eval.ckpt", lightning(5, with_head=True)),
    "bare-reduced-width": lambda d: save(d / "bare.pt", encoder_state(6, SMALL)),
    "v2-fc-in-encoder": lambda d: save(
        d / "sup.pt",
        {
            **v1_raw(7),
            **prefixed(
                "encoder.fc.",
                OrderedDict(weight=torch.randn(10, 512) * 0.05, bias=torch.randn(10) * 0.05),
            ),
        },
    ),  # fmt: skip
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_converts_to_the_torch_model(tmp_path: Path, layout: str) -> None:
    checkpoint = LAYOUTS[layout](tmp_path)
    info = convert(Conversion(checkpoint, tmp_path / "out.onnx"))
    want = _torch(checkpoint)
    assert info.kind == ("tagger" if "logits" in want else "encoder")
    _assert_parity(_run(tmp_path / "out.onnx"), want)


def test_encoder_with_the_real_official_head(tmp_path: Path, shared_dir: Path) -> None:
    checkpoint = save(tmp_path / "clmr_checkpoint_10000.pt", v1_raw(8))
    head = shared_dir / "weights" / "finetuner_checkpoint_200.pt"
    info = convert(Conversion(checkpoint, tmp_path / "t.onnx", head, "clmr-mtat", "Apache-2.0"))
    _assert_parity(_run(tmp_path / "t.onnx"), _torch(checkpoint, head))
    import onnx

    model = onnx.load(str(tmp_path / "t.onnx"))
    stored = parse_metadata({p.key: p.value for p in model.metadata_props}, "t.onnx")
    assert stored == info
    assert info.labels == MTAT_TAGS and info.task == "multilabel" and info.trained
    assert info.source_sha256 == file_sha256(checkpoint) and info.licence == "Apache-2.0"
    assert info.name == "clmr-mtat" and info.embedding_dim == 512
    ops = {node.op_type for node in model.graph.node}
    assert ops == {"Unsqueeze", "Conv", "Relu", "MaxPool", "Flatten", "Gemm"}  # BN folded


def test_our_own_checkpoint_with_an_mlp_head(tmp_path: Path) -> None:
    config = HeadConfig(in_dim=32, n_labels=3, hidden_dim=16, task="multiclass")
    head = TaggerHead(config)
    ckpt = Checkpoint(
        encoder_config=EncoderConfig(channels=SMALL),
        encoder_state=dict(encoder_state(9, SMALL)),
        head_config=config,
        head_state=head.state_dict(),
        labels=["a", "b", "c"],
        step=0,
        extra={"trained": False},
    )
    save_checkpoint(tmp_path / "ours.pt", ckpt)
    info = convert(Conversion(tmp_path / "ours.pt", tmp_path / "ours.onnx"))
    assert (info.kind, info.labels, info.task, info.trained) == (
        "tagger", ("a", "b", "c"), "multiclass", False,
    )  # fmt: skip
    _assert_parity(_run(tmp_path / "ours.onnx"), _torch(tmp_path / "ours.pt"))


@pytest.mark.slow  # a full-width torch export with its own parity checks
def test_equals_the_torch_export(tmp_path: Path, shared_dir: Path) -> None:
    from export.api import ExportConfig, run_export

    checkpoint = save(tmp_path / "clmr_checkpoint_10000.pt", v1_raw(10))
    head = shared_dir / "weights" / "finetuner_checkpoint_200.pt"
    run_export(ExportConfig(checkpoint=checkpoint, head=head, output_dir=tmp_path, name="ref"))
    convert(Conversion(checkpoint, tmp_path / "free.onnx", head))
    _assert_parity(_run(tmp_path / "free.onnx"), _run(tmp_path / "ref-tagger.onnx"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: save(d / "head.pt", head_state()), "holds no encoder"),
        (lambda d: save(d / "cut.pt", dict(list(v1_raw().items())[:-5])), "lacks key"),
        (lambda d: save(d / "odd.pt", {**v1_raw(), "encoder.extra": torch.ones(1)}), "unexpected"),
    ],
)
def test_bad_checkpoints_write_nothing(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    checkpoint = make(tmp_path)
    with pytest.raises(CheckpointError, match=message):
        convert(Conversion(checkpoint, tmp_path / "out" / "m.onnx"))
    assert not (tmp_path / "out" / "m.onnx").exists()


def test_a_head_of_another_width_is_refused(tmp_path: Path) -> None:
    checkpoint = save(tmp_path / "enc.pt", v1_raw())
    head = save(tmp_path / "head.pt", head_state(width=256))
    with pytest.raises(CheckpointError, match="256-d embeddings"):
        convert(Conversion(checkpoint, tmp_path / "m.onnx", head))
