"""Measured roofline: a device's ceilings from our own microbenchmarks, and the model built on them.

Three modules, one idea each:

* :mod:`~workbench.roofline.model`: :class:`Ceilings`, :class:`OpProfile`, :class:`Roofline`
  (attainable rate, the four verdicts of :meth:`Roofline.bound`, :meth:`Roofline.explain`);
* :mod:`~workbench.roofline.probes`: the microbenchmarks (:func:`plan_ceilings`,
  :func:`iter_ceilings`), the plausibility and noise checks;
* :mod:`~workbench.roofline.cache`: ceilings history and stored operation profiles.
"""

from .cache import (
    PROFILE_KIND,
    cached_ceilings,
    ceilings_history,
    get_ceilings,
    load_profiles,
    measure_ceilings,
    save_ceilings,
    save_profiles,
)
from .model import (
    ABOVE_THEORY,
    CEILING_FIELDS,
    COMPUTE_FIELDS,
    LABELS,
    LAUNCH_FACTOR,
    SPREAD_NOISY,
    UNITS,
    Ceilings,
    OpProfile,
    Reading,
    Roofline,
    theoretical_peaks,
)
from .probes import (
    ImplausibleMeasurement,
    Step,
    check_plausible,
    check_reading,
    iter_ceilings,
    new_ceilings,
    noisy_ceilings,
    plan_ceilings,
)

__all__ = [
    "ABOVE_THEORY", "CEILING_FIELDS", "COMPUTE_FIELDS", "Ceilings", "ImplausibleMeasurement", "LABELS",
    "LAUNCH_FACTOR", "OpProfile", "PROFILE_KIND", "Reading", "Roofline", "SPREAD_NOISY", "Step", "UNITS",
    "cached_ceilings", "ceilings_history", "check_plausible", "check_reading", "get_ceilings",
    "iter_ceilings",
    "load_profiles", "measure_ceilings", "new_ceilings", "noisy_ceilings", "plan_ceilings", "save_ceilings",
    "save_profiles", "theoretical_peaks",
]
