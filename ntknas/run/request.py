"""What a search is asked to do, in one frozen object: the study's settings (what it remembers)
and how this run goes about it (storage, sampler, device, workers, threads, heartbeat)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ntknas.core.defaults import HEARTBEAT_SECONDS
from ntknas.study.samplers import SamplerFactory, SamplerName
from ntknas.study.settings import Settings

if TYPE_CHECKING:
    import optuna


@dataclass(frozen=True)
class SearchRequest:
    """Search study ``study`` until it holds ``trials`` distinct scored configurations.

    ``settings`` are what the study remembers (a resume with others is refused); ``storage`` is an
    Optuna storage URL or object (None: ``sqlite:///results/ntknas.db``); ``sampler`` is
    ``tpe``, ``random`` or ``nsga2`` (see :mod:`ntknas.study.samplers`); ``device`` is ``cpu``,
    ``cuda`` or ``cuda:K`` (``cuda`` spreads workers over the GPUs); ``workers`` local processes
    share the study, each with ``threads`` torch threads (None: a share of this process's CPUs);
    ``heartbeat`` is the seconds between a running trial's heartbeats; ``data_root`` is where the
    ``cifar10`` source lives.
    """

    study: str
    settings: Settings
    trials: int
    sampler: SamplerName | SamplerFactory = "tpe"
    storage: str | optuna.storages.BaseStorage | None = None
    device: str = "cpu"
    workers: int = 1
    threads: int | None = None
    heartbeat: int = HEARTBEAT_SECONDS
    data_root: str | Path | None = None
