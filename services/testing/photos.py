"""Photos the service keeps (disinfection records, antigen cassettes): files under the service's data dir.

A photo's id is the SHA-256 of its bytes, so storing the same photo twice keeps one file, and a stored
file can be checked against its id. The type comes from the first bytes (``domain.photo_type``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import BinaryIO

from contracts.testing import StoredPhoto
from juwei.problems import Problem
from services.testing.domain import MAX_PHOTO_BYTES, photo_type

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_PHOTO_ID = re.compile(r"^[0-9a-f]{64}$")
_COMPOUND = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class PhotoAlbum:
    """``<data dir>/testing/photos/<compound>/<sha256>.<ext>``."""

    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "testing" / "photos"

    def keep(self, compound: str, upload: BinaryIO, label: str = "photo") -> StoredPhoto:
        """Check and store one uploaded photo; 413 when too large, 415 when not JPEG, PNG or WebP."""
        data = upload.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise Problem(413, f"{label} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB", "photo-too-large")
        if not data:
            raise Problem(422, f"{label} is empty", "photo-empty")
        content_type = photo_type(data)
        if content_type is None:
            raise Problem(415, f"{label} is not a JPEG, PNG or WebP image", "photo-type")
        photo_id = hashlib.sha256(data).hexdigest()
        path = self._path(compound, photo_id, content_type)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(path.suffix + f".{secrets.token_hex(8)}.part")  # one per upload
            partial.write_bytes(data)
            partial.replace(path)  # atomic: a reader never sees half a photo
        return StoredPhoto(photo=photo_id, content_type=content_type, size=len(data))

    def find(self, compound: str, photo_id: str) -> tuple[Path, str]:
        """The stored file of a photo named in an event (which carries only its id) and its type."""
        if _PHOTO_ID.match(photo_id):
            for content_type in EXTENSIONS:
                found = self._path(compound, photo_id, content_type)
                if found.is_file():
                    return found, content_type
        raise Problem(404, "the photo's file is missing", "photo-unknown")

    def _path(self, compound: str, photo_id: str, content_type: str) -> Path:
        if not _COMPOUND.match(compound):
            raise Problem(422, "invalid compound id", "validation")
        return self.root / compound / f"{photo_id}.{EXTENSIONS[content_type]}"
