"""Uploads: bounded, type-checked; bad input gets a clear error and leaves nothing behind."""

from __future__ import annotations

import pytest
from sqlmodel import select

from scribe.db.engine import session_scope
from scribe.db.tables import Encounter, Job, Recording
from scribe.domain.errors import ConsentMissing, InvalidInput, NotFound, PermissionDenied
from scribe.runtime import Runtime
from scribe.services.files import recordings
from scribe.services.uploads import sniff_format
from tests.conftest import Clock, Practice, wav_bytes
from tests.helpers import upload


def nothing_stored(runtime: Runtime) -> bool:
    with session_scope(runtime.engine) as s:
        rows = [*s.exec(select(Encounter)).all(), *s.exec(select(Job)).all(), *s.exec(select(Recording)).all()]
    files = list(runtime.settings.recordings_dir.glob("*")) if runtime.settings.recordings_dir.exists() else []
    return not rows and not files


def test_a_wav_is_stored_with_its_job_before_it_is_acknowledged(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    encounter = upload(runtime, practice.dr_ada, practice.maya.id, wav)
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
        job = s.exec(select(Job).where(Job.encounter_id == encounter.id)).one()
    assert rec.format == "wav" and abs(rec.duration_seconds - 2.0) < 0.1
    assert recordings(runtime.recordings_dir).read(runtime.engine, rec.path) == wav
    assert job.kind == "transcribe" and job.status == "queued"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"%PDF-1.7 not audio at all" * 10, "unsupported file type"),
    (b"RIFF\x00\x00\x00\x00WAVEfmt garbage garbage", "could not be read"),
    (b"OggS" + b"\x00" * 400, "could not be read"),
])
def test_broken_or_foreign_files_get_a_clear_error_and_leave_nothing(
    runtime: Runtime, practice: Practice, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        upload(runtime, practice.dr_ada, practice.maya.id, data)
    assert nothing_stored(runtime)


def test_a_file_over_the_size_limit_is_refused(runtime: Runtime, practice: Practice) -> None:
    limits = runtime.policies.pipeline.upload
    object.__setattr__(limits, "max_bytes", 10_000)
    try:
        with pytest.raises(InvalidInput, match="larger than"):
            upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=3))
    finally:
        object.__setattr__(limits, "max_bytes", 524288000)
    assert nothing_stored(runtime)


def test_a_recording_that_is_too_short_is_refused(runtime: Runtime, practice: Practice) -> None:
    with pytest.raises(InvalidInput, match="too short"):
        upload(runtime, practice.dr_ada, practice.maya.id, wav_bytes(seconds=0.3))


def test_a_clinician_cannot_upload_for_another_clinicians_client(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    with pytest.raises(NotFound):
        upload(runtime, practice.dr_ada, practice.jonah.id, wav)
    with pytest.raises(NotFound):
        upload(runtime, practice.eve, practice.maya.id, wav)


def test_admins_do_not_upload(runtime: Runtime, practice: Practice, wav: bytes) -> None:
    with pytest.raises(PermissionDenied):
        upload(runtime, practice.root, practice.maya.id, wav)


def test_upload_needs_the_recording_consent(runtime: Runtime, practice: Practice, wav: bytes, clock: Clock) -> None:
    from scribe.db.tables import Consent

    with session_scope(runtime.engine) as s:
        for c in s.exec(select(Consent).where(Consent.client_id == practice.maya.id)).all():
            c.withdrawn_at = clock()
            s.add(c)
    with pytest.raises(ConsentMissing, match="record_audio"):
        upload(runtime, practice.dr_ada, practice.maya.id, wav)


def test_formats_are_recognised_by_their_bytes() -> None:
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVE") == "wav"
    assert sniff_format(b"OggS\x00") == "ogg"
    assert sniff_format(b"\x1a\x45\xdf\xa3") == "webm"
    assert sniff_format(b"\x00\x00\x00\x20ftypM4A ") == "m4a"
    assert sniff_format(b"ID3\x03") == "mp3"
    assert sniff_format(b"MZ\x90\x00") is None


@pytest.mark.parametrize("kind", ["mp3", "ogg", "webm", "m4a"])
def test_every_accepted_format_is_stored_with_its_duration(runtime: Runtime, practice: Practice, kind: str) -> None:
    from tests.audio_formats import encode

    encounter = upload(runtime, practice.dr_ada, practice.maya.id, encode(kind, seconds=2.0))
    with session_scope(runtime.engine) as s:
        rec = s.exec(select(Recording).where(Recording.encounter_id == encounter.id)).one()
    assert rec.format == kind and 1.5 < rec.duration_seconds < 2.6


def test_a_truncated_recording_is_refused_cleanly(runtime: Runtime, practice: Practice) -> None:
    from tests.audio_formats import encode

    data = encode("mp3", seconds=3.0)
    with pytest.raises(InvalidInput):
        upload(runtime, practice.dr_ada, practice.maya.id, data[:200])
    assert nothing_stored(runtime)
