"""The Celery broker URL, checked at start: its kind, host, port and Redis database, as Celery
and redis-py read them."""

from __future__ import annotations

import pytest

from oxidicom.notify.broker_url import parse_broker_url


@pytest.mark.parametrize(
    ("url", "kind", "host", "port", "database"),
    [
        ("redis://dragonflydb:6379/0", "redis", "dragonflydb", 6379, 0),
        ("redis://dragonflydb", "redis", "dragonflydb", 6379, 0),
        ("redis://:s3cret@redis.chris.svc:6380/5", "redis", "redis.chris.svc", 6380, 5),
        ("redis://celery:s3cret@10.0.0.7/15", "redis", "10.0.0.7", 6379, 15),
        ("redis://h:1/?db=3", "redis", "h", 1, 3),
        ("rediss://h:6380/2?ssl_cert_reqs=required", "redis", "h", 6380, 2),
        ("REDIS://H/1", "redis", "h", 6379, 1),
        ("redis://[::1]:6379/0", "redis", "::1", 6379, 0),
        ("amqp://guest:guest@rabbitmq:5672/", "amqp", "rabbitmq", 5672, 0),
        ("amqp://rabbitmq", "amqp", "rabbitmq", 5672, 0),
        ("amqps://u:p@rabbitmq/vhost", "amqp", "rabbitmq", 5671, 0),
    ],
)
def test_the_broker_kinds_celery_reads(
    url: str, kind: str, host: str, port: int, database: int
) -> None:
    broker = parse_broker_url(url)
    assert (broker.kind, broker.host, broker.port, broker.database) == (
        kind,
        host,
        port,
        database,
    )
    assert broker.url == url
    assert broker.name == ("Redis" if kind == "redis" else "AMQP")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("kafka://k:9092", "'kafka://' is not a broker this receiver speaks"),
        ("sqs://", "'sqs://' is not a broker"),
        ("dragonflydb:6379", "no scheme (write it as redis://dragonflydb:6379 or amqp://"),
        ("//host/0", "no scheme"),
        ("redis://", "no host"),
        ("redis:///0", "no host"),
        ("redis://h:port/0", "not a URL"),
        ("redis://h:99999/0", "not a URL"),
        ("redis://h/zero", "the database 'zero' is not a number"),
        ("redis://h/-1", "the database '-1' is not a number"),
        ("redis://h/0/1", "the database '0/1' is not a number"),
        ("amqp://", "no host"),
    ],
)
def test_anything_else_is_refused_with_the_reason(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as error:
        parse_broker_url(url)
    assert says in str(error.value)
