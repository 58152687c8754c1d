"""Building the Redis client of the bus: standalone or Cluster, always with the hiredis parser.

redis-py picks its hiredis-backed reply parser whenever the `hiredis` package is importable; it is a
dependency of polysnipe, and `redis_client` refuses to build a client without it rather than run the
bus several times slower unnoticed. Nothing here opens a socket: the first command connects
(`ping` checks the server at start, so a runner can fail with one clear line).
"""

from __future__ import annotations

import redis.asyncio as aioredis
import redis.exceptions
from redis.utils import HIREDIS_AVAILABLE

from polysnipe.adapters.redis.errors import BusUnavailable
from polysnipe.adapters.redis.streams import RedisClient

__all__ = ["ping", "redis_client"]


def redis_client(url: str, *, cluster: bool = False, timeout_s: float = 10.0) -> RedisClient:
    """A client for `url` (redis://, rediss://, unix://); `cluster` for a Redis Cluster seed node.

    Replies stay bytes (`raw` is the venue's bytes; decoding them is the parser's job). The socket
    timeout must outlast the longest XREADGROUP BLOCK, so reads are never cut short by it.
    """
    if not HIREDIS_AVAILABLE:
        raise RuntimeError("the hiredis package is missing: pip install hiredis (a polysnipe dependency)")
    if cluster:
        return aioredis.RedisCluster.from_url(
            url, decode_responses=False, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
    return aioredis.Redis.from_url(
        url, decode_responses=False, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


async def ping(client: RedisClient, where: str) -> None:
    """Raise BusUnavailable (naming `where`, never a password) unless Redis answers."""
    try:
        await client.ping()
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BusUnavailable(f"cannot reach Redis at {where} ({reason})") from None
