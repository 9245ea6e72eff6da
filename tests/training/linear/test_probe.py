"""The linear probe on synthetic features: training, clip-level pooling, folds, the final head."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clmr_embed.errors import DataError
from tests.training.linear.synthetic import synthetic
from training.linear.config import LinearEvalConfig
from training.linear.dataset import LabelledSet
from training.linear.features import Features
from training.linear.probe import fit_head, predict_clips, run_linear_eval
from training.linear.splits import Fold
from training.samplecnn import TaggerHead

FAST = LinearEvalConfig(max_epochs=60, patience=5, batch_size=32, lr=1e-2, folds=3)


@pytest.mark.slow  # many epochs over five folds
def test_separable_multiclass_reaches_high_accuracy_and_exports_a_head():
    features, data = synthetic("multiclass")
    result = run_linear_eval(features, data, FAST)
    assert len(result.folds) == 3
    mean_acc, std_acc = result.summary["accuracy"]
    accuracies = [fold.metrics["accuracy"] for fold in result.folds]
    assert mean_acc >= 0.95 and mean_acc == pytest.approx(np.mean(accuracies))
    assert std_acc == pytest.approx(np.std(accuracies, ddof=1))  # the spread over the folds
    assert result.summary["tag_roc_auc"][0] >= 0.97
    ckpt = result.checkpoint
    assert ckpt.labels == ["l0", "l1", "l2"]
    assert ckpt.head_config is not None and ckpt.head_state is not None
    assert ckpt.head_config.task == "multiclass" and ckpt.head_config.hidden_dim == 0
    head = TaggerHead(ckpt.head_config)
    head.load_state_dict(ckpt.head_state)  # strict: the keys TaggerHead expects
    sizes = result.folds[0].sizes
    assert sizes["train"] + sizes["valid"] + sizes["test"] == len(data)


def test_multilabel_mlp_and_standardised_features_learn():
    features, data = synthetic("multilabel", spread=3.0)
    config = LinearEvalConfig(
        max_epochs=60,
        patience=5,
        batch_size=32,
        lr=1e-2,
        folds=3,
        mlp=True,
        hidden_dim=32,
        standardise=True,
    )
    result = run_linear_eval(features, data, config)
    assert result.summary["tag_roc_auc"][0] > 0.9
    assert "accuracy" not in result.summary
    assert result.checkpoint.head_config and result.checkpoint.head_state
    assert result.checkpoint.head_config.hidden_dim == 32
    assert set(result.checkpoint.head_state) == {"0.weight", "0.bias", "2.weight", "2.bias"}


def test_random_features_score_near_chance():
    features, data = synthetic("multiclass", spread=0.0, n_items=90)
    result = run_linear_eval(features, data, FAST)
    assert result.summary["accuracy"][0] < 0.6  # 3 classes: chance is 1/3


@pytest.mark.slow  # many epochs over five folds
def test_standardisation_is_folded_into_the_head():
    features, data = synthetic("multiclass")
    shifted = Features(tuple(w * 50.0 + 100.0 for w in features.windows))
    fold = Fold("t", np.arange(40), np.arange(40, 50), np.arange(50, 60), 1.0)
    config = LinearEvalConfig(max_epochs=20, patience=20, batch_size=32, lr=1e-2, standardise=True)
    head, _ = fit_head(shifted, data, fold, config)
    probs = predict_clips(head, shifted, fold.test, "multiclass")  # raw (unstandardised) input
    assert (probs.argmax(1) == data.targets[fold.test].argmax(1)).mean() >= 0.9


def test_clip_scores_average_window_probabilities_not_logits():
    head = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        head[0].weight.copy_(torch.eye(2))
        head[0].bias.zero_()
    windows = np.array([[4.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    features = Features((windows, windows[:1]))
    soft = predict_clips(head, features, np.array([0, 1]), "multiclass")
    window_soft = torch.tensor(windows).double().softmax(-1).numpy()
    np.testing.assert_allclose(soft[0], window_soft.mean(0))
    np.testing.assert_allclose(soft.sum(1), 1.0)
    sig = predict_clips(head, features, np.array([0, 1]), "multilabel")
    np.testing.assert_allclose(sig[0], (1 / (1 + np.exp(-windows.astype(float)))).mean(0))
    assert sig[1, 0] > 0.98 and not np.allclose(sig.sum(1), 1.0)


def test_seeded_runs_are_identical_and_seeds_differ():
    features, data = synthetic("multilabel", n_items=40, spread=1.0)
    config = LinearEvalConfig(max_epochs=5, patience=5, batch_size=16, folds=2, seed=1)
    a = run_linear_eval(features, data, config)
    b = run_linear_eval(features, data, config)
    c = run_linear_eval(
        features, data, LinearEvalConfig(max_epochs=5, patience=5, batch_size=16, folds=2, seed=2)
    )
    assert a.summary == b.summary
    assert a.summary != c.summary
    torch.testing.assert_close(a.checkpoint.head_state, b.checkpoint.head_state)


def test_given_split_and_label_fraction():
    features, data = synthetic("multiclass", n_items=60)
    splits = tuple("test" if i % 5 == 0 else "valid" if i % 5 == 1 else "train" for i in range(60))
    data = LabelledSet(
        data.root, data.paths, data.labels, data.targets, data.task, data.groups, splits
    )
    config = LinearEvalConfig(max_epochs=30, patience=5, batch_size=16, lr=1e-2, label_fraction=0.1)
    result = run_linear_eval(features, data, config)
    (fold,) = result.folds
    assert fold.name == "given" and fold.sizes["test"] == 12
    assert fold.sizes["train"] == 4  # round(0.1 * 36) = 4 >= 3 classes
    assert fold.effective_fraction == pytest.approx(4 / 36)


def test_mismatched_features_are_refused():
    features, data = synthetic("multiclass", n_items=12)
    with pytest.raises(DataError, match="11 feature items for 12"):
        run_linear_eval(Features(features.windows[:-1]), data, FAST)
