"""A Cloud Storage bucket in memory, with the few calls the event history and the claims make
(create-if-absent by generation, read, list by prefix and delimiter, delete) and a count of the objects each listing returned:
a test of 100,000 records without 100,000 uploads to an emulator."""

from __future__ import annotations

import itertools
from typing import Any

from google.api_core.exceptions import PreconditionFailed


class MemoryBlob:
    def __init__(self, bucket: "MemoryBucket", name: str) -> None:
        self.bucket, self.name = bucket, name

    @property
    def generation(self) -> int | None:
        stored = self.bucket.objects.get(self.name)
        return stored[1] if stored else None

    def upload_from_string(self, data: Any, content_type: str = "text/plain", if_generation_match: int | None = None,
                           **_: Any) -> None:
        self.bucket.calls += 1
        if self.bucket.fail_writes:
            raise ConnectionError("the bucket is down")
        if if_generation_match is not None and (self.generation or 0) != if_generation_match:
            raise PreconditionFailed("generation mismatch")
        data = data.encode("utf-8") if isinstance(data, str) else data
        self.bucket.objects[self.name] = (data, next(self.bucket.generations))

    def download_as_bytes(self, **_: Any) -> bytes:
        self.bucket.calls += 1
        return self.bucket.objects[self.name][0]

    def download_as_text(self, **_: Any) -> str:
        return self.download_as_bytes().decode("utf-8")  # one call, counted there


class Listing(list):
    prefixes: set[str]


class MemoryBucket:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, int]] = {}
        self.generations = itertools.count(1)
        self.listed = 0
        self.calls = 0  # requests a real bucket would have answered: uploads, downloads, reads of metadata
        self.fail_writes = False

    def blob(self, name: str) -> MemoryBlob:
        return MemoryBlob(self, name)

    def get_blob(self, name: str, **_: Any) -> MemoryBlob | None:
        self.calls += 1
        return MemoryBlob(self, name) if name in self.objects else None

    def list_blobs(self, prefix: str = "", delimiter: str | None = None, **_: Any) -> Listing:
        listing, prefixes = Listing(), set()
        for name in sorted(self.objects):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if delimiter and delimiter in rest:
                prefixes.add(prefix + rest.split(delimiter, 1)[0] + delimiter)
            else:
                listing.append(MemoryBlob(self, name))
        self.listed += len(listing)
        listing.prefixes = prefixes
        return listing

    def delete_blob(self, name: str, if_generation_match: int | None = None, **_: Any) -> None:
        from google.api_core.exceptions import NotFound

        self.calls += 1
        if name not in self.objects:
            raise NotFound("no such object")
        if if_generation_match is not None and self.objects[name][1] != if_generation_match:
            raise PreconditionFailed("generation mismatch")
        del self.objects[name]


class MemoryStore:
    """What ``EventHistory`` takes of ``StateStore``: its bucket."""

    def __init__(self, bucket: MemoryBucket) -> None:
        self._bucket = bucket

    def bucket(self) -> MemoryBucket:
        return self._bucket

    def dead_letters(self) -> list[str]:
        return sorted(name for name in self._bucket.objects if name.startswith("dead-letters/"))
