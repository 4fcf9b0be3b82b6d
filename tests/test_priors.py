"""An analyst's expected and excluded elements: priors on the odds, not a filter; bad lists are one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eelsbatch.errors import InputError
from eelsbatch.model._priors import EXCLUDE_ODDS, model_elements, prior_odds, with_priors


def test_priors_change_the_odds_and_filter_nothing() -> None:
    elements = ["O", "Sb", "Fe"]
    odds = prior_odds(elements, expect=["O"], exclude=["Sb"])
    probability = np.array([[0.2, 0.999, 0.5], [np.nan, 0.5, 0.1]], np.float32)
    posterior = with_priors(probability, odds)
    assert posterior[0, 0] == pytest.approx(0.5, abs=1e-6)  # 1:4 odds times 4
    assert posterior[0, 1] == pytest.approx(0.999 * EXCLUDE_ODDS / (0.999 * EXCLUDE_ODDS + 0.001), rel=1e-4)
    assert posterior[0, 1] > 0.95  # excluded, but overwhelming evidence still reports it
    assert posterior[1, 1] == pytest.approx(EXCLUDE_ODDS / (1 + EXCLUDE_ODDS), rel=1e-5)
    assert posterior[0, 2] == probability[0, 2] and np.isnan(posterior[1, 0])
    assert with_priors(probability, prior_odds(elements)) is probability


def test_unknown_or_contradictory_elements_are_refused() -> None:
    assert model_elements(["fe", " O", "Fe"], ["O", "Fe"], "expect") == ["Fe", "O"]
    with pytest.raises(InputError, match="unknown element 'Xx'"):
        model_elements(["Xx"], ["O", "Fe"], "expect")
    with pytest.raises(InputError, match="both expected and excluded"):
        prior_odds(["O", "Fe"], ["Fe"], ["Fe"])


# each bad list through one command (both commands, all three kinds): a subprocess costs some 8 s here
@pytest.mark.parametrize(("command", "arguments"), [("map", ["--expect", "Fe,Xx"]), ("evaluate", ["--exclude", "Unobtainium"]),
                                                    ("map", ["--expect", "Fe", "--exclude", "Fe"])])
def test_map_and_evaluate_refuse_a_bad_list_in_one_line(command: str, arguments: list[str], instrument_dir: Path, tmp_path: Path) -> None:
    source = instrument_dir / "EELS_SI.dm4"
    shipped = Path(__file__).parents[1] / "eelsbatch" / "shipped" / "edgenet-v9"
    inputs = {"map": [str(source), str(tmp_path / "maps.zarr")], "evaluate": ["--data", str(source), "--model", str(shipped)]}
    result = subprocess.run([sys.executable, "-m", "eelsbatch.cli", command, *inputs[command], *arguments], capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "maps.zarr").exists()


def test_identify_with_priors(shipped_model: Path) -> None:
    import eelsbatch
    from eelsbatch.synth import spectrum_image

    counts, _ = spectrum_image("core-shell", (4, 4), seed=3)
    spectra = counts.compute()
    plain, primed = eelsbatch.identify(spectra), eelsbatch.identify(spectra, exclude=["Fe"], expect=["Ba"])
    fe, ba = plain["probability"].sel(element="Fe").values, plain["probability"].sel(element="Ba").values
    np.testing.assert_allclose(primed["probability"].sel(element="Fe").values, with_priors(fe, EXCLUDE_ODDS), rtol=1e-5)
    assert (primed["probability"].sel(element="Ba").values >= ba).all() and primed.attrs["exclude"] == ["Fe"]
