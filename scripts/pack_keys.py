"""Packs a cluster key directory into one tar for the rollout: ``pack_keys.py DIR TAR``.

The same keys always give the same bytes (fixed times and owners, files in
name order, mode 0600), so a rollout copies the tar only when the keys
changed, and one transfer per board replaces one per key file.
"""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path


def pack(directory: Path, archive: Path) -> bool:
    """Writes ``archive`` from the files of ``directory``; whether its bytes changed."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path in sorted(p for p in directory.iterdir() if p.is_file()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    packed = buffer.getvalue()
    if archive.exists() and archive.read_bytes() == packed:
        return False
    tmp = archive.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_bytes(packed)
    tmp.replace(archive)
    return True


if __name__ == "__main__":
    print("changed" if pack(Path(sys.argv[1]), Path(sys.argv[2])) else "unchanged")
