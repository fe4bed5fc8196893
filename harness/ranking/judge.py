"""LLM judges: pairwise preference and single-answer rating, on any backend.

Verdicts are read from the log-probabilities of the answer labels where the backend gives them, so
that a tiny model works as a judge and a large one needs no free-text parsing. Text verdicts from API
judges go through ``parse_rating`` / ``parse_choice``, which return None for an unparsable reply;
callers count those, never drop them silently.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from harness.backends import spec
from harness.ranking.verdicts import load_template, parse_choice, parse_rating

log = logging.getLogger(__name__)

PAIR_LABELS = (" A", " B")
RATING_LABELS = tuple(f" [[{n}]]" for n in range(1, 11))


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _cut(answers: tuple[str, ...], share: float, prompt_chars: int) -> tuple[str, ...]:
    """``answers`` shortened from their ends by ``share`` of the prompt's characters, in proportion
    to their lengths."""
    total = sum(len(a) for a in answers)
    drop = min(total, int(share * prompt_chars) + 1)
    return tuple(a[: max(0, len(a) - -(-drop * len(a) // max(total, 1)))] for a in answers)


def softmax_first(logps: np.ndarray) -> np.ndarray:
    """P(first option) from two option log-probs per row, renormalised over the two options."""
    return 1.0 / (1.0 + np.exp(logps[:, 1] - logps[:, 0]))


def judge_identity(jcfg: dict) -> dict:
    """What a cached verdict depends on besides the prompt, template and labels: the backend, the
    endpoint (``base_url``), the model id and revision and, for a model in a local directory, a hash
    of its weight, config and tokenizer files (a model rebuilt at the same path is another judge)."""
    model = jcfg["model"]
    if isinstance(model, dict):
        source = model["source"]
        model = {"source": source, "revision": model.get("revision"), "base_url": model.get("base_url")}
        if not spec(jcfg["backend"]).endpoint and Path(source).is_dir():
            model["files_sha256"] = local_model_digest(source)
    return {"backend": jcfg["backend"], "model": model}


@functools.cache
def local_model_digest(directory: str) -> str:
    """A digest of the name and sha256 of every file of a local model directory (weights, config,
    tokenizer), in name order; hidden files and sub-directories (checkpoints, caches) are left out."""
    from harness.core.cache import digest
    from harness.core.io import file_sha256

    files = sorted(f for f in Path(directory).iterdir() if f.is_file() and not f.name.startswith("."))
    return digest([[f.name, file_sha256(f)] for f in files])


class Judge:
    """Shared plumbing: template, batching, call counting and the optional call cache.

    Args:
        template: a template file of harness/templates, or None where the caller renders the prompts
            (MT-Bench's FastChat templates; their content hash is then part of ``identity``).
        identity: what makes a verdict reproducible (model source and revision, backend); with
            ``cache_path`` it keys a :class:`harness.core.cache.JudgeCache`, so repeated prompts cost nothing.
    """

    LABELS: tuple[str, ...] = ()
    REPLY_TOKENS = 16  # enough for a verdict from a text-only backend

    def __init__(
        self,
        backend,
        template: str | None,
        batch_size: int = 8,
        max_prompt_tokens: int = 4096,
        cache_path: str | None = None,
        identity: dict | None = None,
        max_failures: int = 0,
        reask_unparsable: bool = False,
        reply_tokens: int | None = None,
    ):
        self.backend = backend
        if reply_tokens is not None:  # the judge's `reply_tokens`; else the class's own
            self.REPLY_TOKENS = reply_tokens
        self.template_name = template
        self.template = load_template(template) if template else None
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.calls = 0  # judge prompts sent to the backend (cache misses)
        self.unparsable = 0  # text replies that named no verdict (after any retry)
        self.retried = 0  # text replies asked again because they named no verdict
        self.truncated = 0  # judge prompts shortened to fit max_prompt_tokens
        self.max_failures = max_failures
        self.failed = 0  # prompts the endpoint refused or never answered (not cached: a rerun asks again)
        self.first_failure: str | None = None
        self.reask_unparsable = reask_unparsable
        self.reasked = 0  # cached unparsable replies asked again (reask_unparsable)
        self.cache_wrong = 0  # cached values of the wrong kind, asked again
        self.cache = None
        if cache_path is not None:
            from harness.core.cache import JudgeCache, digest

            ident = dict(
                identity or {},
                template=template,
                template_sha256=digest(self.template) if self.template else None,
                labels=list(self.LABELS),
                max_prompt_tokens=max_prompt_tokens,
                # the decoding of a text verdict (greedy, this many tokens)
                decoding={"temperature": 0.0, "max_tokens": self.REPLY_TOKENS},
            )
            if getattr(backend, "supports_label_logprobs", False) and not getattr(
                backend, "label_in_prompt", True
            ):
                ident.update(
                    decoding={"temperature": 0.0, "max_tokens": 1, "top_logprobs": backend.TOP_LOGPROBS}
                )
            self.cache = JudgeCache(cache_path, ident)

    @classmethod
    def from_config(cls, jcfg: dict, cache_path: str | None = None, **identity):
        """A judge from a resolved judge config ``{backend, model, template, batch_size, max_prompt_tokens}``;
        ``identity`` adds what else its verdicts depend on. ``backend: oracle`` gives the demo world's
        oracle or a simulated judge (:mod:`harness.demo.oracle`), which judges pairs only."""
        from harness.backends import get_backend

        if spec(jcfg["backend"]).ground_truth:
            if cls is not PairwiseJudge:
                raise ValueError("the oracle judge compares answers in pairs; it gives no 1-10 ratings")
            from harness.demo.oracle import OracleJudge

            return OracleJudge.from_config(jcfg)
        if jcfg.get("verdict", "text") == "logprobs" and cls is not PairwiseJudge:
            raise ValueError("judge verdict: logprobs reads one label token: for pairwise judges only")
        backend_cls = get_backend(jcfg["backend"])
        settings = {k: jcfg[k] for k in getattr(backend_cls, "SETTINGS", ()) if k in jcfg}
        return cls(
            backend_cls(jcfg["model"], **settings),
            jcfg.get("template"),
            jcfg["batch_size"],
            jcfg["max_prompt_tokens"],
            cache_path=cache_path,
            identity={**judge_identity(jcfg), **identity},
            max_failures=jcfg.get("max_failures", 0),
            reask_unparsable=jcfg.get("reask_unparsable", False),
            reply_tokens=jcfg.get("reply_tokens"),
        )

    def fit(self, renders: list, answers: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
        """Answers cut so that each prompt fits ``max_prompt_tokens`` (with a label-scoring backend, the
        longest label included); the template, the question and the verdict instruction are never cut.
        Every backend that loads or serves a model counts tokens; the demo's oracle reads no prompt.

        Args:
            renders: per prompt, a function of its answers giving the prompt string the backend is sent.
            answers: per prompt, the answer texts its render takes (cut evenly, from their ends).
        Returns:
            the answers to render, per prompt; each prompt shortened is counted in ``truncated``.
        """
        out = list(answers)
        if not hasattr(self.backend, "count_tokens"):
            return out
        limit = self.max_prompt_tokens
        if self._local_labels():  # the label is scored after the prompt, inside the model's context
            limit -= max(self.backend.count_tokens(list(self.LABELS)))
        # no token is shorter than a byte, so only prompts longer in bytes can be over the limit
        todo = [i for i, a in enumerate(out) if len(renders[i](*a).encode()) + 64 > limit]
        for _ in range(4):  # each pass cuts by the excess measured, plus a margin
            if not todo:
                break
            prompts = [renders[i](*out[i]) for i in todo]
            over = [
                (i, p, n) for i, p, n in zip(todo, prompts, self._counts(prompts), strict=True) if n > limit
            ]
            for i, prompt, n in over:
                out[i] = _cut(
                    out[i], share=(n - limit) / n * 1.1 + 16 / len(prompt), prompt_chars=len(prompt)
                )
            todo = [i for i, _, _ in over]
        if todo:
            raise ValueError(
                f"{len(todo)} judge prompts exceed max_prompt_tokens={limit} even with their answers cut: "
                "the template and question alone are too long; raise max_prompt_tokens"
            )
        self.truncated += sum(a != b for a, b in zip(out, answers, strict=True))
        return out

    def _local_labels(self) -> bool:
        """Labels scored as a continuation of the prompt (transformers, vLLM), not read from a reply."""
        return getattr(self.backend, "supports_label_logprobs", True) and getattr(
            self.backend, "label_in_prompt", True
        )

    def _counts(self, prompts: list[str]) -> list[int]:
        """Token counts from the backend; an endpoint's are cached beside the verdicts (a rerun asks
        nothing), a local tokenizer's are counted again (cheap, and no cache hit to count)."""
        if getattr(self.backend, "label_in_prompt", True):
            return self.backend.count_tokens(prompts)
        keys = [f"{p}\x00token count" for p in prompts]
        found = self._checked(self.cache.lookup(keys) if self.cache else [None] * len(prompts), _is_count)
        todo = [i for i, v in enumerate(found) if v is None]
        if todo:
            fresh = self.backend.count_tokens([prompts[i] for i in todo])
            if self.cache:
                self.cache.store([keys[i] for i in todo], fresh)
            for i, v in zip(todo, fresh, strict=True):
                found[i] = v
        return found

    def _verdict_like(self, v) -> bool:
        """A cached verdict: a reply text, one log-prob per label, or none (an endpoint's reply naming
        no label)."""
        return isinstance(v, str) or (
            isinstance(v, list) and len(v) in (0, len(self.LABELS)) and all(map(_is_number, v))
        )

    def _checked(self, found: list, ok) -> list:
        """Cached values of the wrong kind for this judge (a file edited, or another version's) are asked
        again, counted and named once."""
        odd = [i for i, v in enumerate(found) if v is not None and not ok(v)]
        if odd:
            if not self.cache_wrong:
                log.warning(
                    "%s: cached value(s) of the wrong kind for this judge; asked again", self.cache.path
                )
            self.cache_wrong += len(odd)
            for i in odd:
                found[i] = None
        return found

    def _ask(self, prompts: list[str], desc: str, attempt: int = 1) -> list:
        """Per prompt: label log-probs (a list of floats) or, from a text-only backend, the reply text.
        A later ``attempt`` at the same prompt has its own cache entry."""
        keys = prompts if attempt == 1 else [f"{p}\x00attempt {attempt}" for p in prompts]
        answers = self._checked(
            self.cache.lookup(keys) if self.cache else [None] * len(prompts), self._verdict_like
        )
        if self.reask_unparsable:  # cached replies that named no verdict are asked again
            stale = [i for i, v in enumerate(answers) if isinstance(v, str) and not self.parsable(v)]
            self.reasked += len(stale)
            for i in stale:
                answers[i] = None
        todo = [i for i, v in enumerate(answers) if v is None]
        if todo:
            sub = [prompts[i] for i in todo]
            if self._local_labels():
                logps, truncated = self.backend.option_logprobs(
                    sub, list(self.LABELS), self.batch_size, self.max_prompt_tokens, desc=desc
                )
                fresh = logps.tolist()
                self.truncated += truncated
                if self.cache:
                    self.cache.store([keys[i] for i in todo], fresh)
            elif getattr(
                self.backend, "supports_label_logprobs", False
            ):  # an endpoint's first-token log-probs
                store = self.cache and (lambda j, v: self.cache.store([keys[todo[j]]], [v], sync=False))
                fresh, _ = self.backend.option_logprobs(
                    sub, list(self.LABELS), self.batch_size, self.max_prompt_tokens, desc=desc, on_reply=store
                )
                if self.cache:
                    self.cache.sync()
            else:  # an endpoint: each reply is cached as it arrives, a failure fails only its prompt
                store = self.cache and (lambda j, text: self.cache.store([keys[todo[j]]], [text], sync=False))
                fresh = self.backend.complete(sub, max_tokens=self.REPLY_TOKENS, desc=desc, on_reply=store)
                if self.cache:
                    self.cache.sync()
            self.calls += len(todo)
            for i, v in zip(todo, fresh, strict=True):
                answers[i] = v
            self._check_failures(fresh)
        return answers

    def _check_failures(self, fresh: list) -> None:
        """Count the endpoint's failures; past ``max_failures`` the step stops, naming the first one."""
        from harness.backends.openai_compat import Failure

        bad = [v for v in fresh if isinstance(v, Failure)]
        if not bad:
            return
        self.failed += len(bad)
        self.first_failure = self.first_failure or str(bad[0])
        if self.failed > self.max_failures:
            from harness.core.errors import EndpointError

            where = getattr(self.backend, "base_url", type(self.backend).__name__)
            raise EndpointError(
                f"judge endpoint {where}: {self.failed} judge prompts failed (max_failures: {self.max_failures});"
                f" first: {self.first_failure}. Every good reply is cached: a rerun sends only the failed prompts"
            )

    def stats(self) -> dict:
        return {
            "judge_calls": self.calls,
            "judge_cache_hits": self.cache.hits if self.cache else 0,
            "judge_cache_bad_lines": len(self.cache.bad_lines) if self.cache else 0,
            "judge_prompts_truncated": self.truncated,
            "judge_unparsable": self.unparsable,
            "judge_retried_unparsable": self.retried,
            "judge_retries": getattr(self.backend, "retries", 0),
            "judge_failed": self.failed,
            "judge_reasked_unparsable": self.reasked,
            "judge_cache_wrong_values": self.cache_wrong,
        }

    def parsable(self, text: str) -> bool:
        """Whether a text reply names a verdict (each judge's own rule)."""
        raise NotImplementedError


class PairwiseJudge(Judge):
    """P(answer A is better) for (instruction, A, B) triples, one batched backend call per ``prob_a``."""

    LABELS = PAIR_LABELS

    def parsable(self, text: str) -> bool:
        return parse_choice(text) is not None

    def render(self, instruction: str, answer_a: str, answer_b: str) -> str:
        body = self.template.format(instruction=instruction, answer_a=answer_a, answer_b=answer_b)
        return self.backend.chat_prompt([{"role": "user", "content": body}])

    def prob_a(self, triples: list[tuple[str, str, str]], desc: str = "judge") -> np.ndarray:
        """P(A) per triple; a prompt the endpoint failed (within ``max_failures``) counts as a tie."""
        from harness.backends.openai_compat import Failure

        renders = [functools.partial(self.render, t[0]) for t in triples]
        fitted = self.fit(renders, [t[1:] for t in triples])
        out = []
        for answer in self._ask([r(*a) for r, a in zip(renders, fitted, strict=True)], desc):
            if isinstance(answer, Failure):
                out.append(0.5)
            elif isinstance(answer, str):  # text verdict: certain either way; unparsable votes for neither
                choice = parse_choice(answer)
                self.unparsable += choice is None
                out.append({"A": 1.0, "B": 0.0, None: 0.5}[choice])
            elif not answer:  # an endpoint's reply whose top log-probs held neither label
                self.unparsable += 1
                out.append(0.5)
            else:
                out.append(float(softmax_first(np.asarray([answer]))[0]))
        return np.asarray(out)


class RatingJudge(Judge):
    """A 1-10 rating per judge prompt (MT-Bench single-answer grading; the caller renders the prompts)."""

    LABELS = RATING_LABELS
    REPLY_TOKENS = 512  # room for a short explanation before the [[n]]

    def parsable(self, text: str) -> bool:
        return parse_rating(text) is not None

    def judge(self, prompts: list[str], desc: str = "rate") -> list[str]:
        """The verdict text per prompt: the most likely ``[[n]]`` label, or the reply text. A text reply
        without a rating is asked once more; if it still has none, it is counted as unparsable. A prompt
        the endpoint failed (within ``max_failures``) gets an empty text, counted in ``failed``."""
        from harness.backends.openai_compat import Failure

        answers = self._ask(prompts, desc)
        again = [i for i, a in enumerate(answers) if isinstance(a, str) and parse_rating(a) is None]
        if again:
            self.retried += len(again)
            for i, a in zip(
                again, self._ask([prompts[i] for i in again], f"{desc} (retry)", attempt=2), strict=True
            ):
                answers[i] = a
        out = []
        for answer in answers:
            if isinstance(answer, Failure):  # counted in ``failed``; no verdict text
                out.append("")
            elif isinstance(answer, str):
                self.unparsable += parse_rating(answer) is None
                out.append(answer)
            else:
                out.append(RATING_LABELS[int(np.argmax(answer))].strip())
        return out
