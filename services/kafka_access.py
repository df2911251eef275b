"""Reaching Kafka: the errors our tools report, and a quick check of the credentials.

kafka-python (3.0.x) retries a refused SASL login until its bootstrap timeout and
then reports only "Unable to bootstrap" (it even drops the broker's error answer
when the broker closes the connection right after it). So before a kafka-python
client is made with SASL configured, :func:`check_credentials` opens one connection
with aiokafka, which reports the broker's answer, and turns a refusal into
:class:`KafkaAuthenticationFailed` naming the settings to fix, in well under a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
from typing import Any

from opsmetrics.settings import Settings


class KafkaUnavailable(Exception):
    """The broker could not be reached within the configured time."""


class KafkaAuthenticationFailed(KafkaUnavailable):
    """The broker refused our SASL credentials (or the mechanism)."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL / SASL_SSL (CA from OPS_KAFKA_SSL_CAFILE), else None."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    from aiokafka.helpers import create_ssl_context

    cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    context: ssl.SSLContext = create_ssl_context(cafile=cafile)
    return context


def _refusal(settings: Settings, error: Exception) -> KafkaAuthenticationFailed:
    mechanism = settings.kafka_sasl_mechanism
    return KafkaAuthenticationFailed(
        f"Kafka at {settings.kafka_bootstrap} refused the SASL {mechanism} login of user "
        f"{settings.kafka_sasl_username!r}: authentication failed ({error}). Fix "
        "OPS_KAFKA_SASL_USERNAME / OPS_KAFKA_SASL_PASSWORD (or OPS_KAFKA_SASL_MECHANISM)"
    )


async def _login(settings: Settings, host: str, port: int) -> bool:
    """True if the server accepted the login, False if it could not be reached."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )

    password = settings.kafka_sasl_password
    try:
        conn = await create_conn(
            host,
            port,
            security_protocol=settings.kafka_security_protocol,
            ssl_context=ssl_context(settings),
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
            request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
        )
    except (SaslAuthenticationFailed, UnsupportedSaslMechanismError) as exc:
        raise _refusal(settings, exc) from None
    except Exception:  # noqa: BLE001 - unreachable: the client reports it with its own timeout
        return False
    conn.close()
    return True


def _run(coro: Any) -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return bool(asyncio.run(coro))
    # Called from inside an event loop: log in from a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return bool(pool.submit(asyncio.run, coro).result())


def check_credentials(settings: Settings) -> None:
    """Raise :class:`KafkaAuthenticationFailed` if a bootstrap server refuses our SASL login.

    Does nothing without a SASL mechanism, and nothing when no server answers (the
    client that follows reports that, after its own timeout).
    """
    if not settings.kafka_sasl_mechanism:
        return
    for server in settings.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        if host and port.isdigit() and _run(_login(settings, host.strip("[]"), int(port))):
            return
