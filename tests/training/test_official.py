"""Import of official CLMR checkpoint layouts with strict key/shape checks; SampleCNN basics."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch

from clmr_embed.constants import MTAT_TAGS
from clmr_embed.errors import CheckpointError
from training.checkpoint import Checkpoint, save_checkpoint
from training.config import CLMR_CHANNELS, EncoderConfig
from training.samplecnn import SampleCNN, TaggerHead
from training.weights import load_checkpoint, load_head

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
HEAD_FILE = SHARED / "weights" / "finetuner_checkpoint_200.pt"
HEAD_REFERENCE = SHARED / "weights" / "finetuner_head_reference.npz"

# The 77 encoder tensors of the official CLMR SampleCNN (clmr-reference.md §1.1 and §3.2), written
# out by hand so that the import is checked against the published layout, not against our model.
OFFICIAL_ENCODER = (
    ("sequential.0.0.weight", (128, 1, 3)),
    ("sequential.0.0.bias", (128,)),
    ("sequential.0.1.weight", (128,)),
    ("sequential.0.1.bias", (128,)),
    ("sequential.0.1.running_mean", (128,)),
    ("sequential.0.1.running_var", (128,)),
    ("sequential.0.1.num_batches_tracked", ()),
    ("sequential.1.0.weight", (128, 128, 3)),
    ("sequential.1.0.bias", (128,)),
    ("sequential.1.1.weight", (128,)),
    ("sequential.1.1.bias", (128,)),
    ("sequential.1.1.running_mean", (128,)),
    ("sequential.1.1.running_var", (128,)),
    ("sequential.1.1.num_batches_tracked", ()),
    ("sequential.2.0.weight", (128, 128, 3)),
    ("sequential.2.0.bias", (128,)),
    ("sequential.2.1.weight", (128,)),
    ("sequential.2.1.bias", (128,)),
    ("sequential.2.1.running_mean", (128,)),
    ("sequential.2.1.running_var", (128,)),
    ("sequential.2.1.num_batches_tracked", ()),
    ("sequential.3.0.weight", (256, 128, 3)),
    ("sequential.3.0.bias", (256,)),
    ("sequential.3.1.weight", (256,)),
    ("sequential.3.1.bias", (256,)),
    ("sequential.3.1.running_mean", (256,)),
    ("sequential.3.1.running_var", (256,)),
    ("sequential.3.1.num_batches_tracked", ()),
    ("sequential.4.0.weight", (256, 256, 3)),
    ("sequential.4.0.bias", (256,)),
    ("sequential.4.1.weight", (256,)),
    ("sequential.4.1.bias", (256,)),
    ("sequential.4.1.running_mean", (256,)),
    ("sequential.4.1.running_var", (256,)),
    ("sequential.4.1.num_batches_tracked", ()),
    ("sequential.5.0.weight", (256, 256, 3)),
    ("sequential.5.0.bias", (256,)),
    ("sequential.5.1.weight", (256,)),
    ("sequential.5.1.bias", (256,)),
    ("sequential.5.1.running_mean", (256,)),
    ("sequential.5.1.running_var", (256,)),
    ("sequential.5.1.num_batches_tracked", ()),
    ("sequential.6.0.weight", (256, 256, 3)),
    ("sequential.6.0.bias", (256,)),
    ("sequential.6.1.weight", (256,)),
    ("sequential.6.1.bias", (256,)),
    ("sequential.6.1.running_mean", (256,)),
    ("sequential.6.1.running_var", (256,)),
    ("sequential.6.1.num_batches_tracked", ()),
    ("sequential.7.0.weight", (256, 256, 3)),
    ("sequential.7.0.bias", (256,)),
    ("sequential.7.1.weight", (256,)),
    ("sequential.7.1.bias", (256,)),
    ("sequential.7.1.running_mean", (256,)),
    ("sequential.7.1.running_var", (256,)),
    ("sequential.7.1.num_batches_tracked", ()),
    ("sequential.8.0.weight", (256, 256, 3)),
    ("sequential.8.0.bias", (256,)),
    ("sequential.8.1.weight", (256,)),
    ("sequential.8.1.bias", (256,)),
    ("sequential.8.1.running_mean", (256,)),
    ("sequential.8.1.running_var", (256,)),
    ("sequential.8.1.num_batches_tracked", ()),
    ("sequential.9.0.weight", (512, 256, 3)),
    ("sequential.9.0.bias", (512,)),
    ("sequential.9.1.weight", (512,)),
    ("sequential.9.1.bias", (512,)),
    ("sequential.9.1.running_mean", (512,)),
    ("sequential.9.1.running_var", (512,)),
    ("sequential.9.1.num_batches_tracked", ()),
    ("sequential.10.0.weight", (512, 512, 3)),
    ("sequential.10.0.bias", (512,)),
    ("sequential.10.1.weight", (512,)),
    ("sequential.10.1.bias", (512,)),
    ("sequential.10.1.running_mean", (512,)),
    ("sequential.10.1.running_var", (512,)),
    ("sequential.10.1.num_batches_tracked", ()),
)


def official_encoder(seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """Random tensors in the official names and shapes (BN variances positive, counts int64)."""
    gen = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name, shape in OFFICIAL_ENCODER:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000, dtype=torch.long)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(shape, generator=gen) * 0.05
    return state


def as_1550(name: str) -> str:
    """`sequential.4.1.bias` -> `encoder.conv5.1.bias` (the tag-1.0 SampleCNN59049 names)."""
    _, block, rest = name.split(".", 2)
    return f"encoder.conv{int(block) + 1}.{rest}"


def projector(out_dim: int = 128) -> dict[str, torch.Tensor]:
    return {"0.weight": torch.randn(512, 512), "2.weight": torch.randn(out_dim, 512)}


def save(path: Path, payload: object) -> Path:
    torch.save(payload, path)
    return path


def assert_encoder_matches(ckpt: Checkpoint, reference: dict[str, torch.Tensor]) -> None:
    assert ckpt.encoder_config is not None and ckpt.encoder_state is not None
    assert ckpt.encoder_config.channels == CLMR_CHANNELS
    assert set(ckpt.encoder_state) == set(reference)
    for name, tensor in reference.items():
        assert torch.equal(ckpt.encoder_state[name], tensor), name


def test_official_table_is_the_clmr_encoder() -> None:
    assert len(OFFICIAL_ENCODER) == 77
    params = sum(
        int(np.prod(shape)) for name, shape in OFFICIAL_ENCODER if "running" not in name and shape
    )
    assert params == 2_368_512


def test_samplecnn_shape_and_size() -> None:
    model = SampleCNN().eval()
    assert sum(p.numel() for p in model.parameters()) == 2_368_512
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 59049))
    assert out.shape == (2, 512) and out.dtype == torch.float32


def test_raw_v1_with_projector(tmp_path: Path) -> None:
    encoder, proj = official_encoder(), projector(128)
    payload = {f"encoder.{k}": v for k, v in encoder.items()}
    payload |= {f"projector.{k}": v for k, v in proj.items()}
    ckpt = load_checkpoint(save(tmp_path / "clmr_checkpoint_10000.pt", payload))
    assert ckpt.source == "official CLMR v1 raw state dict"
    assert_encoder_matches(ckpt, encoder)
    assert ckpt.projector_config is not None and ckpt.projector_state is not None
    assert (ckpt.projector_config.hidden_dim, ckpt.projector_config.out_dim) == (512, 128)
    assert torch.equal(ckpt.projector_state["2.weight"], proj["2.weight"])
    assert ckpt.head_state is None
    model = SampleCNN(ckpt.encoder_config)
    assert ckpt.encoder_config is not None and ckpt.encoder_state is not None
    model.load_state_dict(ckpt.encoder_state, strict=True)  # usable as is


def test_projector_of_any_width(tmp_path: Path) -> None:
    payload = {f"encoder.{k}": v for k, v in official_encoder().items()}
    payload |= {f"projector.{k}": v for k, v in projector(64).items()}
    ckpt = load_checkpoint(save(tmp_path / "v2.pt", payload))
    assert ckpt.projector_config is not None and ckpt.projector_config.out_dim == 64


def test_1550_epoch_conv_names(tmp_path: Path) -> None:
    encoder = official_encoder(1)
    payload = {as_1550(k): v for k, v in encoder.items()}
    payload |= {f"projector.{k}": v for k, v in projector().items()}
    ckpt = load_checkpoint(save(tmp_path / "clmr_checkpoint_1550.pt", payload))
    assert "1550" in ckpt.source
    assert_encoder_matches(ckpt, encoder)


@pytest.mark.parametrize("prefixes", [("model.encoder.", "encoder."), ("model.encoder.",)])
def test_lightning_checkpoint(tmp_path: Path, prefixes: tuple[str, ...]) -> None:
    encoder = official_encoder(2)
    state = {f"{p}{k}": v for p in prefixes for k, v in encoder.items()}
    state |= {f"model.projector.{k}": v for k, v in projector(64).items()}
    payload = {"pytorch-lightning_version": "1.9.0", "epoch": 7, "global_step": 123}
    payload |= {"state_dict": state, "hyper_parameters": {"batch_size": 48}}
    ckpt = load_checkpoint(save(tmp_path / "epoch=7.ckpt", payload))
    assert ckpt.source == "CLMR v2 PyTorch Lightning checkpoint" and ckpt.step == 123
    assert_encoder_matches(ckpt, encoder)
    assert ckpt.projector_config is not None and ckpt.projector_config.out_dim == 64


def test_lightning_linear_evaluation_head(tmp_path: Path) -> None:
    encoder = official_encoder(3)
    state = {f"encoder.{k}": v for k, v in encoder.items()}
    state |= {"model.0.weight": torch.randn(50, 512), "model.0.bias": torch.randn(50)}
    ckpt = load_checkpoint(save(tmp_path / "linear.ckpt", {"state_dict": state}))
    assert_encoder_matches(ckpt, encoder)
    assert ckpt.head_config is not None and ckpt.head_config.n_labels == 50
    assert ckpt.labels == list(MTAT_TAGS) and ckpt.head_config.task == "multilabel"
    assert ckpt.head_state is not None
    assert torch.equal(ckpt.head_state["0.bias"], state["model.0.bias"])


def test_lightning_copies_that_differ_are_refused(tmp_path: Path) -> None:
    state = {f"model.encoder.{k}": v for k, v in official_encoder(4).items()}
    state |= {f"encoder.{k}": v for k, v in official_encoder(5).items()}
    with pytest.raises(CheckpointError, match="two different encoder copies"):
        load_checkpoint(save(tmp_path / "bad.ckpt", {"state_dict": state}))


def test_bare_samplecnn_state_dict(tmp_path: Path) -> None:
    encoder = official_encoder(6)
    ckpt = load_checkpoint(save(tmp_path / "bare.pt", dict(encoder)))
    assert ckpt.source == "bare SampleCNN state dict"
    assert_encoder_matches(ckpt, encoder)


def test_bare_state_dict_of_reduced_width(tmp_path: Path) -> None:
    config = EncoderConfig(channels=(8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32))
    state = SampleCNN(config).state_dict()
    ckpt = load_checkpoint(save(tmp_path / "small.pt", state))
    assert ckpt.encoder_config == config


def test_mlp_head_file(tmp_path: Path) -> None:
    state = {"0.weight": torch.randn(512, 512), "0.bias": torch.randn(512)}
    state |= {"2.weight": torch.randn(10, 512), "2.bias": torch.randn(10)}
    ckpt = load_head(save(tmp_path / "mlp.pt", state))
    assert ckpt.head_config is not None and ckpt.encoder_state is None
    assert (ckpt.head_config.hidden_dim, ckpt.head_config.n_labels) == (512, 10)
    assert ckpt.labels == [f"label_{i}" for i in range(10)]


def test_zero_fc_injected_by_clmr_v2_is_dropped(tmp_path: Path) -> None:
    payload = {f"encoder.{k}": v for k, v in official_encoder().items()}
    payload |= {"encoder.fc.weight": torch.zeros(50, 512), "encoder.fc.bias": torch.zeros(50)}
    with pytest.warns(UserWarning, match="all-zero"):
        ckpt = load_checkpoint(save(tmp_path / "zero_fc.pt", payload))
    assert ckpt.head_state is None and ckpt.encoder_state is not None


def _v1(tmp_path: Path, edit: str, key: str) -> Path:
    payload = {f"encoder.{k}": v for k, v in official_encoder().items()}
    if edit == "drop":
        del payload[key]
    elif edit == "reshape":
        payload[key] = torch.zeros(256, 128, 5)
    else:
        payload[key] = torch.zeros(3)
    return save(tmp_path / f"{edit}.pt", payload)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("drop", "encoder.sequential.5.1.running_var"),
        ("drop", "encoder.sequential.0.0.weight"),
        ("reshape", "encoder.sequential.3.0.weight"),
        ("add", "encoder.sequential.3.2.weight"),
    ],
)
def test_tampered_file_names_file_and_key(tmp_path: Path, edit: str, key: str) -> None:
    path = _v1(tmp_path, edit, key)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert key in message and str(path) in message and "\n" not in message


def test_wrong_bn_width_is_named(tmp_path: Path) -> None:
    state = dict(official_encoder())
    state["sequential.9.1.running_mean"] = torch.zeros(511)
    with pytest.raises(CheckpointError, match=r"sequential\.9\.1\.running_mean.*\[511\]"):
        load_checkpoint(save(tmp_path / "bn.pt", state))


def test_real_official_head(tmp_path: Path) -> None:
    if not HEAD_FILE.is_file():
        pytest.skip("../shared/weights is not available")
    ckpt = load_head(HEAD_FILE)
    assert ckpt.source == "official CLMR finetuner head" and ckpt.encoder_state is None
    assert ckpt.head_config is not None and ckpt.head_config.n_labels == 50
    assert ckpt.labels == list(MTAT_TAGS) and ckpt.head_config.task == "multilabel"
    reference = np.load(HEAD_REFERENCE)
    head = TaggerHead(ckpt.head_config).eval()
    assert ckpt.head_state is not None
    head.load_state_dict(ckpt.head_state, strict=True)
    with torch.no_grad():
        logits = head(torch.from_numpy(reference["embeddings"])).numpy()
    np.testing.assert_allclose(logits, reference["logits"], atol=1e-5, rtol=0)
    assert list(reference["tags"]) == list(MTAT_TAGS)


def test_load_head_of_encoder_only_file(tmp_path: Path) -> None:
    path = save(tmp_path / "enc.pt", dict(official_encoder()))
    with pytest.raises(CheckpointError, match="holds no classifier head"):
        load_head(path)


def test_our_format_round_trip(tmp_path: Path) -> None:
    encoder = official_encoder(7)
    path = tmp_path / "ours.pt"
    save_checkpoint(path, Checkpoint(encoder_config=EncoderConfig(), encoder_state=dict(encoder)))
    assert_encoder_matches(load_checkpoint(path), encoder)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([torch.zeros(3)], "is not a checkpoint"),
        ({"state": {}, "param_groups": []}, "is not a checkpoint"),  # an *_optim.pt file
        ({}, "is not a checkpoint"),
        ({"features.0.weight": torch.zeros(3)}, "fits no known layout"),
        ({"sequential.0.0.weight": torch.zeros(128, 1, 3)}, "lacks key 'sequential.0.0.bias'"),
    ],
)
def test_not_a_clmr_checkpoint(tmp_path: Path, payload: object, message: str) -> None:
    path = save(tmp_path / "odd.pt", payload)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_text_file_and_missing_path(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    for path in (text, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
