"""No model hub, ever: weights come only from models/, installed and checksum-verified ahead of
time. Every adapter that loads Hugging Face weights calls ``force_offline`` first."""

from __future__ import annotations

import os


def force_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
