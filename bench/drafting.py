"""Drafting executors on the same weights and prompts: CTranslate2 vs transformers.

All decode greedily from the same chat-templated prompts. At equal precision (float32) the
two executors should give the same text, so their speeds compare at equal output; int8 is
CTranslate2's further speed-up, with how far its text moved from float32 reported beside it.
The default profile's CTranslate2 int8 speed is printed too.

    .venv/bin/python bench/drafting.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from difflib import SequenceMatcher
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import OUT, table
from scribe.config import ROOT
from scribe.domain.transcript import parse_plain_transcript
from scribe.engines.fakes import FakeRedactor
from scribe.engines.llm import CT2Drafter, TransformersDrafter
from scribe.engines.offline import force_offline
from scribe.engines.protocols import SectionRequest
from scribe.policies import load_policies
from scribe.services.demo import SAMPLE_SCRIPT
from scribe.weights import profile_paths, verify


def main() -> None:
    force_offline()
    template = load_policies(ROOT / "policies").template("soap")
    sections = [SectionRequest(s.key, s.title, s.instruction, s.max_sentences) for s in template.sections]
    transcript = FakeRedactor().pseudonymize(parse_plain_transcript(SAMPLE_SCRIPT.read_text()), [])
    rows, outputs = [], {}
    test = profile_paths(ROOT / "models", "test")
    # Equal output needs equal decoding: greedy, no repetition penalty (the two libraries
    # apply it differently), same end token.
    # The installed CTranslate2 model is stored int8; for equal weights convert the same plain
    # weights once more without quantization (seconds for the 135M model).
    f32 = Path(tempfile.mkdtemp(prefix="ct2-f32-"))
    subprocess.run([str(Path(sys.executable).with_name("ct2-transformers-converter")), "--model", str(test.drafter_hf),
                    "--output_dir", str(f32), "--force"], check=True, capture_output=True)
    runs = [("ct2-float32", "test", lambda: CT2Drafter(f32, test.drafter_tokenizer, threads=2,
                                                       compute_type="float32", repetition_penalty=1.0)),
            ("transformers-float32", "test", lambda: TransformersDrafter(test.drafter_hf, threads=2)),
            ("ct2-int8", "test", lambda: CT2Drafter(test.drafter_ct2, test.drafter_tokenizer, threads=2,
                                                    repetition_penalty=1.0))]
    if not verify(ROOT / "models", "default"):
        default = profile_paths(ROOT / "models", "default")
        runs.append(("ct2-int8", "default", lambda: CT2Drafter(default.drafter_ct2, default.drafter_tokenizer, threads=2)))
    for executor, profile, make in runs:
        drafter = make()
        drafter.draft(transcript, template.name, sections[:1])  # warm-up
        result = drafter.draft(transcript, template.name, sections)
        text = " ".join(result.sections[s.key] for s in sections)
        outputs[(executor, profile)] = text
        model = "smollm2-135m" if profile == "test" else drafter.name.split(":")[-1]
        rows.append({"executor": executor, "model": model, "generated_tokens": result.generated_tokens,
                     "seconds": round(result.seconds, 2), "tokens_per_s": result.generated_tokens / result.seconds})
    reference = outputs[("transformers-float32", "test")]
    for r, key in zip(rows, outputs, strict=False):
        if key[1] == "test":
            r["match_vs_transformers"] = round(SequenceMatcher(None, outputs[key], reference, autojunk=False).ratio(), 3)
    print(table(rows, list(rows[0])))
    equal = rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]
    int8 = rows[2]["tokens_per_s"] / rows[1]["tokens_per_s"]
    print(f"\nSame weights, float32 both: CTranslate2 / transformers = {equal:.2f}x tokens/s "
          f"(output match {rows[0]['match_vs_transformers']:.3f}); CTranslate2 int8 / transformers = {int8:.2f}x "
          f"(output match {rows[2]['match_vs_transformers']:.3f})")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "drafting.json").write_text(json.dumps({"rows": rows, "ct2_f32_over_transformers": equal,
                                                   "ct2_int8_over_transformers": int8}, indent=2))


if __name__ == "__main__":
    main()
