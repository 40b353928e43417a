"""One-time model conversions, run by ``scribe models install`` in a child process
(they need torch and lots of memory, which the installer should not keep).

GGUF -> plain Hugging Face directory: transformers refuses ``save_pretrained`` on a
GGUF-loaded model, so the model is rebuilt from its config (quantization_config
removed) and the dequantized weights are loaded into it (MODELS.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scribe.engines.offline import force_offline


def gguf_to_hf(gguf_path: Path, out_dir: Path) -> None:
    force_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # A local, checksum-verified file, never the hub: local_files_only and offline mode.
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,  # nosec B615 - local file
                                              local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,  # nosec B615 - local file
                                                  local_files_only=True)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    auto: Any = AutoModelForCausalLM  # its from_config is untyped
    rebuilt = auto.from_config(config)
    rebuilt.load_state_dict(loaded.state_dict())
    del loaded
    rebuilt.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "gguf-to-hf":
        print("usage: python -m scribe.engines.convert gguf-to-hf GGUF OUT_DIR", file=sys.stderr)
        return 2
    gguf_to_hf(Path(argv[1]), Path(argv[2]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
