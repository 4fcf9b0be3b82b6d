"""Forward model of one core-loss EELS spectrum, after Kong, Ji and Xin (arXiv:2209.13026).

Every spectrum is built on its own acquisition grid (``channels`` channels from ``energy_offset``
at ``dispersion`` eV/ch, log-uniform in 0.05 to 2) in these steps, each a physical term with its range:

1. Composition: 0 to 4 elements, from common material systems or random draws.
2. Background: power law ``I0 * (E / E_start) ** -r``, ``r`` in [2, 5] (the tail of valence and
   lower-lying core losses); ``I0`` (counts per channel at the window start, the dose) is
   log-uniform in [3e2, 3e5].
3. Edges, per element and shell family, with onset from the edge table plus a chemical shift of
   N(0, 1.5) eV (clipped to +-4 eV) and a height set by the jump ratio ``1 + 10**U(-1.5, 0.7)``,
   from barely visible (1.03) to strong (6): the edge over the whole intensity just below its onset
   (background plus the tails of lower edges; edges are built in order of energy), as a jump ratio is
   measured. Shapes by edge type:
   hydrogenic-like sawtooth ``(E / E_k) ** -s`` for K and L1; delayed maxima
   ``(1 - exp(-(E - E_k) / delta)) (E / E_k) ** -s`` for M4,5 of 4d/5d elements, N4,5, M2,3 and
   L2,3 beyond Cu; white lines (two Gaussians at L3/L2 or M5/M4 over 2:1 continuum steps) for
   the L2,3 edges of K..Ni (and half of Cu) and the M4,5 edges of Cs..Lu; and near-edge fine
   structure as 0 to 4 Gaussians within 30 eV of the onset (the paper's multi-Gaussian model).
4. Plural scattering: convolution with a low-loss distribution (zero-loss peak and Poisson
   plasmon series, ``t/lambda`` in [0.1, 1.5], plasmon energy 12 to 28 eV, width 3 to 9 eV), and
   energy-resolution broadening by a Gaussian of FWHM 0.3 to 2 eV.
5. Instrument: energy offset error N(0, 2) eV (clipped to +-5), dispersion error +-0.5 %, a
   fixed-pattern gain non-uniformity (one of 8 detector patterns, 0 to 3 % rms), Poisson shot
   noise, Gaussian read noise (0 to 5 counts rms), dark offset (0 to 100 counts, or dark-subtracted),
   and occasional spikes (3 % of spectra).
6. Blank readouts (3 % of spectra): vacuum or beam-blanked pixels of a spectrum image, no specimen in
   the beam: a flat stray signal of 0.1 to 20 counts per channel (``blank_log_level``; to 300 in real
   acquisitions), Gaussian read noise of 1 to 30 counts rms and a dark offset or its subtraction residual; no
   element is present.
7. Readout sectors (10 % of spectra, blank readouts too): the detector is read out through 2 or 4
   ports whose gains differ by up to 4 % (``sector_gain``), a step in the counts at the sector boundaries (the middle
   channel, or the quarters) that is not an edge. A share of them (``cropped_probability``, 0 by default)
   was saved cropped from a longer detector axis (``detector_channels``, from channel ``readout_offset``),
   so that their steps fall where the saved axis's equal shares do not.
8. Real acquisitions (shares in :class:`Quality`, 0 by default; ``REAL_ACQUISITIONS`` for training): compositions of
   common real specimens (:data:`~eelsbatch.specimens.REAL_SPECIMENS`: oxides, nitrides, carbides, metals,
   perovskites, battery materials, minerals; O in most, carbon support or contamination in some; the Li K edge of
   lithium battery materials drawn but not labelled, as no recogniser names Li); an energy axis
   off by up to ``MISCALIBRATION_EV`` (offset uniform, plus a dispersion error that moves the far end of the window
   by up to ``MISCALIBRATION_STRETCH_EV`` more, up to 3 %); a narrow saved window (``NARROW_WIDTH_EV``, at least
   ``NARROW_MIN_CHANNELS`` channels) placed from just before to well before an edge, the detector's other channels
   not acquired (NaN); the background subtracted by the spectrum's author (the power law and the tails of lower
   edges, fitted before the first edge and extrapolated with an exponent up to ``SUBTRACTION_EXPONENT_ERROR`` off,
   and the dark level; a pre-edge near zero with negative counts, a residual slope beyond it), half of those also
   deconvolved (no plural scattering); thicker specimens; and the L2,3 edges of Na to Cl drawn as measured, sharp
   threshold peaks over a delayed continuum (``light_l23_peaks_probability``, :func:`_light_l23_shape`).

Labels: ``present`` (element has a K, L2,3, M4,5 or N4,5 onset inside the acquired window, or within ``NEAR_EDGE_EV``
below its first channel, where the edge's near-edge structure is in the window though its onset is not),
``detectable`` (present and edge SNR >= 5, the Rose criterion, with the SNR of the edge over the
first 50 eV after its onset as an analyst measures it: background-fit error and detector gain pattern
included, see :func:`edge_snr`), the per-channel onset label (edge table index), every drawn
parameter, and, as a yardstick for the labels, the edge's ideal-observer significance ``observer_z``
(:func:`observer_z`: what an observer who knows the edge's exact shape and fits the background locally
could reach). A present element that is not detectable may or may not be reported: neither counts as an error.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from eelsbatch.acquisition import DISPERSION_RANGE_EV
from eelsbatch.edges import CHEMICAL_SHIFT_EV, MAJOR_FAMILIES, PROFILE_KINDS, ROSE_SNR, SHOWN_FAMILIES, family_edges, profile_kinds
from eelsbatch.readout import READOUT_SECTORS, sector_starts
from eelsbatch.specimens import CARBON_PROBABILITY, MAX_ELEMENTS, OTHER_PROBABILITY, UNLISTED, listed, specimen_share, specimens_of
from eelsbatch.synth._elements import ELEMENTS, MATERIAL_SYSTEMS

# the families drawn (those that show in a spectrum) and the height of their edges relative to the element's K;
# chemical shifts are drawn N(0, 1.5) eV, clipped at CHEMICAL_SHIFT_EV; ROSE_SNR makes an edge detectable
SIMULATED_FAMILIES = dict(zip(SHOWN_FAMILIES, (1.0, 1.0, 1.0, 0.4, 0.12, 0.25)))
BACKGROUND_H = 5.0  # Egerton's h: noise added by extrapolating the fitted background under the edge (5 to 10)
SNR_WINDOW_EV = 50.0
NEAR_EDGE_EV = 30.0  # an onset this far below the saved window leaves its near-edge structure (step 3) in the window
OBSERVER_PRE_EDGE_EV = 50.0  # span below an onset over which the ideal observer fits the background (observer_z)
TABLE_LOW_EV, TABLE_HIGH_EV = 50.0, 3000.0
LIGHT_L23_Z = (11, 17)  # Na to Cl: L2,3 edges with threshold peaks over a delayed continuum (_light_l23_shape)
LIGHT_L23_DELAY_EV = (10.0, 60.0)
MISCALIBRATION_EV = 20.0  # energy-axis offset of a miscalibrated spectrum, drawn uniform within +-this
MISCALIBRATION_STRETCH_EV = 20.0  # and the most its dispersion error moves the window's far end (3 % of 600 eV: 18)
MISCALIBRATION_SCALE = 0.03  # largest dispersion error of a miscalibrated spectrum, relative
NARROW_WIDTH_EV = (20.0, 150.0)  # width of a narrow saved window, log-uniform
NARROW_MIN_CHANNELS = 96
SUBTRACTION_EXPONENT_ERROR = 0.1  # error of the exponent r of an author's pre-edge background fit
DETECTOR_PATTERNS = 8
_DETECTOR_SEED = 20221
NO_ELEMENT_PROBABILITY = 0.10  # default draws (draw_composition): no element
SYSTEM_PROBABILITY = 0.55  # else a material system of MATERIAL_SYSTEMS
SYSTEM_EXTRA_PROBABILITY = 0.3  # with another element beside it


@dataclass(frozen=True)
class Quality:
    """Ranges of the drawn quality parameters; ``STRONG`` is for structured test images."""

    log_jump_minus_one: tuple[float, float] = (-1.5, 0.7)
    log_dose: tuple[float, float] = (2.5, 5.5)
    spike_probability: float = 0.03
    blank_probability: float = 0.03
    sector_probability: float = 0.1
    cropped_probability: float = 0.0  # of the spectra read out through several ports: saved cropped, steps off the equal shares
    sector_gain: float = 0.04  # largest gain difference of a sector from the first, relative
    blank_log_level: tuple[float, float] = (-1.0, 1.3)  # log10 of a blank readout's flat stray counts per channel, drawn uniform
    dispersion_range: tuple[float, float] = DISPERSION_RANGE_EV  # eV/ch, drawn log-uniform
    background_exponent: tuple[float, float] = (2.0, 5.0)  # r of the power-law background A E^-r, drawn uniform
    # shares of the real-acquisition cases (step 8); 0 by default, so that the default draws stay as they were
    specimen_probability: float = 0.0  # composition drawn from REAL_SPECIMENS, as real specimens are
    miscalibrated_probability: float = 0.0  # energy axis off by up to MISCALIBRATION_EV (offset and dispersion error)
    narrow_probability: float = 0.0  # saved window cut to NARROW_WIDTH_EV around an edge, the rest not acquired
    subtracted_probability: float = 0.0  # background subtracted by the author (half of them deconvolved too)
    light_l23_peaks_probability: float = 0.0  # L2,3 edges of Na to Cl drawn as measured: threshold peaks, delayed continuum
    thickness: tuple[float, float] = (0.1, 1.5)  # t / lambda, drawn uniform


DEFAULT_QUALITY = Quality()
# the training distribution of spectra as real instruments record them (step 8), beside the default draws
# (real noise-only images hold a flat 100 counts per channel, above the default blank_log_level)
REAL_ACQUISITIONS = Quality(specimen_probability=0.5, miscalibrated_probability=0.4, narrow_probability=0.25,
                            subtracted_probability=0.15, thickness=(0.05, 2.5), dispersion_range=(0.01, 2.0),
                            blank_log_level=(-1.0, 2.5), light_l23_peaks_probability=0.5)
STRONG = Quality(log_jump_minus_one=(-0.5, 0.3), log_dose=(4.0, 5.0), spike_probability=0.0, blank_probability=0.0,
                 sector_probability=0.0)


simulated_edges = family_edges  # the element's edges grouped by simulated family, lowest onset first


def major_onsets(element: str) -> list[float]:
    """Lowest onset of each of the element's major families (K, L2,3, M4,5, N4,5), in eV."""
    return [edges[0].onset_eV for family, edges in simulated_edges(element).items() if family in MAJOR_FAMILIES]


def edge_snr(edge_counts: float, other_counts: float, gain_nonuniformity: float) -> float:
    """Signal-to-noise ratio of an edge after background subtraction, as an analyst would measure it.

    ``S / sqrt(S + h B + (g B)**2)`` over the SNR window: shot noise of the edge counts ``S``, the
    background ``B`` (everything else in the window) inflated by Egerton's ``h`` for the error of a
    fitted and extrapolated background (R. F. Egerton, *Electron Energy-Loss Spectroscopy in the
    Electron Microscope*, 3rd ed., Springer 2011), and the detector's fixed-pattern gain
    non-uniformity ``g`` (rms), which no amount of dose averages away.

    Parameters
    ----------
    edge_counts, other_counts
        Expected counts of the edge and of everything else in the window.
    gain_nonuniformity
        Relative rms of the detector gain pattern.
    """
    noise = edge_counts + BACKGROUND_H * other_counts + (gain_nonuniformity * other_counts) ** 2
    return float(edge_counts / np.sqrt(noise + 1.0))


def observer_z(edge: np.ndarray, expected: np.ndarray, variance: np.ndarray, energy: np.ndarray, onset: float) -> float:
    """Ideal-observer significance of an edge: its amplitude over the amplitude's standard error.

    From ``OBSERVER_PRE_EDGE_EV`` below the onset to ``SNR_WINDOW_EV`` above it, an observer who knows the
    edge's exact shape (fine structure and white lines included) fits its amplitude together with a local
    power-law distortion ``A E**-r`` of everything else in the spectrum (``A`` and ``r`` free), the
    background an analyst fits. Linearised at the truth, the amplitude's significance is
    ``sqrt(s'Ws - s'WX (X'WX)^-1 X'Ws)``: ``s`` the edge's expected counts, ``W`` the inverse variance and
    ``X`` the derivatives of everything else with respect to ``log A`` and ``r``. No observer that fits the
    background locally does better; an edge that only bends the background scores near 0.

    Parameters
    ----------
    edge, expected, variance, energy
        Per channel: the edge's expected counts, the expected counts of the whole spectrum, their
        variance, and the energy in eV.
    onset
        The edge's onset in eV.
    """
    region = (energy >= onset - OBSERVER_PRE_EDGE_EV) & (energy <= onset + SNR_WINDOW_EV)
    signal, weight = edge[region], 1.0 / variance[region]
    rest = expected[region] - signal
    nuisance = np.stack([rest, rest * np.log(energy[region])], axis=1)
    projection = nuisance.T @ (weight * signal)
    information = signal @ (weight * signal) - projection @ np.linalg.pinv(nuisance.T @ (weight[:, None] * nuisance)) @ projection
    return float(np.sqrt(max(information, 0.0)))


@functools.cache
def _detector_patterns(channels: int) -> np.ndarray:
    rng = np.random.default_rng(_DETECTOR_SEED)
    pixel = rng.standard_normal((DETECTOR_PATTERNS, channels))
    smooth = np.cumsum(rng.standard_normal((DETECTOR_PATTERNS, channels)), axis=1)
    smooth = (smooth - smooth.mean(axis=1, keepdims=True)) / (smooth.std(axis=1, keepdims=True) + 1e-9)
    pattern = 0.7 * pixel + 0.7 * smooth
    return pattern / pattern.std(axis=1, keepdims=True)


def draw_composition(rng: np.random.Generator, pool: Sequence[str] = ELEMENTS) -> list[str]:
    """0 to 4 distinct elements: 10 % none, 55 % a material system (plus maybe one more), else random."""
    if rng.random() < NO_ELEMENT_PROBABILITY:
        return []
    systems = [s for s in MATERIAL_SYSTEMS if set(s) <= set(pool)]
    if systems and rng.random() < SYSTEM_PROBABILITY:
        chosen = list(systems[rng.integers(len(systems))])
        if len(chosen) < MAX_ELEMENTS and rng.random() < SYSTEM_EXTRA_PROBABILITY:
            chosen.append(str(pool[rng.integers(len(pool))]))
    else:
        chosen = [str(e) for e in rng.choice(pool, size=rng.integers(1, MAX_ELEMENTS + 1), replace=False)]
    return list(dict.fromkeys(chosen))[:MAX_ELEMENTS]


def draw_specimen(rng: np.random.Generator, pool: Sequence[str] = ELEMENTS) -> list[str]:
    """1 to 4 elements of a common real specimen (:data:`~eelsbatch.specimens.REAL_SPECIMENS`), with carbon beside it
    in some (``CARBON_PROBABILITY``: support film, contamination) and another element in a few (``OTHER_PROBABILITY``);
    the specimen's :data:`~eelsbatch.specimens.UNLISTED` elements (Li) after them, beyond the 4: their edges are drawn,
    not labelled."""
    specimens = specimens_of(pool)
    if not specimens:  # a pool of none of them (synth --elements): the default draw
        return draw_composition(rng, pool)
    specimen = specimens[rng.integers(len(specimens))]
    chosen = listed(specimen)
    if "C" in pool and rng.random() < CARBON_PROBABILITY:
        chosen.append("C")
    if rng.random() < OTHER_PROBABILITY:
        chosen.append(str(pool[rng.integers(len(pool))]))
    return list(dict.fromkeys(chosen))[:MAX_ELEMENTS] + [element for element in specimen if element in UNLISTED]


def composition_share(quality: Quality, pool: Sequence[str] = ELEMENTS, composition: Sequence[str] | None = None) -> np.ndarray:
    """(len(pool),) probability that a spectrum's composition holds each element, as :func:`simulate` draws it.

    The training prior a recogniser learns (exact for :func:`draw_composition`; :func:`~eelsbatch.specimens.specimen_share`
    for the specimens' share); 1 for a fixed ``composition``'s elements, 0 for the rest.
    """
    pool = list(pool)
    if composition is not None:
        return np.array([element in composition for element in pool], float)
    systems = [s for s in MATERIAL_SYSTEMS if set(s) <= set(pool)]
    inside = np.array([[element in system for element in pool] for system in systems], float)
    extra = SYSTEM_EXTRA_PROBABILITY * np.array([len(system) < MAX_ELEMENTS for system in systems], float)[:, None] / len(pool)
    system_share = (inside + (1 - inside) * extra).mean(axis=0) if systems else np.zeros(len(pool))
    system_probability = SYSTEM_PROBABILITY if systems else 0.0
    random_share = np.mean(np.arange(1, MAX_ELEMENTS + 1)) / len(pool)  # 1 to MAX_ELEMENTS distinct, equally likely
    drawn = (1 - NO_ELEMENT_PROBABILITY) * (system_probability * system_share + (1 - system_probability) * random_share)
    specimens = specimen_share(pool) if specimens_of(pool) else drawn  # none in the pool: draw_specimen draws as by default
    return (1 - quality.specimen_probability) * drawn + quality.specimen_probability * specimens


def _drawn(rng: np.random.Generator, probability: float) -> bool:
    """A case of the given share; draws nothing where the share is 0 (so the default draws stay as they were)."""
    return bool(probability) and rng.random() < probability


def _narrow_window(rng: np.random.Generator, composition: list[str], start: float, dispersion: float,
                   channels: int) -> tuple[int, int]:
    """Channels ``(low, high)`` of a narrow saved window, from just before to well before an edge of the composition."""
    width = max(NARROW_MIN_CHANNELS, int(np.exp(rng.uniform(*np.log(NARROW_WIDTH_EV))) / dispersion))
    if width >= channels:
        return 0, channels
    stop_eV = start + dispersion * channels
    onsets = [e for element in composition for e in major_onsets(element) if start <= e < stop_eV]
    if onsets:
        before = rng.uniform(1.0, 0.7 * width * dispersion)  # eV of pre-edge saved
        low = int(round((onsets[rng.integers(len(onsets))] - before - start) / dispersion))
    else:
        low = int(rng.integers(0, channels - width + 1))
    low = int(np.clip(low, 0, channels - width))
    return low, low + width


def _miscalibration(rng: np.random.Generator, width: float) -> tuple[float, float]:
    """Energy offset (eV) and relative dispersion error of a miscalibrated axis over a saved window ``width`` eV wide."""
    scale = min(MISCALIBRATION_SCALE, MISCALIBRATION_STRETCH_EV / width)
    return float(rng.uniform(-MISCALIBRATION_EV, MISCALIBRATION_EV)), float(rng.uniform(-scale, scale))


def _draw_window(rng: np.random.Generator, composition: list[str], channels: int,
                 dispersion_range: tuple[float, float]) -> tuple[float, float]:
    dispersion = float(np.exp(rng.uniform(*np.log(dispersion_range))))
    width = channels * dispersion
    onsets = [e for element in composition for e in major_onsets(element) if 60.0 <= e <= TABLE_HIGH_EV]
    if onsets:
        target = onsets[rng.integers(len(onsets))]
        start = rng.uniform(target - 0.85 * width, target - 0.05 * width)
    else:
        start = rng.uniform(40.0, max(40.0, TABLE_HIGH_EV - 0.5 * width))
    return float(np.clip(start, 40.0, TABLE_HIGH_EV - 0.05 * width)), dispersion


# edge profile kinds (edges.PROFILE_KINDS, edges.profile_kinds) and the range of their delayed maximum
# (eV; None: a sharp rise): the shapes of step 3
PROFILE_DELAYS_EV: dict[str, tuple[float, float] | None] = {
    "sawtooth": None, "white lines": None, "short delay": (3.0, 12.0), "delayed": (10.0, 50.0), "long delay": (50.0, 100.0),
}
assert tuple(PROFILE_DELAYS_EV) == PROFILE_KINDS


def _shape(family: str, z: int, energy: np.ndarray, onsets: list[float], rng: np.random.Generator) -> np.ndarray:
    """Edge profile of unit height (relative to the step at the first onset) on ``energy``."""
    s = rng.uniform(2.0, 4.0)
    weights = [2 / 3, 1 / 3] if len(onsets) == 2 else [1.0]
    profile = np.zeros_like(energy)
    kinds = profile_kinds(family, z)
    kind = kinds[0] if len(kinds) == 1 or rng.random() < 0.5 else kinds[1]
    white = kind == "white lines"
    delays = PROFILE_DELAYS_EV[kind]
    delay = 0.0 if delays is None else rng.uniform(*delays)
    for weight, onset in zip(weights, onsets[:2]):
        x = np.clip(energy - onset, 0.0, None)
        rise = 0.5 + np.arctan(x / 0.3) / np.pi if delay == 0.0 else 1.0 - np.exp(-x / delay)
        profile += weight * np.where(energy >= onset, rise, 0.0) * (np.maximum(energy, onset) / onset) ** -s
        if white:
            height, width = rng.uniform(1.0, 8.0), rng.uniform(0.6, 1.6)
            profile += weight * height * np.exp(-0.5 * ((energy - onset - 1.0) / width) ** 2)
    for _ in range(rng.integers(0, 5)):  # near-edge fine structure
        centre, width, height = onsets[0] + rng.uniform(1.0, 30.0), rng.uniform(0.8, 5.0), rng.uniform(0.0, 0.4)
        profile += height * np.exp(-0.5 * ((energy - centre) / width) ** 2)
    return profile


def _light_l23_shape(energy: np.ndarray, onsets: list[float], rng: np.random.Generator) -> np.ndarray:
    """A measured-like L2,3 edge of Na to Cl (unit continuum step): sharp threshold peaks a few eV above the onset, up to
    three times the continuum, over a continuum that rises only 10 to 60 eV later (the delayed maximum of the d-like
    final states). The L2,3 edges of Al, Si and P in their oxides and of Si in the element look so in the EELS Atlas
    (C. C. Ahn and O. L. Krivanek, Gatan and Arizona State University, 1983) and in Egerton (2011), section 3.8: the
    threshold peaks are far stronger than the step.
    """
    onset = onsets[0]
    x = np.clip(energy - onset, 0.0, None)
    delay = rng.uniform(*LIGHT_L23_DELAY_EV)
    profile = np.where(energy >= onset, 1.0 - np.exp(-x / delay), 0.0) * (np.maximum(energy, onset) / onset) ** -rng.uniform(2.0, 4.0)
    for _ in range(rng.integers(1, 4)):
        centre, width, height = onset + rng.uniform(0.5, 8.0), rng.uniform(0.7, 3.0), rng.uniform(0.5, 3.0)
        profile += height * np.exp(-0.5 * ((energy - centre) / width) ** 2)
    return profile


def _low_loss_kernel(rng: np.random.Generator, dispersion: float, max_loss: float, thickness_range: tuple[float, float],
                     plural: bool = True) -> tuple[np.ndarray, dict]:
    """Unit-sum low-loss distribution (zero loss, plasmons, resolution); ``plural`` False: deconvolved, plasmons removed."""
    thickness = rng.uniform(*thickness_range)
    plasmon, width, fwhm = rng.uniform(12.0, 28.0), rng.uniform(3.0, 9.0), rng.uniform(0.3, 2.0)
    losses = np.arange(max(2, int(max_loss / dispersion))) * dispersion
    single = (width / 2) / ((losses - plasmon) ** 2 + (width / 2) ** 2) * dispersion / np.pi
    kernel = np.zeros_like(losses)
    kernel[0] = 1.0
    term = kernel.copy()
    for order in range(1, 4):  # Poisson series of plasmon losses
        term = np.convolve(term, single)[: losses.size] * thickness / order
        kernel = kernel + term * plural
    sigma = max(fwhm / 2.355 / dispersion, 0.3)
    half = int(np.ceil(4 * sigma))
    gauss = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel = np.convolve(kernel, gauss / gauss.sum())[half : half + losses.size]
    return kernel / kernel.sum(), {"thickness": thickness if plural else 0.0, "plasmon_energy": plasmon, "resolution": fwhm}


def _blank_readout(rng: np.random.Generator, channels: int, log_level: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and detected counts of a pixel with no specimen in the beam (step 6), the log10 of its flat level uniform in
    ``log_level``."""
    expected = np.full(channels, 10 ** rng.uniform(*log_level))
    offset = rng.uniform(0.0, 100.0) if rng.random() < 0.5 else rng.normal(0.0, 3.0)
    counts = rng.poisson(expected) + rng.normal(0.0, rng.uniform(1.0, 30.0), channels) + offset
    return expected, counts


def simulate(
    rng: np.random.Generator,
    channels: int = 2048,
    composition: list[str] | None = None,
    window: tuple[float, float] | None = None,
    quality: Quality = DEFAULT_QUALITY,
    pool: Sequence[str] = ELEMENTS,
) -> dict:
    """Draw and simulate one labelled spectrum.

    Parameters
    ----------
    rng
        The spectrum's own generator (seed it per spectrum for reproducibility).
    channels
        Number of detector channels.
    composition
        Elements in the specimen (default: drawn).
    window
        ``(energy_offset, dispersion)`` in eV and eV/ch (default: drawn around an edge of the composition).
    quality
        Ranges of jump ratio, dose and spikes.
    pool
        Elements to draw from and to label (the label vector's order).

    Returns
    -------
    dict
        ``spectrum`` (channels,) float32 counts, ``expected`` (mean detected counts, before dark
        offset, read noise and spikes), ``present``,
        ``detectable``, ``snr``, ``observer_z``, ``jump_ratio`` (len(pool),), ``onset_label`` (channels,) int16 and the
        scalar parameters.
    """
    if composition is None:
        composition = draw_specimen(rng, pool) if _drawn(rng, quality.specimen_probability) else draw_composition(rng, pool)
    composition = list(composition)
    start, dispersion = _draw_window(rng, composition, channels, quality.dispersion_range) if window is None else window
    energy_shift = float(np.clip(rng.normal(0.0, 2.0), -5.0, 5.0))
    dispersion_error = rng.uniform(-0.005, 0.005)
    # step 8, drawn only where its shares are set (the default draws stay as they were)
    acquired = _narrow_window(rng, composition, start, dispersion, channels) if _drawn(rng, quality.narrow_probability) else (0, channels)
    if _drawn(rng, quality.miscalibrated_probability):
        energy_shift, dispersion_error = _miscalibration(rng, dispersion * (acquired[1] - acquired[0]))
    subtracted = _drawn(rng, quality.subtracted_probability)
    deconvolved = subtracted and rng.random() < 0.5
    true_dispersion = dispersion * (1 + dispersion_error)
    kernel, low_loss = _low_loss_kernel(rng, true_dispersion, min(100.0, 0.5 * start), quality.thickness, not deconvolved)
    pad = kernel.size - 1
    energy = start + energy_shift + true_dispersion * np.arange(-pad, channels)
    energy = np.maximum(energy, 1.0)
    window_low, window_high = energy[pad], energy[-1]  # of the detector axis; the saved window is ``acquired``
    low, high = acquired
    saved_low = energy[pad + low]  # an author fits the background below the first edge of the saved window
    exponent, dose = rng.uniform(*quality.background_exponent), 10 ** rng.uniform(*quality.log_dose)
    background = dose * (energy / window_low) ** -exponent
    core = background.copy()
    present = np.zeros(len(pool), bool)
    snr = np.zeros(len(pool), np.float32)
    significance = np.zeros(len(pool), np.float32)
    jump = np.zeros(len(pool), np.float32)
    onset_label = np.full(channels, -1, np.int16)
    index = {element: i for i, element in enumerate(pool)}
    edge_signals = {element: np.zeros_like(energy) for element in composition}
    first_onset: dict[str, float] = {}  # lowest major onset inside the window, per present element
    below_window = np.zeros_like(energy)  # tails of edges below the saved window: part of the background an author subtracts
    families = []  # (onsets, element, family, edges, jump - 1 of the element)
    for element in composition:
        jump_minus_one = 10 ** rng.uniform(*quality.log_jump_minus_one)
        shift = float(np.clip(rng.normal(0.0, 1.5), -CHEMICAL_SHIFT_EV, CHEMICAL_SHIFT_EV))
        for family, edges in simulated_edges(element).items():
            onsets = [edge.onset_eV + shift for edge in edges[:2]]
            if onsets[0] <= window_high and onsets[-1] >= window_low - 200.0:
                families.append((onsets, element, family, edges, jump_minus_one))
    for onsets, element, family, edges, jump_minus_one in sorted(families, key=lambda f: f[0][0]):
        # the jump ratio is over the whole pre-edge intensity (background and lower edges' tails), as measured
        first = onsets[0]
        below = np.interp(first, energy, core) if first >= energy[0] else dose * (max(first, 1.0) / window_low) ** -exponent
        height = jump_minus_one * SIMULATED_FAMILIES[family] * below
        peaks = family == "L2,3" and LIGHT_L23_Z[0] <= edges[0].Z <= LIGHT_L23_Z[1] and _drawn(rng, quality.light_l23_peaks_probability)
        signal = height * (_light_l23_shape(energy, onsets, rng) if peaks else _shape(family, edges[0].Z, energy, onsets, rng))
        core += signal
        edge_signals[element] += signal
        if first < saved_low:
            below_window += signal
        for edge, edge_onset in zip(edges, onsets):
            channel = int(round((edge_onset - window_low) / true_dispersion))
            if low <= channel < high:
                onset_label[channel] = edge.index
                if family in MAJOR_FAMILIES and element in index:
                    present[index[element]] = True
                    jump[index[element]] = max(jump[index[element]], 1 + jump_minus_one * SIMULATED_FAMILIES[family])
                    first_onset[element] = min(first_onset.get(element, np.inf), edge_onset)
            elif saved_low - NEAR_EDGE_EV <= edge_onset < saved_low and family in MAJOR_FAMILIES and element in index:
                present[index[element]] = True  # its near-edge structure shows: may be reported, not required (SNR 0)
    expected = fftconvolve(core, kernel)[pad : pad + channels]
    expected = np.maximum(expected, 0.0)
    gain_level = rng.uniform(0.0, 0.03)
    edge_expected = {element: fftconvolve(edge_signals[element], kernel)[pad : pad + channels] for element in first_onset}
    saved = np.zeros(channels, bool)
    saved[low:high] = True
    for element, onset in first_onset.items():
        region = (energy[pad:] >= onset) & (energy[pad:] <= onset + SNR_WINDOW_EV) & saved
        edge_counts = edge_expected[element][region].sum()
        snr[index[element]] = edge_snr(edge_counts, expected[region].sum() - edge_counts, gain_level)
    gain = 1.0 + gain_level * _detector_patterns(channels)[rng.integers(DETECTOR_PATTERNS)]
    read_noise = rng.uniform(0.0, 5.0)
    variance = np.maximum(expected, 1.0) + read_noise**2 + (gain_level * expected) ** 2
    for element, onset in first_onset.items():
        significance[index[element]] = observer_z(edge_expected[element][low:high], expected[low:high], variance[low:high],
                                                  energy[pad:][low:high], onset)
    dark = rng.uniform(0.0, 100.0) if rng.random() < 0.5 else 0.0
    expected = expected * gain  # mean detected counts, before dark offset and read noise
    counts = rng.poisson(expected) + rng.normal(0.0, read_noise, channels) + dark
    if subtracted:  # the author's power law, right in the pre-edge span it was fitted over and off beyond, and the dark level
        fitted = fftconvolve(background + below_window, kernel)[pad : pad + channels] * gain
        saved_energy = energy[pad:][low:high]
        fit_centre = (saved_energy[0] + min([saved_energy[-1], *first_onset.values()])) / 2
        exponent_error = rng.uniform(-SUBTRACTION_EXPONENT_ERROR, SUBTRACTION_EXPONENT_ERROR)
        counts = counts - dark - fitted * (energy[pad:] / fit_centre) ** -exponent_error
    spikes = 0
    if rng.random() < quality.spike_probability:
        spikes = int(rng.integers(1, 4))
        counts[rng.integers(0, channels, spikes)] += rng.uniform(5.0, 50.0) * expected.max()
    blank = rng.random() < quality.blank_probability  # drawn after the specimen: the other draws do not depend on it
    if blank:
        expected, counts = _blank_readout(rng, channels, quality.blank_log_level)
        present[:], snr[:], significance[:], jump[:], onset_label[:] = False, 0.0, 0.0, 0.0, -1
    sectors, detector_channels, readout_offset = 1, channels, 0
    if rng.random() < quality.sector_probability:  # drawn last, likewise
        sectors = int(READOUT_SECTORS[rng.integers(len(READOUT_SECTORS))])
        gains = np.concatenate([[1.0], 1.0 + rng.uniform(-quality.sector_gain, quality.sector_gain, sectors - 1)])
        if quality.cropped_probability and rng.random() < quality.cropped_probability:  # saved from a longer detector axis
            detector_channels = channels + int(rng.integers(1, channels + 1))
            readout_offset = int(rng.integers(0, detector_channels - channels + 1))
        starts = sector_starts(detector_channels, sectors) - readout_offset
        sector_gain = gains[np.searchsorted(starts, np.arange(channels), side="right")]
        expected, counts = expected * sector_gain, counts * sector_gain
    counts[:low], counts[high:] = np.nan, np.nan  # not acquired (a narrow saved window)
    return {
        "spectrum": counts.astype(np.float32),
        "expected": expected.astype(np.float32),
        "present": present,
        "detectable": present & (snr >= ROSE_SNR),
        "snr": snr,
        "observer_z": significance,
        "jump_ratio": jump,
        "onset_label": onset_label,
        "energy_offset": float(start),
        "dispersion": float(dispersion),
        "energy_shift": energy_shift,
        "dispersion_error": float(dispersion_error),
        "background_exponent": float(exponent),
        "dose": float(dose),
        "gain_nonuniformity": float(gain_level),
        "read_noise": float(read_noise),
        "dark_offset": float(dark),
        "spikes": spikes,
        "readout_sectors": sectors,
        "detector_channels": detector_channels,
        "readout_offset": readout_offset,
        "acquired_channels": high - low,
        "background_subtracted": int(subtracted) + int(deconvolved),
        **low_loss,
    }
