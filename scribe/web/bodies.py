"""Request bodies: counted, bounded per route, and never on disk in plaintext.

Every route declares what body it takes (``takes(Body.UPLOAD)`` on the endpoint; an
ordinary form by default, none on GET). The route class counts the bytes as they are
received, whatever ``Content-Length`` says (chunked bodies have none), and answers 413
the moment a body passes its route's limit: before log-in, CSRF or form parsing finish.

Multipart bodies are parsed here with python-multipart, not by Starlette's parser, whose
file parts spill to the process-wide temporary directory in plaintext past 1 MB. A file
part goes into a :class:`SealedSpool`: an unlinked file in the data directory's spool,
encrypted in 64 KiB AES-GCM records under a key that exists only in this process's
memory for this one request. A crash leaves nothing readable; nothing is process-global."""

from __future__ import annotations

import io
import os
import secrets
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import FormParser
from starlette.types import Message

RECORD = 64 << 10
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class Body(StrEnum):
    """What a route accepts. The byte limits of upload-like kinds come from the policies."""

    NONE = "none"        # GET pages and anything else that takes no body
    FORM = "form"        # ordinary forms: fields only, no files
    UPLOAD = "upload"    # one recording (pipeline.upload.max_bytes)
    SCAN = "scan"        # one scanned consent form
    CHUNK = "chunk"      # raw bytes of one recorder chunk


FORM_BYTES = 256 << 10
FORM_FIELDS = 200
FIELD_BYTES = 64 << 10
F = TypeVar("F", bound=Callable[..., Any])


def takes(kind: Body) -> Callable[[F], F]:
    """Declare on an endpoint the body its route accepts."""

    def mark(endpoint: F) -> F:
        endpoint.body_kind = kind  # type: ignore[attr-defined]
        return endpoint

    return mark


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(413, "The upload is larger than this practice allows.")


class SealedSpool(io.RawIOBase):
    """Write once, then read back (after ``seek(0)``): plaintext only ever in memory.

    On disk: records of ``[4-byte length][AES-GCM ciphertext]``, nonce = record number,
    under a random key held by this object alone. The file is unlinked from birth."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - O_TMPFILE: no name, ever; closed by close()
        self._aead = AESGCM(secrets.token_bytes(32))
        self._pending = bytearray()
        self._written = 0
        self._records = 0
        self._reading = False
        self._out = b""
        self._next = 0

    @property
    def size(self) -> int:
        return self._written

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return not self._reading

    def seekable(self) -> bool:
        return True

    def _emit(self, plain: bytes) -> None:
        nonce = struct.pack(">4xQ", self._records)
        sealed = self._aead.encrypt(nonce, plain, None)
        self._file.write(struct.pack(">I", len(sealed)) + sealed)
        self._records += 1

    def write(self, data: Any) -> int:
        if self._reading:
            raise io.UnsupportedOperation("the spool is sealed for reading")
        view = bytes(data)
        self._pending += view
        self._written += len(view)
        while len(self._pending) >= RECORD:
            self._emit(bytes(self._pending[:RECORD]))
            del self._pending[:RECORD]
        return len(view)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if (offset, whence) != (0, os.SEEK_SET):
            raise io.UnsupportedOperation("the spool rewinds to its start only")
        if not self._reading:
            if self._pending:
                self._emit(bytes(self._pending))
                self._pending.clear()
            self._file.flush()
            self._reading = True
        self._file.seek(0)
        self._out, self._next = b"", 0
        return 0

    def tell(self) -> int:
        return self._written if not self._reading else -1

    def _record(self) -> bytes:
        head = self._file.read(4)
        if not head:
            return b""
        (length,) = struct.unpack(">I", head)
        nonce = struct.pack(">4xQ", self._next)
        self._next += 1
        return self._aead.decrypt(nonce, self._file.read(length), None)

    def read(self, size: int | None = -1) -> bytes:
        if not self._reading:
            self.seek(0)
        want = None if size is None or size < 0 else size
        parts = [self._out]
        have = len(self._out)
        while want is None or have < want:
            record = self._record()
            if not record:
                break
            parts.append(record)
            have += len(record)
        data = b"".join(parts)
        if want is None:
            self._out = b""
            return data
        self._out = data[want:]
        return data[:want]

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
            self._pending.clear()
        super().close()


@dataclass(frozen=True)
class Limits:
    total: int  # bytes of the whole body
    files: int  # file parts
    file_bytes: int  # bytes of one file part


def limits_for(kind: Body, request: Request) -> Limits:
    from scribe.services.consent import MAX_SCAN_BYTES
    from scribe.services.recording import MAX_CHUNK_BYTES

    upload = request.app.state.runtime.policies.pipeline.upload.max_bytes
    return {
        Body.NONE: Limits(0, 0, 0),
        Body.FORM: Limits(FORM_BYTES, 0, 0),
        Body.UPLOAD: Limits(upload + FORM_BYTES, 1, upload),
        Body.SCAN: Limits(MAX_SCAN_BYTES + FORM_BYTES, 1, MAX_SCAN_BYTES),
        Body.CHUNK: Limits(MAX_CHUNK_BYTES + 1, 0, 0),
    }[kind]


class BoundedRequest(Request):
    """A request whose body is counted against its route's limit and whose multipart
    files are sealed spools in the data directory's spool folder."""

    def __init__(self, request: Request, limits: Limits, spool_dir: Path) -> None:
        self._limits, self._spool_dir, self._seen = limits, spool_dir, 0
        super().__init__(request.scope, self._counting(request.receive))

    def _counting(self, receive: Callable[[], Awaitable[Message]]) -> Callable[[], Awaitable[Message]]:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self._seen += len(message.get("body", b""))
                if self._seen > self._limits.total:
                    raise BodyTooLarge()
            return message

        return counted

    async def _get_form(self, *, max_files: int | float = 1000, max_fields: int | float = 1000,
                        max_part_size: int = 1024 * 1024) -> FormData:
        if self._form is None:
            content_type, _ = parse_options_header(self.headers.get("content-type", ""))
            if content_type == b"multipart/form-data":
                self._form = await parse_multipart(self.headers, self.stream(), self._limits, self._spool_dir)
            elif content_type == b"application/x-www-form-urlencoded":
                parser = FormParser(self.headers, self.stream(), max_fields=FORM_FIELDS, max_part_size=FIELD_BYTES)
                try:
                    self._form = await parser.parse()
                except HTTPException:
                    raise
                except Exception:
                    raise HTTPException(400, "The form could not be read.") from None
            else:
                self._form = FormData()
        return self._form


async def parse_multipart(headers: Headers, stream: AsyncIterator[bytes], limits: Limits,
                          spool_dir: Path) -> FormData:
    """Fields in memory (bounded), file parts into sealed spools (bounded)."""
    _, params = parse_options_header(headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPException(400, "The form could not be read.")
    items: list[tuple[str, str | UploadFile]] = []
    spools: list[SealedSpool] = []
    state: dict[str, Any] = {"headers": [], "name": b"", "value": b""}
    fields = 0

    def begin() -> None:
        state.update(headers=[], name=b"", value=b"", field=None, data=bytearray(), spool=None, upload=None)

    def header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def header_end() -> None:
        state["headers"].append((state["name"].lower(), state["value"]))
        state["name"], state["value"] = b"", b""

    def headers_finished() -> None:
        nonlocal fields
        disposition = dict(state["headers"]).get(b"content-disposition", b"")
        _, options = parse_options_header(disposition)
        if b"name" not in options:
            raise HTTPException(400, "The form could not be read.")
        state["field"] = options[b"name"].decode("utf-8", "replace")
        if b"filename" in options:
            if sum(1 for _, v in items if isinstance(v, UploadFile)) + (state["spool"] is not None) >= limits.files:
                raise HTTPException(400, "This form takes no more files.")
            spool = SealedSpool(spool_dir)
            spools.append(spool)
            state["spool"] = spool
            state["upload"] = UploadFile(file=spool, size=0,  # type: ignore[arg-type]
                                         filename=options[b"filename"].decode("utf-8", "replace"),
                                         headers=Headers(raw=state["headers"]))
        else:
            fields += 1
            if fields > FORM_FIELDS:
                raise HTTPException(400, "The form has too many fields.")

    def part_data(data: bytes, start: int, end: int) -> None:
        spool: SealedSpool | None = state["spool"]
        if spool is None:
            state["data"] += data[start:end]
            if len(state["data"]) > FIELD_BYTES:
                raise HTTPException(400, "A form field is too long.")
            return
        spool.write(data[start:end])
        if spool.size > limits.file_bytes:
            raise BodyTooLarge()

    def part_end() -> None:
        if state["spool"] is None:
            items.append((state["field"], bytes(state["data"]).decode("utf-8", "replace")))
        else:
            state["spool"].seek(0)
            state["upload"].size = state["spool"].size
            items.append((state["field"], state["upload"]))

    parser = MultipartParser(boundary, {"on_part_begin": begin, "on_header_field": header_field,
                                        "on_header_value": header_value, "on_header_end": header_end,
                                        "on_headers_finished": headers_finished, "on_part_data": part_data,
                                        "on_part_end": part_end})
    begin()
    try:
        async for chunk in stream:
            parser.write(chunk)
        parser.finalize()
    except HTTPException:
        for spool in spools:
            spool.close()
        raise
    except Exception:
        for spool in spools:
            spool.close()
        raise HTTPException(400, "The form could not be read.") from None
    return FormData(items)


class BoundedRoute(APIRoute):
    """Every scribe route: its body is counted against the kind its endpoint declares."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = getattr(self.endpoint, "body_kind", None)

        async def bounded(request: Request) -> Response:
            kind = declared or (Body.NONE if request.method in SAFE_METHODS else Body.FORM)
            limits = limits_for(kind, request)
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limits.total):
                raise BodyTooLarge()  # refused before a byte of it is read
            runtime = request.app.state.runtime
            if kind in (Body.UPLOAD, Body.SCAN, Body.CHUNK):
                from scribe.web.deps import get_login

                get_login(request, runtime)  # no recording is received from someone not logged in
            return await handler(BoundedRequest(request, limits, runtime.spool_dir))

        return bounded
