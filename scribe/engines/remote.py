"""A drafter that asks an on-prem model server (OpenAI-compatible chat completions) through
the egress gateway. It sends the pseudonymized transcript and the section prompt, nothing
else: no audio, no chart, no re-identification map."""

from __future__ import annotations

from scribe.domain.egress import PART2_NOTICE
from scribe.domain.errors import EngineError
from scribe.engines.egress import EgressGateway
from scribe.engines.llm import Messages, _SectionDrafter
from scribe.engines.protocols import Deadline, DigestResult, DraftResult, PseudonymizedTranscript, SectionRequest


class RemoteDrafter(_SectionDrafter):
    leaves_host = True  # the client's egress consent is checked before anything is sent
    digests = False  # a model server reads the whole transcript; nothing is sent while recording

    def __init__(self, gateway: EgressGateway, destination: str, model: str, *, max_tokens: int = 160) -> None:
        self.gateway = gateway
        self.destination = destination
        self.model = model
        self.max_tokens = max_tokens
        self.name = f"remote:{destination}:{model}"
        self._originals: tuple[str, ...] = ()
        self._part2: tuple[bool, bool] = (False, False)
        self._basis = ""

    def draft(self, transcript: PseudonymizedTranscript, note_name: str, sections: list[SectionRequest],
              deadline: Deadline | None = None, earlier: tuple[str, ...] = ()) -> DraftResult:
        self._originals = tuple(transcript.surrogates.reverse.values())  # checked never to leave, never sent
        self._part2 = (transcript.part2, transcript.part2_consent)
        self._basis = transcript.part2_basis
        try:
            return super().draft(transcript, note_name, sections, deadline, earlier)
        finally:
            self._originals, self._part2, self._basis = (), (False, False), ""

    def digest(self, part: PseudonymizedTranscript, deadline: Deadline | None = None) -> DigestResult:
        raise EngineError("a remote drafter does not take notes while a session is recorded", retryable=False)

    def _generate(self, messages: Messages, static: str, deadline: Deadline | None,
                  max_new: int) -> tuple[str, int, int]:
        # The gateway's own request timeout bounds one call; the deadline is checked between sections.
        if self._part2[0]:  # a Part 2 disclosure always carries the 2.32 notice and the consent's terms
            messages = [{"role": "system", "content": f"{PART2_NOTICE} {self._basis}".strip()}, *messages]
        answer = self.gateway.post_json(self.destination, {
            "model": self.model, "temperature": 0, "max_tokens": self.max_tokens, "messages": messages},
            originals=self._originals, part2=self._part2[0], part2_consent=self._part2[1])
        usage = answer.get("usage") or {}
        text = answer["choices"][0]["message"]["content"]
        return str(text), int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
