"""Drafting executors on the same weights and prompts: CTranslate2 int8 vs transformers.

Both decode greedily from the same chat-templated prompts, so their outputs should match
(int8 vs fp32 rounding can change a token); the benchmark reports how much of the output
matched and the tokens/s of each, and the default profile's CTranslate2 speed beside them.

    .venv/bin/python bench/drafting.py
"""

from __future__ import annotations

import json
import sys
from difflib import SequenceMatcher
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, table  # noqa: E402
from scribe.config import ROOT  # noqa: E402
from scribe.domain.transcript import parse_plain_transcript  # noqa: E402
from scribe.engines.build import force_offline  # noqa: E402
from scribe.engines.fakes import FakeRedactor  # noqa: E402
from scribe.engines.llm import CT2Drafter, TransformersDrafter  # noqa: E402
from scribe.engines.protocols import SectionRequest  # noqa: E402
from scribe.policies import load_policies  # noqa: E402
from scribe.services.demo import SAMPLE_SCRIPT  # noqa: E402
from scribe.weights import profile_paths, verify  # noqa: E402


def main() -> None:
    force_offline()
    template = load_policies(ROOT / "policies").template("soap")
    sections = [SectionRequest(s.key, s.title, s.instruction, s.max_sentences) for s in template.sections]
    transcript = FakeRedactor().pseudonymize(parse_plain_transcript(SAMPLE_SCRIPT.read_text()), [])
    rows, outputs = [], {}
    test = profile_paths(ROOT / "models", "test")
    runs = [("ct2-int8", "test", lambda: CT2Drafter(test.drafter_ct2, test.drafter_tokenizer, threads=2)),
            ("transformers-fp32", "test", lambda: TransformersDrafter(test.drafter_hf, threads=2))]
    if not verify(ROOT / "models", "default"):
        default = profile_paths(ROOT / "models", "default")
        runs.append(("ct2-int8", "default", lambda: CT2Drafter(default.drafter_ct2, default.drafter_tokenizer, threads=2)))
    for executor, profile, make in runs:
        drafter = make()
        drafter.draft(transcript, template.name, sections[:1])  # warm-up
        result = drafter.draft(transcript, template.name, sections)
        text = " ".join(result.sections[s.key] for s in sections)
        outputs[(executor, profile)] = text
        rows.append({"executor": executor, "model": drafter.name.split(":")[-1], "generated_tokens": result.generated_tokens,
                     "seconds": round(result.seconds, 2), "tokens_per_s": result.generated_tokens / result.seconds})
    a, b = outputs[("ct2-int8", "test")], outputs[("transformers-fp32", "test")]
    same = SequenceMatcher(None, a, b, autojunk=False).ratio()
    for r in rows[:2]:
        r["output_match_vs_other"] = round(same, 3)
    print(table(rows, list(rows[0])))
    speedup = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    print(f"\nCTranslate2 int8 / transformers tokens per second on the same weights: {speedup:.2f}x; "
          f"output character match {same:.3f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "drafting.json").write_text(json.dumps({"rows": rows, "ct2_over_transformers": speedup,
                                                   "output_match": same}, indent=2))


if __name__ == "__main__":
    main()
