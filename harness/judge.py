"""LLM judges: pairwise preference and single-answer rating, on any backend.

Verdicts are read from the log-probabilities of the answer labels where the backend gives them, so
that a tiny model works as a judge and a large one needs no free-text parsing. Text verdicts from API
judges go through ``parse_rating`` / ``parse_choice``, which return None for an unparsable reply;
callers count those, never drop them silently.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np

PAIR_LABELS = (" A", " B")
RATING_LABELS = tuple(f" [[{n}]]" for n in range(1, 11))
_RATING = re.compile(r"\[\[(\d+(?:\.\d+)?)\]\]")
_RATING_BACKUP = re.compile(r"\[(\d+(?:\.\d+)?)\]")  # FastChat's fallback: a single bracket
_CHOICE = re.compile(r"^\W*([AB])\b")


def load_template(name: str) -> str:
    """A prompt template shipped in harness/templates; the version is part of the file name."""
    try:
        return resources.files("harness.templates").joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        names = sorted(
            p.name for p in resources.files("harness.templates").iterdir() if p.name.endswith(".txt")
        )
        raise ValueError(f"unknown judge template '{name}'; available: {', '.join(names)}") from None


def parse_rating(text: str) -> float | None:
    """The last ``[[n]]`` rating in a judge reply (else the last ``[n]``, as FastChat does), if in 1..10."""
    found = _RATING.findall(text) or _RATING_BACKUP.findall(text)
    if not found:
        return None
    value = float(found[-1])
    return value if 1 <= value <= 10 else None


def parse_choice(text: str) -> str | None:
    """'A' or 'B' from a pairwise judge reply that starts with the letter, else None."""
    m = _CHOICE.match(text)
    return m.group(1) if m else None


def softmax_first(logps: np.ndarray) -> np.ndarray:
    """P(first option) from two option log-probs per row, renormalised over the two options."""
    return 1.0 / (1.0 + np.exp(logps[:, 1] - logps[:, 0]))


def judge_identity(jcfg: dict) -> dict:
    """What a cached verdict depends on besides the prompt, template and labels."""
    model = jcfg["model"]
    if isinstance(model, dict):
        model = {"source": model["source"], "revision": model.get("revision")}
    return {"backend": jcfg["backend"], "model": model}


class _Judge:
    """Shared plumbing: template, batching, call counting and the optional call cache.

    Args:
        template: a template file of harness/templates, or None where the caller renders the prompts
            (MT-Bench's FastChat templates; their content hash is then part of ``identity``).
        identity: what makes a verdict reproducible (model source and revision, backend); with
            ``cache_path`` it keys a :class:`harness.cache.JudgeCache`, so repeated prompts cost nothing.
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
    ):
        self.backend = backend
        self.template_name = template
        self.template = load_template(template) if template else None
        self.batch_size = batch_size
        self.max_prompt_tokens = max_prompt_tokens
        self.calls = 0  # judge prompts sent to the backend (cache misses)
        self.unparsable = 0  # text replies that named no verdict (after any retry)
        self.retried = 0  # text replies asked again because they named no verdict
        self.truncated = 0  # judge prompts cut from the left to fit max_prompt_tokens
        self.cache = None
        if cache_path is not None:
            from harness.cache import JudgeCache

            ident = dict(
                identity or {},
                template=template,
                labels=list(self.LABELS),
                max_prompt_tokens=max_prompt_tokens,
            )
            self.cache = JudgeCache(cache_path, ident)

    @classmethod
    def from_config(cls, jcfg: dict, cache_path: str | None = None, **identity):
        """A judge from a resolved judge config ``{backend, model, template, batch_size, max_prompt_tokens}``;
        ``identity`` adds what else its verdicts depend on. ``backend: oracle`` gives the demo world's
        oracle or a simulated judge (:mod:`harness.oracle`), which judges pairs only."""
        if jcfg["backend"] == "oracle":
            if cls is not PairwiseJudge:
                raise ValueError("the oracle judge compares answers in pairs; it gives no 1-10 ratings")
            from harness.oracle import OracleJudge

            return OracleJudge.from_config(jcfg)
        from harness.backends import load_backend

        return cls(
            load_backend(jcfg["backend"], jcfg["model"]),
            jcfg.get("template"),
            jcfg["batch_size"],
            jcfg["max_prompt_tokens"],
            cache_path=cache_path,
            identity={**judge_identity(jcfg), **identity},
        )

    def _ask(self, prompts: list[str], desc: str, attempt: int = 1) -> list:
        """Per prompt: label log-probs (a list of floats) or, from a text-only backend, the reply text.
        A later ``attempt`` at the same prompt has its own cache entry."""
        keys = prompts if attempt == 1 else [f"{p}\x00attempt {attempt}" for p in prompts]
        answers = self.cache.lookup(keys) if self.cache else [None] * len(prompts)
        todo = [i for i, v in enumerate(answers) if v is None]
        if todo:
            sub = [prompts[i] for i in todo]
            if getattr(self.backend, "supports_label_logprobs", True):
                logps, truncated = self.backend.option_logprobs(
                    sub, list(self.LABELS), self.batch_size, self.max_prompt_tokens, desc=desc
                )
                fresh = logps.tolist()
                self.truncated += truncated
            else:
                fresh = self.backend.complete(sub, max_tokens=self.REPLY_TOKENS, desc=desc)
            self.calls += len(todo)
            if self.cache:
                self.cache.store([keys[i] for i in todo], fresh)
            for i, v in zip(todo, fresh, strict=True):
                answers[i] = v
        return answers

    def stats(self) -> dict:
        return {
            "judge_calls": self.calls,
            "judge_cache_hits": self.cache.hits if self.cache else 0,
            "judge_prompts_truncated": self.truncated,
            "judge_unparsable": self.unparsable,
            "judge_retried_unparsable": self.retried,
            "judge_retries": getattr(self.backend, "retries", 0),
        }


class PairwiseJudge(_Judge):
    """P(answer A is better) for (instruction, A, B) triples, one batched backend call per ``prob_a``."""

    LABELS = PAIR_LABELS

    def render(self, instruction: str, answer_a: str, answer_b: str) -> str:
        body = self.template.format(instruction=instruction, answer_a=answer_a, answer_b=answer_b)
        return self.backend.chat_prompt([{"role": "user", "content": body}])

    def prob_a(self, triples: list[tuple[str, str, str]], desc: str = "judge") -> np.ndarray:
        out = []
        for answer in self._ask([self.render(*t) for t in triples], desc):
            if isinstance(answer, str):  # text verdict: certain either way; unparsable votes for neither
                choice = parse_choice(answer)
                self.unparsable += choice is None
                out.append({"A": 1.0, "B": 0.0, None: 0.5}[choice])
            else:
                out.append(float(softmax_first(np.asarray([answer]))[0]))
        return np.asarray(out)


class RatingJudge(_Judge):
    """A 1-10 rating per judge prompt (MT-Bench single-answer grading; the caller renders the prompts)."""

    LABELS = RATING_LABELS
    REPLY_TOKENS = 512  # room for a short explanation before the [[n]]

    def judge(self, prompts: list[str], desc: str = "rate") -> list[str]:
        """The verdict text per prompt: the most likely ``[[n]]`` label, or the reply text. A text reply
        without a rating is asked once more; if it still has none, it is counted as unparsable."""
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
            if isinstance(answer, str):
                self.unparsable += parse_rating(answer) is None
                out.append(answer)
            else:
                out.append(RATING_LABELS[int(np.argmax(answer))].strip())
        return out
