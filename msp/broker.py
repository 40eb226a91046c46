"""kombu's Redis transport, with one Redis client per channel instead of one per command.

kombu's Redis channel builds a new ``redis.Redis`` for every command it sends outside its consumer loop: every
task a request publishes (``task.delay()`` after a commit) constructs a client, with its table of response
callbacks, before its single ``LPUSH``. That construction cost more than the ``LPUSH`` itself: about a quarter of a
questionnaire submission's CPU went to publishing its event. A ``redis.Redis`` holds no connection of its own (it
takes one from the channel's pool for each command and gives it back), so one per channel serves every command.

The client is built again whenever the channel's pool is replaced (kombu drops its pools after a fork and when a
connection is closed), so it never holds on to a pool the channel has let go. The consumer's own clients
(``asynchronous=True``) are kombu's, unchanged.

Celery uses this transport for ``redis://`` and ``rediss://`` brokers (``CELERY_BROKER_TRANSPORT`` in settings).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:
            return super()._create_client(asynchronous=True)  # type: ignore[misc]
        pool = self.pool
        client = self._shared_client
        if client is None or client.connection_pool is not pool:
            client = self._shared_client = super()._create_client()  # type: ignore[misc]
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel
