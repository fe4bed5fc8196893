"""Any OpenAI-compatible chat endpoint (a local `vllm serve`, a hosted API) as a judge backend.

It returns text, not label log-probabilities: judges parse the verdict from the reply and count the
replies they cannot parse. Rate limits (429), server errors (5xx), timeouts and dropped connections
are retried with exponential backoff and jitter; after ``max_tries`` the call fails with the last
error named. The API key is read from the environment variable named in the config, never from the
config itself.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

from tqdm.auto import tqdm

log = logging.getLogger(__name__)


class JudgeEndpointError(RuntimeError):
    pass


class OpenAIBackend:
    supports_label_logprobs = False

    def __init__(
        self,
        model: dict,
        max_tries: int = 6,
        retry_base_s: float = 2.0,
        timeout_s: float = 120.0,
        concurrency: int = 8,
    ):
        try:
            import openai
        except ImportError as e:
            raise ImportError("the openai backend needs the openai package: pip install openai") from e
        env = model.get("api_key_env") or "OPENAI_API_KEY"
        key = os.environ.get(env)
        if not key:
            raise ValueError(
                f"judge endpoint {model['source']}: environment variable {env} (the API key) is not set"
            )
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=model.get("base_url"), api_key=key, max_retries=0, timeout=timeout_s
        )
        self.model_name = model["source"]
        self.max_tries, self.retry_base_s, self.concurrency = max_tries, retry_base_s, concurrency
        self.retries = 0

    def chat_prompt(self, messages: list[dict]) -> str:
        """The conversation itself, serialised: the endpoint applies its own chat template."""
        return json.dumps(messages, ensure_ascii=False, sort_keys=True)

    def _one(self, prompt: str, max_tokens: int) -> str:
        retryable = (
            self._openai.RateLimitError,
            self._openai.InternalServerError,
            self._openai.APITimeoutError,
            self._openai.APIConnectionError,
        )
        for attempt in range(1, self.max_tries + 1):
            try:
                reply = self.client.chat.completions.create(
                    model=self.model_name, messages=json.loads(prompt), temperature=0.0, max_tokens=max_tokens
                )
                return reply.choices[0].message.content or ""
            except retryable as e:
                if attempt == self.max_tries:
                    raise JudgeEndpointError(
                        f"judge endpoint {self.model_name}: gave up after {attempt} tries; last error: "
                        f"{type(e).__name__}: {e}"
                    ) from e
                self.retries += 1
                wait = self.retry_base_s * 2 ** (attempt - 1) * (0.5 + random.random())
                log.warning(
                    "%s (try %d of %d); retrying in %.1f s", type(e).__name__, attempt, self.max_tries, wait
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def complete(self, prompts: list[str], max_tokens: int = 16, desc: str = "judge") -> list[str]:
        """One reply per prompt, ``concurrency`` requests in flight."""
        with ThreadPoolExecutor(self.concurrency) as pool:
            futures = [pool.submit(self._one, p, max_tokens) for p in prompts]
            return [f.result() for f in tqdm(futures, desc=desc, unit="call")]
