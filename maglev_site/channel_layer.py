"""The Channels layer's settings, in one place for settings.py and the tests that use them."""

from __future__ import annotations

from typing import Any


def redis_channel_layer(url: str) -> dict[str, Any]:
    """CHANNEL_LAYERS["default"] for Redis at `url`.

    channels_redis blocks 5 s in each receive (BZPOPMIN), so the socket must wait longer than
    that, or every other receive times out and the bridge misses what arrives meanwhile.
    """
    return {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": url, "socket_timeout": 15, "socket_keepalive": True}],
            "capacity": 1000,
            "expiry": 10,
        },
    }
