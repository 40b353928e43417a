"""The ``scribe`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from scribe.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    if getattr(args, "profile", None):
        overrides["model_profile"] = args.profile
    return Settings(**overrides)


def _fail(message: str, code: int = 1) -> int:
    print(f"scribe: {message}", file=sys.stderr)
    return code


def cmd_models(args: argparse.Namespace) -> int:
    from scribe.weights import install, verify

    settings = _settings(args)
    profile = args.profile or settings.model_profile
    if args.action == "install":
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
        install(settings.models_dir, profile, force=args.force)
    problems = verify(settings.models_dir, profile)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return _fail(f"models for profile '{profile}' are missing or altered: run `scribe models install --profile {profile}`")
    print(f"models for profile '{profile}': all present, checksums match")
    return 0


def cmd_policies(args: argparse.Namespace) -> int:
    from scribe.domain.errors import PolicyError
    from scribe.policies import load_policies

    settings = _settings(args)
    try:
        p = load_policies(settings.policies_dir)
    except PolicyError as exc:
        return _fail(exc.public_message)
    print(f"policies OK: {len(p.templates)} note templates ({', '.join(sorted(p.templates))}), "
          f"{len(p.consent.functions)} consent functions")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from scribe.engines.build import build_transcriber, check_models
    from scribe.engines.offline import force_offline

    settings = _settings(args)
    force_offline()
    check_models(settings)
    started = time.perf_counter()
    from scribe.engines.build import build_decoder
    from scribe.policies import load_policies

    policies = load_policies(settings.policies_dir)
    audio = build_decoder(policies).pcm(Path(args.audio).read_bytes(), max_seconds=policies.pipeline.upload.max_seconds,
                                        source=args.audio)
    result = build_transcriber(settings).transcribe(audio)
    # Speaker turns as the pipeline makes them: two voices, the practice's first-speaker rule.
    from scribe.engines.build import build_voices
    from scribe.engines.protocols import VoiceHints

    hints = VoiceHints(args.speakers, clinician_first=policies.pipeline.clinician_is_first_speaker)
    segments = build_voices(settings).label(audio.samples, result.segments, hints, channels=audio.channels)
    print(json.dumps({"duration": round(result.duration, 2), "seconds": round(time.perf_counter() - started, 2),
                      "segments": [s.to_json() for s in segments]}, indent=2))
    return 0


def cmd_redact(args: argparse.Namespace) -> int:
    """Redact text from standard input; print the redacted text and every span found."""
    from scribe.domain.chart import ChartFacts, Contact, known_identifiers
    from scribe.domain.redaction import SurrogateMap, apply_surrogates
    from scribe.engines.build import build_redactor
    from scribe.engines.offline import force_offline
    from scribe.policies import load_policies

    settings = _settings(args)
    force_offline()
    known = []
    if args.chart:
        try:
            data = json.loads(Path(args.chart).read_text())
            contacts = tuple(Contact(**c) for c in data.pop("contacts", []))
            if data.get("date_of_birth"):
                from datetime import date

                data["date_of_birth"] = date.fromisoformat(data["date_of_birth"])
            known = known_identifiers(ChartFacts(**data, contacts=contacts))
        except (OSError, ValueError, TypeError) as exc:
            print(f"scribe redact: cannot read the chart {args.chart}: {exc.__class__.__name__}", file=sys.stderr)
            return 2
    text = sys.stdin.read()
    started = time.perf_counter()
    spans = build_redactor(settings, load_policies(settings.policies_dir).redaction).find_spans(text, known)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "redacted": apply_surrogates(text, spans, SurrogateMap()),
        "spans": [{"start": x.start, "end": x.end, "entity_type": x.entity, "score": round(x.score, 3),
                   "source": x.source} for x in spans],
        "seconds": round(seconds, 3),
    }, indent=2, ensure_ascii=False))
    return 0


def read_transcript(path: Path) -> tuple[Any, ...]:
    from scribe.domain.transcript import Segment, Speaker, parse_plain_transcript

    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        return tuple(Segment(i, float(s["start"]), float(s["end"]), s["text"], Speaker(s.get("speaker", "unknown")))
                     for i, s in enumerate(data["segments"]))
    return parse_plain_transcript(text)


def cmd_draft(args: argparse.Namespace) -> int:
    from scribe.domain.redaction import reidentify
    from scribe.engines.build import build_drafter, build_redactor, check_models
    from scribe.engines.offline import force_offline
    from scribe.policies import load_policies
    from scribe.services.drafting import draft_and_check

    settings = _settings(args)
    force_offline()
    check_models(settings)
    policies = load_policies(settings.policies_dir)
    template = policies.template(args.note_type)
    segments = read_transcript(Path(args.transcript))
    drafted = draft_and_check(build_drafter(settings), build_redactor(settings, policies.redaction), policies,
                              template, segments)
    result, checked, pseudo = drafted.result, drafted.checked, drafted.pseudo
    rev = pseudo.surrogates.reverse

    def sentence(c: Any) -> dict[str, Any]:
        return {"section": c.section, "text": reidentify(c.text, rev), "evidence": list(c.evidence),
                "support": c.score, "flags": [f.to_json() for f in c.flags]}

    print(json.dumps({
        "note_type": args.note_type, "model": result.model, "parts_noted": drafted.parts_noted,
        "tokens_per_second": round(result.generated_tokens / result.seconds, 2) if result.seconds else None,
        "sections": [{"key": s.key, "title": s.title,
                      "text": " ".join(reidentify(c.text, rev) for c in checked.sentences if c.section == s.key)}
                     for s in template.sections],
        "sentences": [sentence(c) for c in checked.sentences],
        "removed": [sentence(c) for c in checked.removed],
        "flags": [f.to_json() for f in checked.draft_flags],
    }, indent=2))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check a note against a transcript with the pipeline's own checks; JSON out."""
    from scribe.domain.evidence import check_draft
    from scribe.domain.note_text import parse_note
    from scribe.policies import load_policies

    settings = _settings(args)
    policies = load_policies(settings.policies_dir)
    try:
        segments = read_transcript(Path(args.transcript))
        note = Path(args.note).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return _fail(f"cannot read the transcript or the note ({exc.__class__.__name__})")
    headings: dict[str, str] = {}
    observed: set[str] = set()
    for template in policies.templates.values():
        observed |= template.observed_sections
        for section in template.sections:
            headings.setdefault(section.title.lower(), section.key)
            headings.setdefault(section.key.lower(), section.key)
    pairs = parse_note(note, headings)
    checked = check_draft(pairs, segments, observed=frozenset(observed), medicines=policies.pipeline.medicines)
    order = {pair: i for i, pair in reversed(list(enumerate(pairs)))}  # the note's own order

    def sentence(c: Any, removed: bool) -> dict[str, Any]:
        return {
            "index": order.get((c.section, c.text), len(pairs)),
            "section": c.section,
            "text": c.text,
            "evidence": list(c.evidence),
            "support": round(c.score, 3),
            "removed": removed,
            "flags": [f.to_json() for f in c.flags],
        }

    print(json.dumps({
        "sentences": sorted([sentence(c, False) for c in checked.sentences] +
                            [sentence(c, True) for c in checked.removed], key=lambda x: x["index"]),
        "flags": [f.to_json() for f in checked.draft_flags],
        "risk_mentions": [{"segment": m.segment_index, "category": m.category,
                           "polarity": "denied" if m.negated else "endorsed", "speaker": m.speaker.value}
                          for m in checked.risk_mentions],
    }, indent=2))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from scribe.db.engine import session_scope
    from scribe.runtime import build_runtime
    from scribe.services import audit

    rt = build_runtime(_settings(args))
    anchors = rt.settings.anchors_dir
    with session_scope(rt.engine) as s:
        if args.action == "anchor":
            mark = audit.anchor(s, rt.audit_key, anchors, rt.clock())
            print(json.dumps({"anchored_event": mark.event_id if mark else None, "file": str(anchors)}))
            return 0
        problems = audit.verify(s, rt.audit_key, anchors)
        count = len(audit.read_anchors(anchors))
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return _fail(f"audit chain verification failed: {len(problems)} problem(s)")
    print(f"audit chain OK ({count} anchor(s) outside the database checked)")
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Lift a log-in lock from the server's console (when no admin can log in to do it)."""
    from sqlmodel import select

    from scribe.db.engine import session_scope
    from scribe.db.tables import LoginThrottle, User
    from scribe.runtime import build_runtime
    from scribe.services import audit

    rt = build_runtime(_settings(args))
    with session_scope(rt.engine) as s:
        user = s.exec(select(User).where(User.username == args.username.strip().lower())).first()
        if user is None:
            return _fail(f"no user named {args.username!r}")
        user.failed_logins, user.locked_until = 0, None
        s.add(user)
        cleared = 0
        if args.address:
            row = s.get(LoginThrottle, args.address)
            if row is not None:
                s.delete(row)
                cleared = 1
        audit.record(s, rt.audit_key, now=rt.clock(), actor_id=None, action="user.unlock", object_type="user",
                     object_id=user.id, reason="console")
    print(json.dumps({"unlocked": args.username, "address_cleared": bool(cleared)}))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from scribe.db.engine import session_scope
    from scribe.runtime import build_runtime
    from scribe.services import retention

    rt = build_runtime(_settings(args))
    with session_scope(rt.engine) as s:
        summary = retention.run(s, rt.audit_key, rt.policies, now=rt.clock(), dry_run=args.dry_run)
    print(json.dumps(summary, indent=2))
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """An online, encrypted, checksummed backup of the database, recordings, forms and anchors."""
    from scribe.runtime import build_runtime
    from scribe.services.backup import BackupError, counts, make_backup

    rt = build_runtime(_settings(args))
    try:
        result = make_backup(rt.settings, rt.engine, Path(args.dest), now=rt.clock())
    except BackupError as exc:
        return _fail(str(exc))
    print(json.dumps({"backup": str(result.folder), "seconds": round(result.seconds, 2),
                      "database_bytes": result.database_bytes, "files": result.files, "total_bytes": result.total_bytes,
                      **counts(rt.engine),
                      "keys": "not in the backup: copy them with `scribe backup-keys DIR` to a place of their own"},
                     indent=2))
    return 0


def cmd_backup_keys(args: argparse.Namespace) -> int:
    from scribe.services.backup import BackupError, backup_key, backup_keys

    settings = _settings(args)
    backup_key(settings, create=True)
    try:
        copied = backup_keys(settings, Path(args.dest))
    except BackupError as exc:
        return _fail(str(exc))
    print(json.dumps({"copied": [str(p) for p in copied]}, indent=2))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into an empty data directory, then prove it (chain, notes, audio)."""
    from scribe.runtime import build_runtime
    from scribe.services.backup import BackupError, counts, restore_backup, verify_restore

    settings = _settings(args)
    try:
        restored = restore_backup(settings, Path(args.src))
    except BackupError as exc:
        return _fail(str(exc))
    rt = build_runtime(settings)
    report = verify_restore(rt, decode=args.decode)
    print(json.dumps({**restored, **counts(rt.engine), "verification": report.to_json()}, indent=2))
    return 0 if report.ok else _fail("the restored data did not verify: see the report above")


def _check_listen(host: str, certfile: str | None) -> None:
    if host not in ("127.0.0.1", "localhost", "::1") and not certfile:
        raise SystemExit("scribe: refusing to listen beyond loopback without TLS; put it behind the reverse proxy "
                         "described in the README or pass --ssl-certfile/--ssl-keyfile")


def serve_app(app: Any, settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    _check_listen(settings.host, getattr(args, "ssl_certfile", None))
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", access_log=False,
                ssl_certfile=getattr(args, "ssl_certfile", None), ssl_keyfile=getattr(args, "ssl_keyfile", None))


def cmd_serve(args: argparse.Namespace) -> int:
    from scribe.app import create_app

    settings = _settings(args)
    _check_listen(settings.host, args.ssl_certfile)
    serve_app(create_app(settings), settings, args)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run stages: every queue, or those named (a GPU host: --queues transcribe,draft)."""
    import signal
    import threading

    from scribe.queues import ALL_QUEUES
    from scribe.runtime import build_runtime

    queues = [q.strip() for q in (args.queues or ",".join(ALL_QUEUES)).split(",") if q.strip()]
    unknown = [q for q in queues if q not in ALL_QUEUES]
    if unknown:
        return _fail(f"unknown queue(s) {unknown}: the queues are {', '.join(ALL_QUEUES)}")
    rt = build_runtime(_settings(args))
    rt.load_engines()
    assert rt.queue is not None  # noqa: S101 - narrows the type; never a guard
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ran = rt.queue.run_worker(rt, queues=queues, stop=stop, once=args.once)
    if args.once:
        print(json.dumps({"jobs_run": ran, "queue": rt.queue.name, "queues": queues}))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from scribe.demo.run import run_demo

    settings = _settings(args)
    summary, runtime = run_demo(settings)
    print(json.dumps(summary, indent=2))
    if not args.no_serve:
        from scribe.app import create_app

        print(f"\nServing the review UI at http://{settings.host}:{settings.port} — log in as:")
        for login in summary["logins"]:
            print(f"  {login['username']:8s} {login['password']:24s} {login['description']}")
        serve_app(create_app(settings, runtime=runtime), settings, args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scribe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the web app (and the worker, on the embedded default)")
    p.add_argument("--ssl-certfile")
    p.add_argument("--ssl-keyfile")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("check", help="check a note against a transcript (JSON): evidence, flags, unaddressed risk")
    p.add_argument("transcript", help='"SPEAKER: text" lines or the JSON of `scribe transcribe`')
    p.add_argument("note", help="the note as plain text; headings such as 'Subjective:' mark its sections")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("worker", help="run the pipeline worker")
    p.add_argument("--once", action="store_true", help="run until no job is left, then exit")
    p.add_argument("--queues", default="", help="the stages this host takes, e.g. transcribe,draft (default: all)")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("models", help="install or verify the pinned model weights")
    p.add_argument("action", choices=["install", "verify"])
    p.add_argument("--profile", choices=["default", "test"])
    p.add_argument("--force", action="store_true", help="reinstall even if present")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("policies", help="validate the policy files")
    p.add_argument("action", choices=["check"])
    p.set_defaults(func=cmd_policies)
    p = sub.add_parser("demo", help="seed the demo practice, run the sample session, serve the UI")
    p.add_argument("--no-serve", action="store_true")
    p.add_argument("--profile", choices=["default", "test"])
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("transcribe", help="transcribe one recording; prints JSON segments")
    p.add_argument("audio")
    p.add_argument("--profile", choices=["default", "test"])
    p.add_argument("--speakers", type=int, default=2, choices=range(1, 6), help="people speaking (default 2)")
    p.set_defaults(func=cmd_transcribe)
    p = sub.add_parser("draft", help="draft a note from a transcript; prints JSON")
    p.add_argument("transcript", help="plain text with SPEAKER: lines, or the JSON from `scribe transcribe`")
    p.add_argument("--note-type", default="soap")
    p.add_argument("--profile", choices=["default", "test"])
    p.set_defaults(func=cmd_draft)
    p = sub.add_parser("redact", help="redact text from standard input; prints JSON (text and spans)")
    p.add_argument("--chart", help="a chart as JSON (given_name, family_name, date_of_birth, mrn, phone, contacts, ...)")
    p.set_defaults(func=cmd_redact)
    p = sub.add_parser("audit", help="verify the audit chain and its anchors, or anchor its head now")
    p.add_argument("action", choices=["verify", "anchor"])
    p.set_defaults(func=cmd_audit)
    p = sub.add_parser("users", help="lift a log-in lock from the console")
    p.add_argument("action", choices=["unlock"])
    p.add_argument("username")
    p.add_argument("--address", default="", help="also clear the throttle on this client address")
    p.set_defaults(func=cmd_users)
    p = sub.add_parser("retention", help="apply policies/retention.yaml (the worker also runs it hourly)")
    p.add_argument("action", choices=["run"])
    p.add_argument("--dry-run", action="store_true", help="print what is due; delete nothing")
    p.set_defaults(func=cmd_retention)
    p = sub.add_parser("backup", help="back up the database, recordings, forms and anchors (encrypted) to DEST")
    p.add_argument("dest")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("backup-keys", help="copy the master, audit and backup keys to DEST (keep it apart from backups)")
    p.add_argument("dest")
    p.set_defaults(func=cmd_backup_keys)
    p = sub.add_parser("restore", help="restore a backup into an empty data directory and verify it")
    p.add_argument("src", help="a scribe-backup-<time> folder made by `scribe backup`")
    p.add_argument("--decode", action="store_true", help="also decode every recording in the sandbox (slower)")
    p.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("presidio-analyzer", "alembic", "faster_whisper", "httpx"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    from scribe.domain.errors import ScribeError

    try:
        return int(args.func(args) or 0)
    except ScribeError as exc:
        return _fail(exc.public_message)


if __name__ == "__main__":
    raise SystemExit(main())
