"""`slaproc gateway` process: settings, topics, producer, HTTP server, clean stop on SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from streams.gateway.settings import GATEWAY_ENV_VARS, SECRETS, GatewaySettings, SettingsError

GATEWAY_DESCRIPTION = ("The webhook gateway (SPEC §13): turns Alertmanager / Grafana alerting, Zendesk and Jira "
                       "webhooks, and native events, into input events on the worker's topics, and keeps every "
                       "raw body on <prefix>sla.raw-webhooks. It answers 2xx only after the broker acknowledged "
                       "the events. Every setting is an environment variable or a flag; secrets only from the "
                       "environment or a file (VAR_FILE).")

GATEWAY_EPILOG = """\
endpoints:
  POST /v1/events        native events: one JSON object or JSON lines   Authorization: Bearer <EVENTS_TOKEN>
  POST /v1/alertmanager  Alertmanager webhook v4 / Grafana alerting     Authorization: Bearer <ALERTMANAGER_TOKEN>
  POST /v1/zendesk       Zendesk event webhooks (zen:event-type:ticket.*), X-Zendesk-Webhook-Signature
  POST /v1/jira          Jira webhooks; ?token=<JIRA_TOKEN>, Authorization: Bearer or X-Hub-Signature
  GET  /metrics, /health
  An endpoint whose secret (or mapping section) is not set answers 404 and says which.

answers:
  200 accepted (event ids listed)   400 not JSON   401 bad signature / token   404 not configured
  413 body over SLAPROC_GATEWAY_MAX_BODY_BYTES   422 unmappable (reason given; raw body kept)
  503 the broker did not acknowledge (retry; ids dedupe)

secrets (environment only, or VAR_FILE with the path of a file holding it):
  SLAPROC_GATEWAY_EVENTS_TOKEN, SLAPROC_GATEWAY_ALERTMANAGER_TOKEN,
  SLAPROC_GATEWAY_ZENDESK_SECRET (the webhook's signing secret), SLAPROC_GATEWAY_JIRA_TOKEN

example:
  SLAPROC_BROKER=kafka://localhost:9092 SLAPROC_GATEWAY_ALERTMANAGER_TOKEN_FILE=/run/secrets/am \\
      slaproc gateway --mapping samples/mapping.yaml --host 0.0.0.0
"""


def add_gateway_flags(parser: argparse.ArgumentParser) -> None:
    defaults = GatewaySettings()
    group = parser.add_argument_group("settings (flag, or environment variable; flags win)")
    for name, var in GATEWAY_ENV_VARS.items():
        if name in SECRETS:
            continue
        group.add_argument("--" + name.replace("_", "-"), dest=name, default=None, metavar=var,
                           help=f"env {var} (default {getattr(defaults, name)})")
    from streams.worker import add_kafka_flags

    add_kafka_flags(parser)  # --kafka-*: the worker's, as every Kafka client of the project


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> GatewaySettings:
    from streams.worker import kafka_env

    env = kafka_env(args, environ)  # the --kafka-* flags given, written over their variables
    for name, var in GATEWAY_ENV_VARS.items():
        value = getattr(args, name, None)
        if value is not None:
            env[var] = str(value)
    return GatewaySettings.from_env(env)


async def serve(settings: GatewaySettings, mapping, stop: asyncio.Event) -> None:
    from aiohttp import web

    from streams import kafka_config
    from streams.kafka_admin import create_topics
    from streams.gateway.mapping import CONTRACTS, MONITORING_EVENTS, RAW_WEBHOOKS, TICKET_EVENTS
    from streams.gateway.server import Gateway, KafkaSink, build_app

    # One connection the way every client will (TLS, SASL): a misconfiguration is one line now.
    info = await kafka_config.preflight(settings.broker, settings.kafka)
    # The effective security settings, secrets masked (after the check: a failed start stays one line).
    print(f"slaproc gateway: {settings.kafka.start_line(settings.broker)}", file=sys.stderr, flush=True)
    if settings.create_topics:
        factor, warning = kafka_config.effective_replication_factor(settings.replication_factor, info.brokers)
        if warning:
            logging.getLogger("slaproc.gateway").warning(warning)
        # The same topics, partition counts and configs the worker declares (streams/app.py).
        kw = dict(replication_factor=factor, kafka=settings.kafka)
        await create_topics(settings.broker, [settings.topic(CONTRACTS)], settings.partitions,
                            {"cleanup.policy": "compact"}, **kw)
        await create_topics(settings.broker, [settings.topic(t) for t in (TICKET_EVENTS, MONITORING_EVENTS,
                                                                          RAW_WEBHOOKS)], settings.partitions, **kw)
    sink = KafkaSink(kafka_config.producer_kwargs(settings.broker, settings.kafka),
                     max_request_size=settings.max_body_bytes + 64 * 1024)
    await sink.start()
    gateway = Gateway(settings, mapping, sink, ready=lambda: sink.started)
    runner = web.AppRunner(build_app(gateway), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    for source in ("events", "alertmanager", "zendesk", "jira"):
        reason = gateway._disabled_reason(source)
        logging.getLogger("slaproc.gateway").info("/v1/%s: %s", source, reason or "enabled")
    print(f"slaproc gateway: listening on http://{settings.host}:{settings.port}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await sink.stop()


def run_gateway(args: argparse.Namespace) -> int:
    from streams.gateway.config import MappingConfigError, load_mapping

    try:
        settings = settings_from(args)
    except SettingsError as err:
        print(f"slaproc gateway: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    mapping = None
    if settings.mapping is not None:
        try:
            mapping = load_mapping(settings.mapping)
        except (MappingConfigError, OSError) as err:
            print(f"slaproc gateway: {err}", file=sys.stderr)
            return 2

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, mapping, stop)

    from streams.kafka_config import KafkaConfigError

    try:
        asyncio.run(main())
    except KafkaConfigError as err:  # one line per problem, naming the setting (TLS, SASL, unreachable)
        for line in str(err).splitlines():
            print(f"slaproc gateway: {line}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the port is taken
        print(f"slaproc gateway: {err}", file=sys.stderr)
        return 1
    return 0
