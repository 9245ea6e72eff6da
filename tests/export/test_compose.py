"""compose_tagger: tiny encoder ONNX + trained head -> one tagger ONNX, run by onnxruntime."""

import dataclasses
import os
import stat
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from clmr_embed.artifact import ModelInfo, parse_metadata
from clmr_embed.errors import CheckpointError, ModelArtifactError
from clmr_embed.model import OnnxModel, SessionConfig
from export.compose import compose_tagger
from export.onnx import export_encoder
from training.checkpoint import Checkpoint
from training.config import EncoderConfig, HeadConfig
from training.samplecnn import SampleCNN, TaggerHead

DIM = 8


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A reduced-width random SampleCNN exported as an encoder ONNX, and the torch module."""
    torch.manual_seed(0)
    model = SampleCNN(EncoderConfig(channels=(4,) * 10 + (DIM,))).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("enc") / "tiny-encoder.onnx"
    info = ModelInfo(
        kind="encoder",
        name="tiny",
        sample_rate=22050,
        window_samples=59049,
        embedding_dim=DIM,
        licence="test",
        source_sha256="ab" * 32,
        trained=False,
    )
    export_encoder(model, path, info)
    return path, model


def _head(hidden: int, n_labels: int = 3, task: str = "multilabel") -> Checkpoint:
    torch.manual_seed(hidden)
    module = TaggerHead(HeadConfig(DIM, n_labels, hidden, task))
    return Checkpoint(
        head_config=module.config,
        head_state=module.state_dict(),
        labels=[f"t{i}" for i in range(n_labels)],
        source="unit test",
    )


@pytest.mark.slow  # exports an encoder ONNX
@pytest.mark.parametrize(("hidden", "task"), [(0, "multilabel"), (16, "multiclass")])
def test_composed_tagger_matches_torch(encoder, tmp_path, hidden, task):
    enc_path, enc_model = encoder
    head = _head(hidden, task=task)
    out = compose_tagger(
        enc_path,
        head,
        tmp_path / "sub" / "tiny-tagger.onnx",
        ["rock", "jazz", "pop"],
        task,
        "tiny-tagger",
    )
    assert out == tmp_path / "sub" / "tiny-tagger.onnx" and out.is_file()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    info = parse_metadata(session.get_modelmeta().custom_metadata_map, out)
    assert (info.kind, info.name, info.task) == ("tagger", "tiny-tagger", task)
    assert info.labels == ("rock", "jazz", "pop")
    assert info.embedding_dim == DIM and info.trained is False and info.licence == "test"
    assert info.source_sha256 == "ab" * 32
    assert [o.name for o in session.get_outputs()] == ["embedding", "logits"]
    audio = np.random.default_rng(1).uniform(-1, 1, (3, 1, 59049)).astype(np.float32)
    embedding, logits = session.run(["embedding", "logits"], {"audio": audio})
    module = TaggerHead(head.head_config).eval()
    assert head.head_config is not None and head.head_state is not None
    module.load_state_dict(head.head_state)
    with torch.no_grad():
        want_embedding = enc_model(torch.from_numpy(audio))
        want_logits = module(want_embedding)
    np.testing.assert_allclose(embedding, want_embedding.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(logits, want_logits.numpy(), atol=1e-5, rtol=0)
    assert logits.shape == (3, 3)


@pytest.mark.slow  # exports an encoder ONNX
def test_runtime_model_loads_the_tagger(encoder, tmp_path):
    out = compose_tagger(encoder[0], _head(0), tmp_path / "t.onnx", ["a", "b", "c"], "soft", "t")
    model = OnnxModel(out, SessionConfig(device="cpu"))
    assert model.info.kind == "tagger" and model.info.task == "multilabel"  # soft -> sigmoid
    embedding, logits = model.run(np.zeros((2, 59049), dtype=np.float32))
    assert embedding.shape == (2, DIM) and logits is not None and logits.shape == (2, 3)


@pytest.mark.slow  # exports an encoder ONNX
def test_mismatched_head_or_labels_are_refused(encoder, tmp_path):
    with pytest.raises(CheckpointError, match="head maps 8 -> 3"):
        compose_tagger(encoder[0], _head(0), tmp_path / "x.onnx", ["a", "b"], "multilabel", "x")
    wide = TaggerHead(HeadConfig(DIM + 1, 3))
    bad = Checkpoint(head_config=wide.config, head_state=wide.state_dict())
    with pytest.raises(CheckpointError, match="9-d|gives 8-d"):
        compose_tagger(encoder[0], bad, tmp_path / "x.onnx", ["a", "b", "c"], "multilabel", "x")
    with pytest.raises(CheckpointError, match="no head_config"):
        compose_tagger(encoder[0], Checkpoint(), tmp_path / "x.onnx", ["a"], "multilabel", "x")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow  # exports an encoder ONNX
def test_a_tagger_serves_as_the_encoder_and_its_old_head_is_dropped(encoder, tmp_path):
    tagger = compose_tagger(
        encoder[0], _head(0), tmp_path / "t.onnx", list("abc"), "multilabel", "t"
    )
    new = compose_tagger(tagger, _head(4, n_labels=2), tmp_path / "u.onnx", ["x", "y"], "soft", "u")
    audio = np.random.default_rng(0).uniform(-1, 1, (2, 59049)).astype(np.float32)
    old = OnnxModel(tagger, SessionConfig(device="cpu"))
    model = OnnxModel(new, SessionConfig(device="cpu"))
    assert model.info.labels == ("x", "y") and model.info.kind == "tagger"
    (embedding, logits), (old_embedding, _) = model.run(audio), old.run(audio)
    np.testing.assert_array_equal(embedding, old_embedding)
    assert logits is not None and logits.shape == (2, 2)
    head_only = tmp_path / "h.onnx"  # a head has no audio input: not an encoder
    import onnx

    cut = onnx.load(str(new))
    cut.graph.output.pop(0)
    del cut.metadata_props[:]
    info = dataclasses.replace(model.info, kind="head")
    onnx.helper.set_model_props(cut, info.to_metadata())
    onnx.save(cut, str(head_only))
    with pytest.raises(ModelArtifactError, match="pass an encoder or tagger ONNX"):
        compose_tagger(head_only, _head(0), tmp_path / "v.onnx", list("abc"), "multilabel", "v")


def test_encoder_of_an_older_opset(tmp_path):
    """An encoder built with onnx.helper at opset 13 / IR 7: the head is converted to match."""
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(2).normal(size=(59049, DIM)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["audio"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "linear-encoder",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", 1, 59049])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIM])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    info = ModelInfo(
        kind="encoder", name="lin", sample_rate=16000, window_samples=59049, embedding_dim=DIM
    )
    helper.set_model_props(model, info.to_metadata())
    enc = tmp_path / "lin-encoder.onnx"
    onnx.save_model(model, str(enc))
    head = _head(0)
    out = compose_tagger(enc, head, tmp_path / "lin-tagger.onnx", list("abc"), "multilabel", "l")
    merged = onnx.load(str(out))
    assert merged.ir_version == 7 and merged.opset_import[0].version == 13
    audio = np.random.default_rng(3).uniform(-1, 1, (2, 1, 59049)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    embedding, logits = session.run(None, {"audio": audio})
    np.testing.assert_allclose(embedding, audio[:, 0] @ weight, atol=1e-4)
    assert head.head_state is not None
    want = embedding @ head.head_state["0.weight"].numpy().T + head.head_state["0.bias"].numpy()
    np.testing.assert_allclose(logits, want, atol=1e-5)
    assert parse_metadata(session.get_modelmeta().custom_metadata_map, out).sample_rate == 16000


def test_tagger_gets_the_umask_mode_not_a_private_one(tiny_encoder: Path, tmp_path: Path) -> None:
    head = TaggerHead(HeadConfig(16, 3))  # the tiny encoder's 16-d embeddings, its 3 labels
    ckpt = Checkpoint(head_config=head.config, head_state=head.state_dict(), source="unit test")
    previous = os.umask(0o002)  # group-writable: neither mkstemp's 0600 nor the usual 0644
    try:
        out = compose_tagger(tiny_encoder, ckpt, tmp_path / "t.onnx", ["a", "b", "c"], "soft", "t")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~0o002
    assert [p.name for p in tmp_path.iterdir()] == ["t.onnx"]  # no temp file left behind
