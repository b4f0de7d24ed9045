"""`slaproc worker`: the Faust worker with the real core, metrics and the query API."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from streams.health import quiet_kafka_client_logs
from streams.settings import ENV_VARS, SettingsError, WorkerSettings


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per setting (`--partitions` for SLAPROC_PARTITIONS ...); flags win over the environment."""
    defaults = WorkerSettings()
    group = parser.add_argument_group("settings (flag, or environment variable; flags win)")
    for name, var in ENV_VARS.items():
        default = getattr(defaults, name)
        if isinstance(default, tuple):
            default = ",".join(str(x) for x in default)
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar=var,
                           help=f"env {var} (default {default})")


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> WorkerSettings:
    """Settings from the environment, then the flags given (parsed with the env's parsers)."""
    env = dict(os.environ if environ is None else environ)
    for name, var in ENV_VARS.items():
        value = getattr(args, name, None)
        if value is not None:
            env[var] = str(value)
    return WorkerSettings.from_env(env)


def build_worker_app(settings: WorkerSettings, **faust_options: Any) -> Any:
    """The Faust app with the real core, metrics observer and web views (not started)."""
    from policies.catalog import default_catalog
    from policies.processor import Settings
    from streams.app import build_app
    from streams.core_adapter import RealCore
    from streams.metrics import Metrics, MetricsObserver
    from streams.web import register_views

    catalog = default_catalog()
    core = RealCore(settings, catalog, Settings(at_risk_thresholds=settings.at_risk_thresholds))
    metrics = Metrics()
    metrics.zero_catalog(catalog)
    observer = MetricsObserver(metrics)
    app = build_app(settings, core, observer, **faust_options)
    observer.worker = app.slaproc
    app.slaproc.metrics = metrics
    register_views(app, app.slaproc, metrics)
    return app


FORCED_EXIT_AFTER = 30.0  # seconds a failed worker may take to stop cleanly before it is ended


async def _stop_failed(worker: Any, exc: BaseException) -> None:
    """Stop the worker after a fatal error, with a non-zero exit: mode's Worker re-raises its
    `crash_reason` once the loop is shut down (exit status 1). A watchdog ends the process if the
    clean stop hangs (e.g. the broker is gone): at-least-once delivery makes that safe."""
    import threading

    def force() -> None:
        print(f"slaproc worker: not stopped {FORCED_EXIT_AFTER:.0f} s after a fatal error; exiting", file=sys.stderr,
              flush=True)
        os._exit(1)

    timer = threading.Timer(FORCED_EXIT_AFTER, force)
    timer.daemon = True
    timer.start()
    worker.crash_reason = exc
    await worker.stop()
    starting = getattr(worker, "_starting_fut", None)
    if starting is not None and not starting.done():
        starting.cancel()


def run_worker(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except SettingsError as err:
        print(f"slaproc worker: {err}", file=sys.stderr)
        return 2
    from faust.worker import Worker

    app = build_worker_app(settings)
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    app.slaproc.on_fatal = lambda exc: _stop_failed(worker, exc)
    quiet_kafka_client_logs()
    # Runs until SIGINT/SIGTERM, then stops the app cleanly. SIGUSR1 (mode's Worker) writes every
    # asyncio task's stack to the log: what a worker that makes no progress is waiting on.
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":  # python -m streams.worker [flags]: what tests and the demo spawn
    parser = argparse.ArgumentParser(prog="slaproc worker")
    add_worker_flags(parser)
    sys.exit(run_worker(parser.parse_args()))
