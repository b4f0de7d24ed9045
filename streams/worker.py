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
    add_kafka_flags(parser)
    parser.add_argument("--allow-untested-versions", action="store_true",
                        help="start even if faust-streaming/aiokafka/mode-streaming are not the tested versions "
                             "(env SLAPROC_ALLOW_UNTESTED_VERSIONS=1; docs/operations.md)")


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    """The SLAPROC_KAFKA_* settings as flags (`--kafka-security-protocol` ...), for every command that
    talks to Kafka. A secret has only its file form as a flag (`--kafka-sasl-password-file`): a
    secret on the command line would be visible to every user of the machine (ps)."""
    from streams.kafka_config import ENV_VARS as KAFKA_VARS, SECRET_VARS

    group = parser.add_argument_group("Kafka connection: TLS, SASL (flag, or environment variable; flags win; "
                                      "docs/kafka.md)")
    for name, var in KAFKA_VARS.items():
        flag = "--kafka-" + name.replace("_", "-")
        if name in SECRET_VARS:
            group.add_argument(flag + "-file", dest="kafka_" + name + "_file", default=None, metavar="PATH",
                               help=f"env {var}_FILE (or {var}); read from this file")
        else:
            group.add_argument(flag, dest="kafka_" + name, default=None, metavar=var.removeprefix("SLAPROC_"),
                               help=f"env {var}")


def kafka_env(args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with the Kafka flags given written over their variables."""
    from streams.kafka_config import ENV_VARS as KAFKA_VARS, SECRET_VARS

    env = dict(os.environ if environ is None else environ)
    for name, var in KAFKA_VARS.items():
        if name in SECRET_VARS:
            value = getattr(args, "kafka_" + name + "_file", None)
            if value is not None:
                env.pop(var, None)
                env[var + "_FILE"] = str(value)
        else:
            value = getattr(args, "kafka_" + name, None)
            if value is not None:
                env[var] = str(value)
    return env


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> WorkerSettings:
    """Settings from the environment, then the flags given (parsed with the env's parsers)."""
    env = kafka_env(args, environ)
    for name, var in ENV_VARS.items():
        value = getattr(args, name, None)
        if value is not None:
            env[var] = str(value)
    return WorkerSettings.from_env(env)


def check_cluster(settings: WorkerSettings) -> WorkerSettings:
    """Start-up check against the cluster (SPEC §12): connect as every client will (TLS, SASL),
    cap the replication factor at the broker count (a warning), and refuse existing co-partitioned
    topics whose partition count differs. Returns the settings to run with; raises KafkaConfigError
    (one line a problem)."""
    import asyncio

    from streams import kafka_config
    from streams.app import INPUT_TOPICS
    from streams.store import STATE_TABLES

    # Everything keyed state ties to partition i: the ticket and monitoring topics, the ticks and
    # attainment topics, the state changelogs. (Not sla.contracts: contracts go to a global table
    # every worker holds whole, so its partition count is free; a producer that got there before
    # the worker may have had it auto-created with the broker's default.)
    topics = [settings.topic(name) for name in INPUT_TOPICS[1:]]
    topics += [f"{settings.app_id}-ticks", f"{settings.app_id}-attainment"]
    topics += [f"{settings.app_id}-{table}-changelog" for table in (*STATE_TABLES, "attainment")]
    info = asyncio.run(kafka_config.preflight(settings.broker, settings.kafka, topics=topics))
    problems = kafka_config.check_copartitioned(info.partitions, settings.partitions)
    if problems:
        raise kafka_config.KafkaConfigError(problems)
    factor, warning = kafka_config.effective_replication_factor(settings.replication_factor, info.brokers)
    if warning:  # printed, not logged: logging is not set up yet, so it went out twice (bare and prefixed)
        print(f"slaproc worker: warning: {warning}", file=sys.stderr)
    return settings.replace(replication_factor=factor)


def build_worker_app(settings: WorkerSettings, **faust_options: Any) -> Any:
    """The Faust app with the real core, metrics observer and web views (not started)."""
    from policies.catalog import default_catalog
    from policies.processor import Settings
    from streams.app import MONITORING_EVENTS, REPEATED_COPY_REASONS, TICKET_EVENTS, build_app
    from streams.core_adapter import RealCore
    from streams.metrics import Metrics, MetricsObserver
    from streams.web import register_views

    catalog = default_catalog()
    core = RealCore(settings, catalog, Settings(at_risk_thresholds=settings.at_risk_thresholds))
    metrics = Metrics()
    metrics.zero_catalog(catalog, settings.at_risk_thresholds)
    # at 0 from the start: the alert's increase() then sees a topic's first misrouted record
    for topic in (TICKET_EVENTS, MONITORING_EVENTS):
        metrics.misrouted.labels(settings.topic(topic))
    for reason in REPEATED_COPY_REASONS:
        metrics.copies_dropped.labels(reason)
    observer = MetricsObserver(metrics)
    # Faust's web server off: the views are served from a thread of their own (streams/web.py).
    app = build_app(settings, core, observer, **{"web_enabled": False, **faust_options})
    observer.worker = app.slaproc
    app.slaproc.metrics = metrics
    if settings.web_enabled:
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


def check_library_versions(args: argparse.Namespace, environ: dict[str, str] | None = None) -> bool:
    """False (after saying why on stderr) when the Faust/aiokafka versions are not the tested ones
    (streams/compat.py reads their private API) and no override was given; with the override, a
    warning and True."""
    from streams import compat

    env = os.environ if environ is None else environ
    allow = bool(getattr(args, "allow_untested_versions", False)) or env.get(compat.ALLOW_UNTESTED_ENV) == "1"
    try:
        problems = compat.require_tested_versions(allow)
    except compat.UntestedVersionError as err:
        for problem in err.problems:
            print(f"slaproc worker: {problem}", file=sys.stderr)
        return False
    for problem in problems:
        print(f"slaproc worker: warning: {problem.split(';')[0]}; starting anyway ({compat.ALLOW_UNTESTED_ENV})",
              file=sys.stderr)
    return True


def run_worker(args: argparse.Namespace) -> int:
    from streams.kafka_config import KafkaConfigError

    if not check_library_versions(args):
        return 2
    try:
        settings = settings_from(args)
        settings = check_cluster(settings)
    except (SettingsError, KafkaConfigError) as err:
        for problem in getattr(err, "problems", None) or [str(err)]:
            print(f"slaproc worker: {problem}", file=sys.stderr)
        return 2
    # The effective security settings, secrets masked: what an operator checks first when the
    # cluster refuses the worker later (after the check, so a failed start stays one line).
    print(f"slaproc worker: {settings.kafka.start_line(settings.broker)}", file=sys.stderr, flush=True)
    from faust.worker import Worker

    try:
        app = build_worker_app(settings)
    except SettingsError as err:  # SLAPROC_STATE_DIR held by another worker (streams/state_dir.py)
        print(f"slaproc worker: {err}", file=sys.stderr)
        return 2
    worker = Worker(app, loglevel=settings.log_level, quiet=True)
    if not worker.stdout.isatty():
        # Faust's progress spinner (on at log level warning and above) writes cursor codes and a
        # spinner frame per log record to stdout even when it is a file or a pipe: junk in a log.
        worker.spinner = None
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
