"""Any OpenAI-compatible chat endpoint (a local `vllm serve`, a hosted API) as a judge backend.

It returns text, and judges parse the verdict from the reply and count the replies they cannot parse;
with ``verdict: logprobs`` (pairwise judges) it returns the two labels' log-probabilities from the
reply's first token instead. Requests go out ``concurrency`` at a time from one asyncio loop (aiohttp),
so a vLLM server batching 64 requests is kept busy. Each reply is handed to ``on_reply`` as it
arrives (judges cache it then), and a request that fails fails only itself:
- rate limits (429), server errors (5xx), timeouts, refused or dropped connections and replies the
  server cut off (vLLM's ``finish_reason`` "abort" or "error", as when it shuts down) are retried
  with exponential backoff (2 s doubling to at most 30 s, plus up to 25% jitter, never less), so the
  default 20 retries wait at least 8.5 minutes: longer than a judge server's restart, which for a
  70B judge is minutes of loading weights (the tiny test server's restart alone took 100 s on a
  loaded 2-core CI machine, and 12 retries, 270 s, fell short of a 3-minute outage plus it);
- any other 4xx (a prompt over the server's context, an unknown model name, a bad key) is not
  retried: the prompt's result is a :class:`Failure` carrying the status and the server's message.
- a 200 whose body is cut off, is not a JSON object or lacks what was asked (``choices``) is asked
  once more, then fails its own prompt like a refused one.
A hung endpoint (one that accepts connections and answers nothing) is told from a slow one: after a
request times out with nothing heard from the server since it was sent, the server's model list
(``/models``, answered at once by vLLM and hosted APIs even under load) is asked twice; two of those
unanswered too stop the step with one line naming the server, about 3 minutes in with the defaults
(120 s + 2 x 30 s), instead of ~49 minutes of retries. Any HTTP reply, even an error, counts as alive,
and a refused connection (a server restarting: vLLM listens only once loaded) is retried as before.
The API key is read from the environment variable named in the config, never from the config itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import random
import re
import time
from dataclasses import dataclass

from tqdm.auto import tqdm

from harness.backends.liveness import CONNECT_S, Hung, Liveness
from harness.core.errors import EndpointError

log = logging.getLogger(__name__)
RETRY_BASE_S, RETRY_CAP_S = 2.0, 30.0
ABORTED = ("abort", "error")  # vLLM's finish reasons for a request it dropped or failed


class _Malformed(ValueError):
    """A reply that parses as JSON but lacks what the request asked for."""


@dataclass(frozen=True)
class Failure:
    """A prompt the endpoint refused (4xx other than 429), or one that outlasted every retry."""

    status: int | None  # HTTP status; None when no reply came (connection, timeout)
    message: str

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


def backoff_s(attempt: int, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> float:
    """The wait before retry ``attempt`` + 1, without jitter: ``base_s`` doubling, at most ``cap_s``."""
    return min(cap_s, base_s * 2**attempt)


def retry_window_s(retries: int, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> float:
    """The shortest total wait of ``retries`` retries (jitter only lengthens it)."""
    return sum(backoff_s(k, base_s, cap_s) for k in range(retries))


def _server_message(status: int, body: str) -> str:
    """The ``message`` of an OpenAI-style error body (vLLM's too), else the body's first line."""
    try:
        data = json.loads(body)
        err = data.get("error", data)
        msg = err.get("message") if isinstance(err, dict) else err
        if msg:
            return str(msg)
    except (ValueError, AttributeError):
        pass
    return (body.strip().splitlines() or [f"status {status}"])[0][:300]


class OpenAIBackend:
    SETTINGS = ("concurrency", "timeout_s", "retries", "verdict")  # judge settings handed to the constructor
    label_in_prompt = False  # a label is the reply's first token, not scored after the prompt
    TOP_LOGPROBS = 20  # the most OpenAI's API returns per token

    def __init__(
        self,
        model: dict,
        concurrency: int = 64,
        timeout_s: float = 120.0,
        retries: int = 20,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
        verdict: str = "text",
    ):
        # verdicts from the reply's first-token log-probs (option_logprobs), else from its text (complete)
        self.supports_label_logprobs = verdict == "logprobs"
        env = model.get("api_key_env") or "OPENAI_API_KEY"
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", env):  # a hand-made job config: never show it
            raise ValueError(
                f"judge endpoint {model['source']}: api_key_env is not an environment variable name"
            )
        self.key = os.environ.get(env)
        if not self.key:
            raise ValueError(
                f"judge endpoint {model['source']}: environment variable {env} (the API key) is not set"
            )
        self.base_url = (model.get("base_url") or "https://api.openai.com/v1").rstrip("/")
        _warn_plain_http(self.base_url)
        self.model_name = model["source"]
        self.concurrency, self.timeout_s, self.max_retries = concurrency, timeout_s, retries
        self.retry_base_s, self.retry_cap_s = retry_base_s, retry_cap_s
        self.retries = 0  # retried requests, all prompts together
        self._warned = False
        self.byte_bound = False  # True once the endpoint proved to have no /tokenize

    def chat_prompt(self, messages: list[dict]) -> str:
        """The conversation itself, serialised: the endpoint applies its own chat template."""
        return json.dumps(messages, ensure_ascii=False, sort_keys=True)

    def complete(self, prompts: list[str], max_tokens: int = 16, desc: str = "judge", on_reply=None) -> list:
        """One reply per prompt: its text, or a :class:`Failure`. ``on_reply(i, text)`` runs as each
        good reply arrives, in this thread."""
        bodies = [
            {
                "model": self.model_name,
                "messages": json.loads(p),
                "temperature": 0.0,
                "max_tokens": max_tokens,
            }
            for p in prompts
        ]

        def text(i, data):
            reply = data["choices"][0]["message"].get("content") or ""
            return reply

        return self._run(f"{self.base_url}/chat/completions", bodies, text, desc, on_reply)

    def option_logprobs(
        self, prompts, options, batch_size=0, max_prompt_tokens=0, desc="judge", on_reply=None
    ):
        """Per prompt, the log-probability of each option as the reply's first token (labels compared
        without surrounding spaces), from the endpoint's ``top_logprobs``; or a :class:`Failure`.

        An option missing from the top 20 gets the lowest log-prob listed (an upper bound); a reply
        with neither option listed gets ``[]`` (no verdict: the judge counts it as unparsable).
        Returns (per prompt ``[logp, ...]``, ``[]`` or a Failure; 0 prompts truncated: the judge fits
        the answers beforehand).
        """
        wanted = [o.strip() for o in options]
        bodies = [
            {
                "model": self.model_name,
                "messages": json.loads(p),
                "temperature": 0.0,
                "max_tokens": 1,
                "logprobs": True,
                "top_logprobs": self.TOP_LOGPROBS,
            }  # fmt: skip
            for p in prompts
        ]

        def parse(i, data):
            try:
                content = ((data["choices"][0].get("logprobs") or {}).get("content")) or []
                tops = [
                    (t["token"].strip(), float(t["logprob"])) for t in content[0].get("top_logprobs") or []
                ]
            except (KeyError, IndexError, TypeError, AttributeError, ValueError):
                raise _Malformed(
                    f"{self.base_url}: a reply without choices[0].logprobs.content[0].top_logprobs (token, "
                    "logprob): serve a model whose endpoint returns log-probs, or use verdict: text"
                ) from None
            top = {}
            for token, logprob in tops:
                top[token] = max(logprob, top.get(token, -math.inf))
            found = [top.get(w) for w in wanted]
            value = [] if all(v is None for v in found) else [
                v if v is not None else min(top.values()) for v in found]  # fmt: skip
            return value

        return self._run(f"{self.base_url}/chat/completions", bodies, parse, desc, on_reply), 0

    def count_tokens(self, prompts: list[str]) -> list[int]:
        """Prompt tokens as the endpoint counts them (vLLM's ``/tokenize``, which applies the chat
        template). An endpoint without it gets an upper bound instead: UTF-8 bytes plus 8 per message
        (no tokenizer's token is shorter than a byte), logged once."""
        if not self.byte_bound:
            root = self.base_url.removesuffix("/v1")
            bodies = [{"model": self.model_name, "messages": json.loads(p)} for p in prompts]
            got = self._run(f"{root}/tokenize", bodies, lambda i, data: int(data["count"]), "count tokens")
            if not any(isinstance(g, Failure) and g.status in (404, 405) for g in got):
                bad = next((g for g in got if isinstance(g, Failure)), None)
                if bad is not None:
                    raise EndpointError(f"judge endpoint {root}/tokenize: {bad}")
                return got
            log.warning("%s has no /tokenize: judge prompt lengths are bounded by their UTF-8 bytes", root)
            self.byte_bound = True
        return [len(p.encode()) + 8 * len(json.loads(p)) for p in prompts]

    def _run(self, url: str, bodies: list[dict], parse, desc: str, on_reply=None) -> list:
        """Each body posted to ``url``; per body ``parse(i, reply JSON)`` or a :class:`Failure`;
        ``on_reply(i, parsed)`` as each good one arrives (outside the parse: its own errors are not
        the reply's)."""
        return asyncio.run(self._all(url, bodies, parse, desc, on_reply))

    async def _all(self, url, bodies, parse, desc, on_reply):
        import aiohttp

        headers = {"Authorization": f"Bearer {self.key}"}
        # a connection not even accepted in 30 s (a host dropping packets, rebooting) is down, not hung
        timeout = aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=min(CONNECT_S, self.timeout_s))
        gate = asyncio.Semaphore(self.concurrency)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        with tqdm(total=len(bodies), desc=desc, unit="call", disable=len(bodies) < 2) as bar:
            async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as s:
                live = Liveness(s, self.base_url, self.timeout_s)
                replied = [0]

                async def one(i, body):
                    async with gate:
                        for _ in range(2):  # a malformed reply (cut, not JSON, no choices): asked once more
                            out = await self._post(s, url, body, live)
                            if isinstance(out, Failure):
                                break  # refused, or every retry spent
                            if isinstance(out, _Bad):
                                out = Failure(200, out.why)
                                continue
                            try:
                                out = parse(i, out)
                                break
                            except _Malformed as e:  # the server cannot give it (no log-probs): not again
                                out = Failure(None, str(e))
                                break
                            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
                                out = Failure(
                                    200, f"a reply without what was asked ({type(e).__name__}: {e})"
                                )
                    bar.update()
                    if not isinstance(out, Failure):
                        replied[0] += 1
                        if on_reply is not None:
                            on_reply(i, out)
                    return out  # a Failure fails only its prompt, counted by the judge

                tasks = [asyncio.ensure_future(one(i, b)) for i, b in enumerate(bodies)]
                try:
                    return await asyncio.gather(*tasks)
                except Hung as e:  # every request still out would wait its own timeout: stopped now
                    for t in tasks:
                        t.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    raise EndpointError(
                        f"judge endpoint {self.base_url}: {e}: it is hung; restart it and rerun (the "
                        f"{replied[0]} of {len(bodies)} replies that arrived are kept where the step caches "
                        "them), or raise timeout_s for a server this slow"
                    ) from None

    async def _post(self, session, url: str, body: dict, live: Liveness):
        """The reply's JSON; a :class:`_Bad` for a 200 whose body is cut or not a JSON object (the
        caller asks once more); a Failure once it is refused or every retry is spent; raises
        :class:`Hung` when the server has stopped answering anything."""
        import aiohttp

        for attempt in range(self.max_retries + 1):
            sent = time.monotonic()
            try:
                async with session.post(url, json=body) as r:
                    live.heard_now()
                    raw = (await r.read()).decode("utf-8", "replace")  # a body cut inside a character
                    if r.status == 200:
                        data = _reply_json(raw)
                        if isinstance(data, _Bad):
                            return data
                        if (ended := _finish_reason(data)) not in ABORTED:
                            return data
                        else:
                            # vLLM answers a request it dropped (its engine shutting down) with whatever
                            # text it had: not a verdict, so asked again
                            last = Failure(
                                None, f"the server ended the request early (finish_reason {ended})"
                            )
                    else:
                        last = Failure(r.status, _server_message(r.status, raw))
                        if r.status != 429 and r.status < 500:
                            return last
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                last = Failure(None, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
                if isinstance(e, asyncio.TimeoutError) and not isinstance(e, aiohttp.ConnectionTimeoutError):
                    await live.check(sent)  # connected, then nothing: hung, or only slow?
            if attempt == self.max_retries:
                break
            self.retries += 1
            if not self._warned:
                window = retry_window_s(self.max_retries, self.retry_base_s, self.retry_cap_s)
                log.warning(
                    "%s: %s; retrying with backoff (up to %d tries over at least %.0f s)",
                    url, last, self.max_retries + 1, window,
                )  # fmt: skip
                self._warned = True
            wait = backoff_s(attempt, self.retry_base_s, self.retry_cap_s) * (1 + 0.25 * random.random())
            log.debug("%s (try %d of %d); retrying in %.1f s", last, attempt + 1, self.max_retries + 1, wait)
            await asyncio.sleep(wait)
        return Failure(None, f"gave up after {self.max_retries + 1} tries; last error: {last}")


@dataclass(frozen=True)
class _Bad:
    """A 200 whose body is cut off or not a JSON object."""

    why: str


def _reply_json(raw: str):
    """A 200 reply's JSON object, or a :class:`_Bad` where the body is cut or not one (the judge's
    stop line names the server)."""
    try:
        data = json.loads(raw)
    except ValueError as e:
        return _Bad(f"a reply that is not JSON ({getattr(e, 'msg', e)}, {len(raw)} characters)")
    if not isinstance(data, dict):
        return _Bad("a reply that is not a JSON object")
    return data


def _finish_reason(data: dict):
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else {}
    return first.get("finish_reason") if isinstance(first, dict) else None


_WARNED: set = set()


def _warn_plain_http(base_url: str) -> None:
    """Once per endpoint: the API key goes in clear to a host that is not this machine."""
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    if (
        url.scheme == "http"
        and url.hostname not in ("localhost", "127.0.0.1", "::1")
        and base_url not in _WARNED
    ):
        _WARNED.add(base_url)
        log.warning(
            "judge endpoint %s: plain http to another host: the API key travels unencrypted", base_url
        )
