"""Telling a hung judge endpoint from a slow one (harness/backends/openai_compat.py uses it).

After a request times out with nothing heard from the server since it was sent, the server's model
list (``/models``, answered at once by vLLM and hosted APIs even under load) is asked: any HTTP reply
means alive; two timeouts mean hung; a connection refused or never accepted means down (restarting),
which the caller retries as before.
"""

from __future__ import annotations

import asyncio
import time

PROBE_S, PROBES = 30.0, 2  # after a timeout: the model list asked this many times, waiting this long
CONNECT_S = 30.0  # the longest wait for a connection to be accepted


class Hung(Exception):
    """The endpoint accepts connections and answers nothing, neither requests nor its model list."""


class Liveness:
    """What one batch of requests has heard from its server, and the probe that tells hung from slow."""

    def __init__(self, session, base_url: str, timeout_s: float):
        self.session, self.url = session, f"{base_url}/models"
        self.timeout_s, self.probe_s = timeout_s, min(PROBE_S, timeout_s)
        self.lock = asyncio.Lock()
        self.heard = time.monotonic()  # the last HTTP reply of any kind
        self.hung: str | None = None

    def heard_now(self) -> None:
        self.heard = time.monotonic()

    async def check(self, sent: float) -> None:
        """After a request sent at ``sent`` timed out: raise :class:`Hung` when the server has answered
        nothing since and leaves its model list unanswered too; return when it is alive or down."""
        import aiohttp

        async with self.lock:  # one probe at a time; the requests timing out with it wait for its verdict
            if self.hung is None and self.heard <= sent:
                for _ in range(PROBES):
                    try:
                        wait = aiohttp.ClientTimeout(total=self.probe_s, sock_connect=self.probe_s / 2)
                        async with self.session.get(self.url, timeout=wait) as r:
                            await r.read()
                        self.heard_now()  # any status: the server is alive, only slow
                        return
                    except aiohttp.ConnectionTimeoutError:
                        return  # not even connected: down (a host rebooting), retried as before
                    except asyncio.TimeoutError:
                        continue
                    except aiohttp.ClientError:
                        return  # refused or dropped: down or restarting, retried with backoff as before
                self.hung = (
                    f"accepts connections but answered nothing: a request in {self.timeout_s:g} s, then "
                    f"{PROBES} asks for its model list ({self.url}) in {self.probe_s:g} s each"
                )
            if self.hung is not None:
                raise Hung(self.hung)
