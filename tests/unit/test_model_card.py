"""The model card quotes each corpus dataset's licence and citation from the dataset's config."""
from __future__ import annotations

from brainfm.hub.card import model_card


def _licence_lines(datasets) -> list[str]:
    card = model_card({"corpus": {"datasets": datasets}})
    section = card.split("## Licences of the corpus datasets")[1]
    return [line for line in section.splitlines() if line.startswith("- ")]


def test_licences_and_citations_come_from_the_dataset_configs():
    eegmat, ssvep, bonn = _licence_lines(["eegmat", "ssvep_exoskeleton", "bonn"])
    assert eegmat.startswith("- eegmat: PhysioNet 'EEG During Mental Arithmetic Tasks', "
                             "ODC-By 1.0 (attribution); cite Zyma I")
    assert ssvep.startswith("- ssvep_exoskeleton: CC0 1.0; cite Kalunga EK")
    assert bonn.startswith("- bonn: no licence stated by the source") and "Andrzejak" in bonn


def test_a_dataset_without_a_config_or_a_licence_is_named_as_such():
    (line,) = _licence_lines(["defined_in_an_experiment_file"])
    assert line == ("- defined_in_an_experiment_file: no dataset config of this name was "
                    "found; see the dataset source for its terms")
