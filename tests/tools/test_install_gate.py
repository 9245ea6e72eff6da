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
