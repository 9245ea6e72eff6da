"""Processes of a run: torchrun's environment, single-process fallbacks, the device."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import ConfigError
from training.pretrain import distributed


def test_single_process_fallbacks() -> None:
    assert not distributed.is_distributed()
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.setup_from_env("gloo", {}) == (0, 1, 0)
    distributed.barrier()  # no process group: returns at once


def test_start_processes_alone_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    processes = distributed.start_processes("cpu", "bf16")
    assert processes == distributed.Processes(0, 1, 0, torch.device("cpu")) and processes.main
    with pytest.raises(ConfigError, match="fp16"):
        distributed.start_processes("cpu", "fp16")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA"):
            distributed.start_processes("cuda", "fp32")


def test_setup_from_env_rejects_missing_rank() -> None:
    with pytest.raises(ConfigError, match="RANK"):
        distributed.setup_from_env("gloo", {"WORLD_SIZE": "2"})
