"""The real-data benchmark (benchmarks/real.py): its scoring arithmetic, and its per-file run on one real file."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from eelsbatch.model import load_recogniser

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "real.py"
REAL_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
INTERFACE_FILE = "dev18_taillon_OK_interface_SI.hspy"  # small (30 x 20 x 791) and in COLUMN_PROFILES


@pytest.fixture(scope="module")
def real() -> Iterator[ModuleType]:
    """benchmarks/real.py as a module (benchmarks/ is not a package: loaded from its path)."""
    spec = importlib.util.spec_from_file_location("real_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    # registered before it runs: its dataclass looks its own module up in sys.modules
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_score_counts_optional_elements_as_truths_strictly_and_unscored_otherwise(real: ModuleType) -> None:
    Case = real.Case
    cases = [
        Case(frozenset({"O", "Fe"}), frozenset({"O", "Fe"})),  # exact
        Case(frozenset({"Cu"}), frozenset({"Cu", "Pr"})),  # one false element
        Case(frozenset({"Si"}), frozenset({"Si", "O"}), frozenset({"Li", "O"})),  # optional O found, optional Li not
        Case(frozenset({"Co"}), frozenset()),  # one miss
    ]
    totals = real.score(cases)
    # strict: truths O Fe | Cu | Si Li O | Co; found right 2 + 1 + 2 + 0, Pr false, Li and Co missed
    strict = totals["strict"]
    assert (strict["files"], strict["exact"], strict["tp"], strict["fp"], strict["fn"]) == (4, 1, 5, 1, 2)
    assert strict["precision"] == pytest.approx(5 / 6)
    assert strict["recall"] == pytest.approx(5 / 7)
    assert strict["f1"] == pytest.approx(10 / 13)
    # unscored: the third file is Si against Si (exact); Li's miss and O's find both drop out
    unscored = totals["optional_unscored"]
    assert (unscored["exact"], unscored["tp"], unscored["fp"], unscored["fn"]) == (2, 4, 1, 1)
    assert unscored["precision"] == pytest.approx(0.8)
    assert unscored["recall"] == pytest.approx(0.8)
    assert unscored["f1"] == pytest.approx(0.8)


def test_score_of_nothing_found_is_zero_not_an_error(real: ModuleType) -> None:
    totals = real.score([real.Case(frozenset({"B"}), frozenset())])
    assert totals["strict"] == {"files": 1, "exact": 0, "tp": 0, "fp": 0, "fn": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_run_on_one_real_spectrum_image(real: ModuleType, shipped_model: Path) -> None:
    if not (REAL_DIR / INTERFACE_FILE).is_file():
        pytest.skip(f"real development set not found at {REAL_DIR}")
    truth = real.read_manifest(REAL_DIR)[INTERFACE_FILE]
    assert truth == {"O"}
    result = real.run(load_recogniser(shipped_model), REAL_DIR / INTERFACE_FILE, truth)
    assert result["spectra"] == 600 and result["navigation"] == {"y": 30, "x": 20}
    assert result["window_eV"] == pytest.approx([530.99, 554.69], abs=0.01)
    assert result["dispersion_eV"] == pytest.approx(0.03)
    assert result["acquisition_warning"] is None or "dispersion" in result["acquisition_warning"]
    # the sets and the exact flag agree with each other whatever the model finds
    found = set(result["found"])
    assert set(result["missed"]) == truth - found
    assert result["exact_strict"] == result["exact_optional_unscored"] == (found == truth)
    assert all(0.0 <= p <= 1.0 for p in [*result["found"].values(), *result["missed"].values()])
    assert "O" in result["per_pixel"] and 0.0 <= result["per_pixel"]["O"] <= 1.0
    columns = result["per_column"]["O"]
    assert len(columns) == 20 and all(0.0 <= share <= 1.0 for share in columns)
    # the per-column shares average to the per-pixel share (equal-sized columns)
    assert sum(columns) / len(columns) == pytest.approx(result["per_pixel"]["O"], abs=0.002)
