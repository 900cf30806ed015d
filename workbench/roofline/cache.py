"""Ceilings and measured operations kept in the experiment store.

Every measurement of a device's ceilings is added to its history (never overwritten), under its
mode: a ``quick`` measurement (small buffers, few repeats) is never what a full run uses. What a
run uses (:func:`cached_ceilings`) is the newest *accepted* measurement: not noisy. Profiles of
operations (the SGEMM points of a roofline chart, the benchmarks' int8, SpMV and LIF points) are
kept as finished runs of kind ``"roofline-points"`` so the Roofline page can show them.
"""

from __future__ import annotations

from typing import Callable

from ..runtime import Runtime, resolve_rt
from ..store import resolve_store
from .model import Ceilings, OpProfile, Reading
from .probes import iter_ceilings

PROFILE_KIND = "roofline-points"


def measure_ceilings(
    rt: Runtime | str | None = None,
    on_result: Callable[[Reading, int, int], None] | None = None,
    *, quick: bool | None = None,
    store=None,
) -> Ceilings:
    """Measure every ceiling of ``rt`` (see :mod:`workbench.roofline.probes`) and return
    :class:`Ceilings`, added to ``store``'s history (None: the default store; False: none).

    ``on_result(reading, i, total)`` is called after each microbenchmark. Takes a few seconds
    (``quick=True``: about a second).
    """
    ceilings = None
    for reading, ceilings_so_far, i, total in iter_ceilings(rt, quick):
        ceilings = ceilings_so_far
        if on_result is not None:
            on_result(reading, i, total)
    save_ceilings(ceilings, store)
    return ceilings


def save_ceilings(ceilings: Ceilings, store=None) -> None:
    """Add ``ceilings`` to its device's history in ``store`` (None: default; False: none)."""
    st = resolve_store(store)
    if st is not None:
        st.save_ceilings(ceilings.device_key, ceilings.device, ceilings.as_dict(), mode=ceilings.mode,
                         noisy=bool(ceilings.noisy))


def cached_ceilings(rt: Runtime | str | None = None, store=None, *, quick: bool = False,
                    accepted: bool = True) -> Ceilings | None:
    """The newest ceilings measured for this device and driver, or None: a full run takes only
    full measurements; a ``quick`` one takes the newest full one, else a quick one. With
    ``accepted`` (the default) a noisy measurement is skipped while an accepted one exists."""
    rt = resolve_rt(rt)
    st = resolve_store(store)
    if st is None:
        return None
    payload = st.load_ceilings(rt.info.key, mode="full", accepted=accepted)
    if payload is None and quick:
        payload = st.load_ceilings(rt.info.key, mode="quick", accepted=accepted)
    return None if payload is None else Ceilings.from_dict(payload)


def ceilings_history(rt: Runtime | str | None = None, store=None) -> list[dict]:
    """Every measurement of this device's ceilings, newest first (``mode``, ``noisy``,
    ``measured_at`` and the :class:`Ceilings` as ``ceilings``)."""
    rt = resolve_rt(rt)
    st = resolve_store(store)
    if st is None:
        return []
    return [{**{k: v for k, v in h.items() if k != "payload"}, "ceilings": Ceilings.from_dict(h["payload"])}
            for h in st.ceilings_history(rt.info.key)]


def get_ceilings(rt: Runtime | str | None = None, refresh: bool = False, *, store=None,
                 quick: bool | None = None) -> Ceilings:
    """Cached ceilings of the run's mode when there are some (and ``refresh`` is False), else
    measure them."""
    from .. import config

    rt = resolve_rt(rt)
    quick = config.quick() if quick is None else quick
    if not refresh:
        cached = cached_ceilings(rt, store, quick=quick)
        if cached is not None:
            return cached
    return measure_ceilings(rt, quick=quick, store=store)


def save_profiles(rt: Runtime, profiles: list[OpProfile], *, store=None, source: str = "") -> int | None:
    """Keep measured operations in the store as a finished run of kind ``"roofline-points"``
    (``source`` says what measured them: ``"roofline page"``, ``"bench"``...), so they can be
    redrawn later; returns the run id."""
    st = resolve_store(store)
    if st is None or not profiles:
        return None
    params = {"names": [p.name for p in profiles], "kinds": [p.kind for p in profiles],
              "computes": [p.compute for p in profiles], "source": source}
    with st.run(PROFILE_KIND, params, device=rt) as run:
        for i, p in enumerate(profiles):
            run.log(i, flops=p.flops, bytes=p.bytes, seconds=p.seconds, host_bytes=p.host_bytes,
                    min_s=p.min_s, max_s=p.max_s)
    return run.id


def _profiles_of(run: dict, metrics: list[dict]) -> list[OpProfile]:
    p = run["params"]
    names = p["names"]
    kinds = p.get("kinds") or [""] * len(names)
    computes = p.get("computes") or ["fp32_gflops"] * len(names)
    return [OpProfile(names[m["step"]], m["flops"], m["bytes"], m["seconds"],
                      host_bytes=m.get("host_bytes") or 0.0, kind=kinds[m["step"]],
                      compute=computes[m["step"]], min_s=m.get("min_s"), max_s=m.get("max_s"))
            for m in metrics]


def load_profiles(rt: Runtime, store=None, *, source: str | None = None,
                  latest: bool = True) -> list[OpProfile]:
    """Stored operations of this device: those of the newest finished ``"roofline-points"`` run
    (``latest``), or of every such run; ``source`` filters on what measured them."""
    st = resolve_store(store)
    if st is None:
        return []
    out: list[OpProfile] = []
    for run in st.runs(PROFILE_KIND, device=rt, status="finished"):
        if source is not None and run["params"].get("source", "") != source:
            continue
        out.extend(_profiles_of(run, st.metrics(run["id"])))
        if latest:
            break
    return out
