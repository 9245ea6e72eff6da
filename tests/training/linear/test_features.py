"""Window embeddings of labelled items read from an extract store."""

import dataclasses

import numpy as np
import pytest

from clmr_embed.errors import DataError
from clmr_embed.store import TrackRecord, open_writer
from tests.fixtures.store import HEADER
from training.linear.features import features_from_store


def test_features_from_store_round_trip(tmp_path):
    header = dataclasses.replace(HEADER, embedding_dim=4)
    rng = np.random.default_rng(0)
    stored = {f"g/{i}.wav": rng.normal(size=(i + 1, 4)).astype(np.float32) for i in range(3)}
    with open_writer(tmp_path / "s.h5", header) as writer:
        for i, (rel, emb) in enumerate(stored.items()):
            writer.add_track(
                TrackRecord(
                    f"t{i}", rel, f"c{i}", 1.0, 22050, 1, emb, np.zeros(len(emb), np.float32)
                )
            )
        writer.add_error("g/bad.wav", "not audio")
        writer.commit()
    order = ["g/2.wav", "g/0.wav"]
    features = features_from_store(tmp_path / "s.h5", order)
    assert features.dim == 4 and len(features) == 2
    np.testing.assert_array_equal(features.windows[0], stored["g/2.wav"])
    np.testing.assert_array_equal(features.windows[1], stored["g/0.wav"])
    prefixed = features_from_store(tmp_path / "s.h5", ["audio/g/2.wav", "audio/g/0.wav"])
    np.testing.assert_array_equal(prefixed.windows[0], stored["g/2.wav"])  # extract of audio/
    with pytest.raises(DataError, match=r"1 of 2 .*'g/bad.wav' \(extract failed on it: not"):
        features_from_store(tmp_path / "s.h5", ["g/0.wav", "g/bad.wav"])
