"""Local drafters on the pinned model: CTranslate2 int8 (default) or transformers.

Both use the model's own tokenizer and chat template, greedy decoding, and the same
section-by-section prompts. The CTranslate2 drafter puts the transcript in a cached
static prompt, so a session is read once however many sections the note has."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

from scribe.domain.errors import EngineError, ModelMissing
from scribe.engines.offline import force_offline
from scribe.engines.prompts import (
    TOKENS_PER_SENTENCE,
    chat_messages,
    clean_digest,
    clean_output,
    digest_messages,
    source_block,
)
from scribe.engines.protocols import Deadline, DigestResult, DraftResult, PseudonymizedTranscript, SectionRequest

Messages = list[dict[str, str]]
DIGEST_MAX_NEW = 200


def _tokenizer(path: Path) -> Any:
    force_offline()
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:  # pragma: no cover
        raise ModelMissing("transformers is not installed: pip install -e '.[engines]'") from exc
    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)  # nosec B615 - a local directory


class _SectionDrafter:
    """Drafts a note section by section; subclasses generate one section's tokens."""

    name = "drafter"
    leaves_host = False  # True only for a drafter that sends the transcript through the egress gateway
    digests = True  # a long session is read in parts as it is recorded (scribe.domain.digest)
    _max_new = 160

    def _generate(self, messages: Messages, static: str, deadline: Deadline | None,
                  max_new: int) -> tuple[str, int, int]:
        """Return (text, prompt tokens, generated tokens) for one prompt, stopping early once
        ``deadline`` has passed (the caller then fails the stage). ``static``: the part of the
        user message every section shares (an executor may read it once), or empty."""
        raise NotImplementedError

    def digest(self, part: PseudonymizedTranscript, deadline: Deadline | None = None) -> DigestResult:
        started = time.perf_counter()
        try:
            text, n_prompt, n_generated = self._generate(digest_messages(part.text), "", deadline, DIGEST_MAX_NEW)
            if deadline is not None:
                deadline.check()
        except EngineError:
            raise
        except Exception as exc:
            raise EngineError(f"note-taking failed ({exc.__class__.__name__})", retryable=True) from exc
        return DigestResult(clean_digest(text), n_prompt, n_generated, time.perf_counter() - started)

    def draft(self, transcript: PseudonymizedTranscript, note_name: str, sections: list[SectionRequest],
              deadline: Deadline | None = None, earlier: tuple[str, ...] = ()) -> DraftResult:
        started = time.perf_counter()
        out: dict[str, str] = {}
        prompt_tokens = generated = 0
        source = source_block(transcript.text, earlier)
        written: set[str] = set()  # a sentence an earlier section holds is not written again
        try:
            for section in sections:
                if deadline is not None:
                    deadline.check()
                budget = max(self._max_new, TOKENS_PER_SENTENCE * section.max_sentences)
                text, n_prompt, n_generated = self._generate(chat_messages(source, note_name, section), source,
                                                             deadline, budget)
                if deadline is not None:
                    deadline.check()  # a section cut short by the deadline is not kept
                prompt_tokens += n_prompt
                generated += n_generated
                out[section.key] = clean_output(text, section.max_sentences, written, section.title)
        except EngineError:
            raise  # already says what went wrong and whether a retry can help (egress refusals cannot)
        except Exception as exc:
            raise EngineError(f"drafting failed ({exc.__class__.__name__})", retryable=True) from exc
        return DraftResult(out, self.name, prompt_tokens, generated, time.perf_counter() - started)


class CT2Drafter(_SectionDrafter):
    def __init__(self, ct2_dir: Path, tokenizer_dir: Path, *, threads: int, max_new_tokens: int = 160,
                 compute_type: str = "int8", repetition_penalty: float = 1.1, device: str = "cpu") -> None:
        if not (ct2_dir / "model.bin").exists():
            raise ModelMissing(f"drafting model not found in {ct2_dir}: run `scribe models install`")
        import ctranslate2

        self._tok = _tokenizer(tokenizer_dir)
        self._gen = ctranslate2.Generator(str(ct2_dir), device=device, compute_type=compute_type if device == "cpu"
                                          else "int8_float16", intra_threads=threads)
        self._max_new = max_new_tokens
        self._penalty = repetition_penalty
        self.name = f"ct2-{compute_type}:{ct2_dir.parent.name}"

    def _prompt_tokens(self, messages: Messages, static: str) -> tuple[list[str], list[str]]:
        full = self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        head = full[: full.index(static) + len(static)] if static else ""
        full_ids = self._tok(full, add_special_tokens=False).input_ids
        head_ids = self._tok(head, add_special_tokens=False).input_ids
        if full_ids[: len(head_ids)] == head_ids:
            rest_ids = full_ids[len(head_ids):]
        else:
            # The tokenizer merges across the end of the transcript block (SmolLM2 does, at the
            # blank line): tokenize the two sides apart, so the transcript is still a prefix the
            # generator caches and reads once for the whole note, not once per section.
            rest_ids = self._tok(full[len(head):], add_special_tokens=False).input_ids
        return self._tok.convert_ids_to_tokens(head_ids), self._tok.convert_ids_to_tokens(rest_ids)

    def _generate(self, messages: Messages, static_text: str, deadline: Deadline | None,
                  max_new: int) -> tuple[str, int, int]:
        static, rest = self._prompt_tokens(messages, static_text)

        def past_deadline(_step: Any) -> bool:  # called per generated token; True stops decoding
            return deadline is not None and deadline.remaining() < 0

        result = self._gen.generate_batch(
            [rest], static_prompt=static or None, max_length=max_new, sampling_topk=1,
            repetition_penalty=self._penalty, include_prompt_in_result=False, end_token=[self._tok.eos_token],
            callback=past_deadline)
        ids = result[0].sequences_ids[0]
        return self._tok.decode(ids, skip_special_tokens=True), len(static) + len(rest), len(ids)


class TransformersDrafter(_SectionDrafter):
    def __init__(self, hf_dir: Path, *, threads: int, max_new_tokens: int = 160, repetition_penalty: float = 1.0) -> None:
        if not (hf_dir / "config.json").exists():
            raise ModelMissing(f"model directory {hf_dir} not found: install it or set SCRIBE_DRAFTER_MODEL_DIR")
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(threads)
        self._torch = torch
        self._tok = _tokenizer(hf_dir)
        self._model: Any = cast("Any", AutoModelForCausalLM.from_pretrained(  # nosec B615 - a local directory, never the hub
            str(hf_dir), local_files_only=True, dtype=torch.float32))
        self._model.eval()
        self._max_new = max_new_tokens
        # transformers applies the repetition penalty to the prompt's tokens as well, which
        # suppresses the end-of-turn token the prompt itself contains: off by default here.
        self._penalty = repetition_penalty
        self.name = f"transformers:{hf_dir.parent.name if hf_dir.name == 'hf' else hf_dir.name}"

    def _generate(self, messages: Messages, static: str, deadline: Deadline | None,
                  max_new: int) -> tuple[str, int, int]:
        ids = self._tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        limit = {"max_time": max(deadline.remaining(), 0.001)} if deadline is not None else {}
        with self._torch.no_grad():
            res = self._model.generate(**ids, max_new_tokens=max_new, do_sample=False, **limit,
                                       repetition_penalty=self._penalty, pad_token_id=self._tok.eos_token_id)
        new = res[0, ids["input_ids"].shape[1]:]
        return self._tok.decode(new, skip_special_tokens=True), int(ids["input_ids"].shape[1]), int(new.shape[0])
