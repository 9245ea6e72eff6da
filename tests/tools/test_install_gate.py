"""The install gate refuses a candidate that is worse on any probe, and names which."""

from tools.install_gate import GateScores, verdict

INSTALLED = GateScores(gtzan_accuracy=0.70, holdout_mrr=0.40)


def test_a_candidate_at_least_as_good_on_both_probes_passes() -> None:
    assert verdict(GateScores(0.70, 0.40), INSTALLED) == []
    assert verdict(GateScores(0.75, 0.55), INSTALLED) == []


def test_worse_on_either_probe_is_refused_naming_the_probe() -> None:
    (reason,) = verdict(GateScores(0.80, 0.39), INSTALLED)
    assert reason.startswith("holdout_mrr 0.390 < installed 0.400")
    (reason,) = verdict(GateScores(0.69, 0.90), INSTALLED)
    assert reason.startswith("gtzan_accuracy")
    assert len(verdict(GateScores(0.1, 0.1), INSTALLED)) == 2


def test_the_paired_difference_is_the_mean_difference_with_its_standard_error() -> None:
    import numpy as np

    from tools.install_gate import ProbeValues, noise, paired_difference

    installed = np.array([0.5, 0.6, 0.7, 0.8])
    shifted = paired_difference(installed + 0.1, installed)
    assert abs(shifted["difference"] - 0.1) < 1e-12 and shifted["se"] < 1e-12  # no noise at all
    mixed = paired_difference(np.array([0.6, 0.6, 0.8, 0.8]), installed)
    assert abs(mixed["difference"] - 0.05) < 1e-12
    assert abs(mixed["se"] - np.std([0.1, 0.0, 0.1, 0.0], ddof=1) / 2) < 1e-12
    both = noise(ProbeValues(installed + 0.1, installed), ProbeValues(installed, installed + 0.2))
    assert abs(both["gtzan_accuracy"]["difference"] - 0.1) < 1e-12
    assert abs(both["holdout_mrr"]["difference"] + 0.2) < 1e-12
    assert ProbeValues(installed, installed + 0.2).scores() == GateScores(0.65, 0.85)
