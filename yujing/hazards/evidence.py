"""Evidence files of a hazard (photos, PDFs): the type is read from the file's first bytes,
not from what the client claims; each is stored with its SHA-256, in the same transaction
as the step that records it, so a refused or failed upload leaves nothing behind."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ulid import ULID

from yujing.db import Conn

# The signatures of the accepted types (JPEG: SOI + marker; PNG: its 8-byte header; PDF).
SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)
ACCEPTED = tuple(t for _, t in SIGNATURES)


class Refused(Exception):
    """An upload that is not kept; `status` is the HTTP status to give."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def sniff(head: bytes) -> str | None:
    return next((kind for magic, kind in SIGNATURES if head.startswith(magic)), None)


def check(body: bytes, claimed: str | None, max_bytes: int) -> str:
    """The content type to store, or a refusal (empty, too large, not JPEG/PNG/PDF, or a
    declared type that contradicts the bytes)."""
    if not body:
        raise Refused(422, "the file is empty")
    if len(body) > max_bytes:
        raise Refused(413, f"the file is larger than {max_bytes} bytes")
    kind = sniff(body[:16])
    if kind is None:
        raise Refused(415, f"only {', '.join(ACCEPTED)} files are accepted (read from the bytes)")
    declared = (claimed or "").split(";")[0].strip().lower()
    if declared not in ("", "application/octet-stream", kind):
        raise Refused(415, f"the file is {kind}, not the declared {declared}")
    return kind


@dataclass(frozen=True, slots=True)
class Evidence:
    id: str
    hazard_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "hazard_id": self.hazard_id, "filename": self.filename,
            "content_type": self.content_type, "size": self.size, "sha256": self.sha256,
            "uploaded_by": self.uploaded_by, "uploaded_at": self.uploaded_at.isoformat(),
            "href": f"/api/v1/hazards/{self.hazard_id}/evidence/{self.id}",
        }  # fmt: skip


_META = "id, hazard_id, filename, content_type, size, sha256, uploaded_by, uploaded_at"


async def insert(
    conn: Conn, hazard_id: str, filename: str, kind: str, body: bytes, who: str, now: datetime
) -> Evidence:
    e = Evidence(
        f"ev-{ULID()}", hazard_id, filename[:200] or "evidence", kind, len(body),
        hashlib.sha256(body).hexdigest(), who, now,
    )  # fmt: skip
    await conn.execute(
        f"INSERT INTO hazard_evidence ({_META}, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        e.id, e.hazard_id, e.filename, e.content_type, e.size, e.sha256, who, now, body,
    )  # fmt: skip
    return e


async def count_since(conn: Conn, hazard_id: str, since: datetime | None) -> int:
    n = await conn.fetchval(
        "SELECT count(*) FROM hazard_evidence WHERE hazard_id = $1"
        " AND ($2::timestamptz IS NULL OR uploaded_at >= $2)",
        hazard_id, since,
    )  # fmt: skip
    return int(n)


async def listing(conn: Conn, hazard_id: str) -> list[Evidence]:
    rows = await conn.fetch(
        f"SELECT {_META} FROM hazard_evidence WHERE hazard_id = $1 ORDER BY uploaded_at, id",
        hazard_id,
    )
    return [Evidence(**dict(r)) for r in rows]


async def body(conn: Conn, hazard_id: str, evidence_id: str) -> tuple[Evidence, bytes] | None:
    row = await conn.fetchrow(
        f"SELECT {_META}, body FROM hazard_evidence WHERE hazard_id = $1 AND id = $2",
        hazard_id, evidence_id,
    )  # fmt: skip
    if row is None:
        return None
    data = dict(row)
    return Evidence(**{k: v for k, v in data.items() if k != "body"}), bytes(data["body"])
