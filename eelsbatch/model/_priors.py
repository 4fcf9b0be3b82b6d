"""An analyst's knowledge of the specimen as priors: elements to expect and to exclude.

A prior changes the odds of the network's calibrated probability, it does not filter: an excluded element whose edge
is overwhelming is still reported (probability 0.999 becomes 0.98), an expected one still needs evidence (0.2 becomes
0.5). The factors are likelihood ratios an analyst would give "I know it is there" and "I know it is not".
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from eelsbatch.errors import InputError

EXPECT_ODDS = 4.0
EXCLUDE_ODDS = 0.05


def analyst_priors(elements: Sequence[str], expect: Sequence[str] = (),
                   exclude: Sequence[str] = ()) -> tuple[list[str], list[str], np.ndarray | None]:
    """The expected and excluded elements as the model's symbols, and their odds factors (:func:`prior_odds`).

    Raises
    ------
    InputError
        An element the model does not know, or one both expected and excluded.
    """
    expect, exclude = model_elements(expect, elements, "expect"), model_elements(exclude, elements, "exclude")
    return expect, exclude, prior_odds(elements, expect, exclude)


def model_elements(names: Sequence[str], known: Sequence[str], option: str) -> list[str]:
    """``names`` as the model's element symbols, in order, each once; one-line error for an unknown one."""
    chosen = []
    for name in names:
        symbol = name.strip().capitalize()
        if symbol not in known:
            raise InputError(None, f"{option}: unknown element {name.strip()!r}; the model knows {', '.join(known)}")
        if symbol not in chosen:
            chosen.append(symbol)
    return chosen


def prior_odds(elements: Sequence[str], expect: Sequence[str] = (), exclude: Sequence[str] = ()) -> np.ndarray | None:
    """(elements,) odds factors of the priors, or None where there are none.

    Raises
    ------
    InputError
        An element both expected and excluded.
    """
    both = sorted(set(expect) & set(exclude))
    if both:
        raise InputError(None, f"{', '.join(both)} both expected and excluded")
    if not expect and not exclude:
        return None
    return np.array([EXPECT_ODDS if e in expect else EXCLUDE_ODDS if e in exclude else 1.0 for e in elements])


def with_priors(probability: np.ndarray, odds: np.ndarray | None) -> np.ndarray:
    """(..., elements) probabilities with their odds multiplied by ``odds`` (unchanged where None; NaN stays NaN)."""
    if odds is None:
        return probability
    p = np.clip(probability.astype(np.float64), 1e-12, 1 - 1e-12)
    posterior = p * odds / (p * odds + (1 - p))
    return np.where(np.isnan(probability), np.nan, posterior).astype(probability.dtype)
