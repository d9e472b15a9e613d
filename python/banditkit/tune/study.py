"""The Optuna side of `banditkit tune`: the study in the store's database, and the trials run
by ask/tell, in this process or as Ray tasks.

The study lives in the same database as the model store (Optuna's RDB storage: its tables and
the store's `bk_*` tables sit side by side in one SQLite file or PostgreSQL database). A study
remembers the settings that decide its trial values, and a run on an existing study must use
the same ones: values measured on different worlds cannot be compared.

Determinism: trials are asked in batches of `parallel`; the sampler of a batch is seeded from
(seed, number of its first trial), every trial of a batch is evaluated, and the values are
told in trial order. The sampler then sees the same history and the same seed whether the
batch ran here or on a cluster, and whatever finished first: same command, same seed, same
trials.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from banditkit.tune.objective import LogData, Settings, trial_value
from banditkit.tune.spaces import SPACES, Knobs

if TYPE_CHECKING:
    import optuna

SETTINGS_ATTR = "banditkit.tune.settings"
DEFAULTS_ATTR = "banditkit.tune.defaults"  # user attr of the trial that plays the defaults
ERROR_ATTR = "banditkit.tune.error"
KNOBS_ATTR = "banditkit.tune.knobs"  # every knob played, searched or fixed
INTERRUPTED = "interrupted"  # the error of a trial whose run stopped before it finished

Outcome = tuple[float | None, str | None]
Runner = Callable[[Sequence[Knobs]], list[Outcome]]


class TuneError(ValueError):
    """A run that cannot go ahead; the message says why in one line."""


def store_urls(store: str) -> tuple[str, str]:
    """(the banditkit store URL, the SQLAlchemy URL Optuna opens) of `--store PATH|URL`.

    A bare path is a SQLite file (made absolute, so a config naming it works from anywhere);
    PostgreSQL goes through psycopg 3, the driver the store uses."""
    if "://" not in store:
        store = "sqlite:///" + os.path.abspath(store)
    scheme, _, rest = store.partition("://")
    if scheme.lower() in ("postgresql", "postgres"):
        return store, "postgresql+psycopg://" + rest
    return store, store


def open_storage(store: str) -> tuple[str, Any]:
    """Create the store's tables (if needed), then Optuna's storage on the same database."""
    import optuna

    from banditkit.serve.cli import shown_url
    from banditkit.store import open_store

    url, sqlalchemy_url = store_urls(store)
    try:
        open_store(url).close()
    except ImportError as exc:
        raise TuneError(f"the store {shown_url(url)} needs {exc.name}: "
                        "pip install 'banditkit[postgres]'") from None  # fmt: skip
    except Exception as exc:  # sqlite3, psycopg and OS errors: one line, never the password
        raise TuneError(f"cannot open the store {shown_url(url)}: {exc}") from None
    try:
        return url, optuna.storages.RDBStorage(sqlalchemy_url)
    except Exception as exc:
        raise TuneError(f"cannot keep a study in {shown_url(url)}: {exc}") from None


def load_or_create(storage: Any, name: str, settings: Settings, defaults: Knobs) -> optuna.Study:
    """The study `name`: created with the defaults enqueued as trial 0, or loaded when it
    exists (with the same settings, else `TuneError`)."""
    import optuna

    wanted = settings.describe()
    if name in optuna.get_all_study_names(storage):
        study = optuna.load_study(study_name=name, storage=storage)
        kept = study.user_attrs.get(SETTINGS_ATTR)
        if kept is None:
            raise TuneError(
                f"the study {name!r} was not made by banditkit tune: pick another --study"
            )
        if kept != wanted:
            diff = ", ".join(
                f"{k} {kept.get(k)!r} (now {wanted.get(k)!r})"
                for k in sorted(set(kept) | set(wanted))
                if kept.get(k) != wanted.get(k)
            )
            raise TuneError(
                f"the study {name!r} was made with other settings: {diff}; its values would not "
                "be comparable: use the same settings or another --study"
            )
    else:
        study = optuna.create_study(storage=storage, study_name=name, direction=settings.direction)
        study.set_user_attr(SETTINGS_ATTR, wanted)

    # A new study, or one whose defaults trial never finished (interrupted, or its process
    # killed): the defaults run (again) first. A defaults trial that failed by itself stays.
    def settled(t: optuna.trial.FrozenTrial) -> bool:
        state = optuna.trial.TrialState
        if t.state == state.FAIL:
            return t.user_attrs.get(ERROR_ATTR, INTERRUPTED) != INTERRUPTED
        return t.state in (state.COMPLETE, state.WAITING)

    if not any(t.user_attrs.get(DEFAULTS_ATTR) and settled(t) for t in study.trials):
        trial_0 = SPACES[settings.policy].applying(defaults)
        study.enqueue_trial(trial_0, user_attrs={DEFAULTS_ATTR: True})
    return study


def seed_of(seed: int, trial_number: int) -> int:
    return int(np.random.SeedSequence([seed, trial_number]).generate_state(1, np.uint32)[0])


@dataclass
class Done:
    """One finished trial, as reported while the study runs."""

    number: int
    knobs: Knobs
    value: float | None
    error: str | None


def run_trials(
    study: optuna.Study,
    settings: Settings,
    defaults: Knobs,
    n_trials: int,
    parallel: int,
    runner: Runner,
    report: Callable[[Done], None] = lambda done: None,
) -> None:
    """Ask, evaluate (`runner`) and tell `n_trials` trials in batches of `parallel`."""
    import optuna

    space = SPACES[settings.policy]
    left = n_trials
    while left > 0:
        size = min(parallel, left)
        study.sampler = optuna.samplers.TPESampler(seed=seed_of(settings.seed, len(study.trials)))
        asked: list[optuna.trial.Trial] = []
        told = 0
        try:
            for _ in range(size):
                asked.append(study.ask())
            points = [space.suggest(t, defaults) for t in asked]
            outcomes = runner(points)
            for trial, knobs, (value, error) in zip(asked, points, outcomes, strict=True):
                trial.set_user_attr(KNOBS_ATTR, knobs)
                if error is None:
                    study.tell(trial, value)
                else:
                    trial.set_user_attr(ERROR_ATTR, error)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                told += 1
                report(Done(trial.number, knobs, value, error))
        finally:  # interrupted: the unfinished trials are failed, not left running forever
            for trial in asked[told:]:
                trial.set_user_attr(ERROR_ATTR, INTERRUPTED)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        left -= size


def local_runner(settings: Settings, data: LogData | None) -> nullcontext[Runner]:
    def run(points: Sequence[Knobs]) -> list[Outcome]:
        return [trial_value(settings, knobs, data) for knobs in points]

    return nullcontext(run)


def _ray_trial(settings: Settings, knobs: Knobs, data: LogData | None) -> Outcome:
    return trial_value(settings, knobs, data)


@contextmanager
def ray_runner(settings: Settings, data: LogData | None, address: str | None) -> Iterator[Runner]:
    """Trials as Ray tasks on the cluster at `address` (None: Ray's own choice: RAY_ADDRESS,
    else a local instance). The data goes to the object store once, not with every task. A
    connection made here is closed on the way out; a caller's own is left alone."""
    import ray

    connected_here = not ray.is_initialized()
    if connected_here:
        try:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        except Exception as exc:  # ConnectionError, ValueError, RuntimeError, by version
            where = f"the Ray cluster at {address}" if address else "Ray"
            raise TuneError(f"cannot connect to {where}: {exc}") from None
    try:
        remote = ray.remote(max_retries=3)(_ray_trial)
        data_ref = ray.put(data)

        def run(points: Sequence[Knobs]) -> list[Outcome]:
            return ray.get([remote.remote(settings, knobs, data_ref) for knobs in points])

        yield run
    finally:
        if connected_here:
            ray.shutdown()


def finished(study: optuna.Study) -> int:
    """Trials that ran to an end (complete or failed), not the enqueued ones waiting."""
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=states))


def best_and_defaults(study: optuna.Study) -> tuple[Any, Any]:
    """(the best finished trial, the finished trial that played the defaults or None)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise TuneError("no trial of the study finished (see the errors above)")
    defaults = next((t for t in complete if t.user_attrs.get(DEFAULTS_ATTR)), None)
    return study.best_trial, defaults
