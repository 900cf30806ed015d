"""What a simulation leaves: spike times and neuron ids, membrane traces, rates."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError


@dataclass
class SpikeRecord:
    """Spikes of a run (or of one chunk of it).

    times: (n_spikes,) float64 ms, the end of the step in which each spike happened, sorted;
    ids: (n_spikes,) int64 neuron ids, global over the recorded populations (``offsets`` gives
    each population's first id and size); counts: (n_neurons,) spikes per neuron over the run
    (an integer array)
    (kept even when spike times are not recorded); steps, dt: the run's length in steps and its
    step (ms); t0: the run's start (ms); v: population name -> (neuron ids, (steps, k) mV)
    membrane traces; step_counts: (steps, n_populations) spikes per step and population.
    """

    times: np.ndarray
    ids: np.ndarray
    counts: np.ndarray
    steps: int
    dt: float
    t0: float = 0.0
    offsets: dict = field(default_factory=dict)
    v: dict = field(default_factory=dict)
    step_counts: np.ndarray | None = None

    @property
    def duration(self) -> float:
        """ms covered by the record."""
        return self.steps * self.dt

    @property
    def n_neurons(self) -> int:
        return int(self.counts.size)

    def rates(self, population: str | None = None) -> np.ndarray:
        """Mean firing rate of each neuron (Hz) over the record."""
        counts = self.counts if population is None else self.counts[self._slice(population)]
        return counts / (self.duration * 1e-3) if self.steps else np.zeros(counts.shape)

    def population_rate(self, population: str | None = None) -> np.ndarray:
        """Spikes per step of ``population`` (all when None) divided by its size and dt: (steps,) Hz."""
        if self.step_counts is None:
            raise InputError("population", "this record has no per-step counts")
        names = list(self.offsets)
        if population is None:
            return self.step_counts.sum(1) / max(self.n_neurons, 1) / (self.dt * 1e-3)
        col = names.index(population) if population in names else None
        if col is None:
            raise InputError("population", f"no population {population!r}; have {names}")
        return self.step_counts[:, col] / self.offsets[population][1] / (self.dt * 1e-3)

    def _slice(self, population: str) -> slice:
        if population not in self.offsets:
            raise InputError("population", f"no population {population!r}; have {list(self.offsets)}")
        start, n = self.offsets[population]
        return slice(start, start + n)

    def population(self, name: str) -> "SpikeRecord":
        """The spikes of one population, with its own ids from 0."""
        sl = self._slice(name)
        keep = (self.ids >= sl.start) & (self.ids < sl.stop)
        col = list(self.offsets).index(name)
        return SpikeRecord(
            self.times[keep], self.ids[keep] - sl.start, self.counts[sl], self.steps, self.dt, self.t0,
            {name: (0, sl.stop - sl.start)}, {k: v for k, v in self.v.items() if k == name},
            None if self.step_counts is None else self.step_counts[:, col:col + 1],
        )

    def spike_trains(self, population: str | None = None) -> list[np.ndarray]:
        """Spike times (ms) of each neuron."""
        rec = self if population is None else self.population(population)
        order = np.argsort(rec.ids, kind="stable")
        ids, times = rec.ids[order], rec.times[order]
        bounds = np.searchsorted(ids, np.arange(rec.n_neurons + 1))
        return [times[bounds[i]:bounds[i + 1]] for i in range(rec.n_neurons)]

    @staticmethod
    def concatenate(records: list["SpikeRecord"]) -> "SpikeRecord":
        """Join consecutive chunks of one run."""
        if not records:
            raise InputError("records", "nothing to concatenate")
        first = records[0]
        v = {}
        for name, (ids, _) in first.v.items():
            v[name] = (ids, np.concatenate([r.v[name][1] for r in records]))
        sc = None if first.step_counts is None else np.concatenate([r.step_counts for r in records])
        counts = first.counts
        if len(records) > 1 and counts is not None:
            counts = first.counts.astype(np.int64)
            for r in records[1:]:
                counts += r.counts
        return SpikeRecord(
            np.concatenate([r.times for r in records]), np.concatenate([r.ids for r in records]),
            counts, sum(r.steps for r in records), first.dt,
            first.t0, dict(first.offsets), v, sc,
        )

    def __repr__(self) -> str:
        return (f"SpikeRecord({self.times.size} spikes from {self.n_neurons} neurons, "
                f"{self.duration:g} ms from t0={self.t0:g} ms)")
