"""Builds the byte-level corpus: Debian's English fortune databases, split by fortune.

    /usr/bin/python3 -m attnkit_train.data --out tooling/train/data

Every fortune (the text between two `%` lines) is one record. A record goes to validation iff the
first 8 bytes of its SHA-256, read as a big-endian integer, are ≡ 0..4 (mod 100) — about 5 %,
decided by the text alone, so duplicates never straddle the split and the split does not depend
on file order. Records with control characters other than newline and tab (overstruck
"bold" in `law` and `wisdom`) are dropped. Each split is written as its records joined in
source order in the fortune format (`record\\n%\\n`), one byte per token (vocabulary 256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
from typing import Dict, List, Tuple

SOURCE_DIR = "/usr/share/games/fortunes"
# English, non-offensive databases of Debian's `fortunes` and `fortunes-min` packages; left out:
# ascii-art (pictures, not prose) and translate-me (not English).
SOURCE_FILES = sorted(
    """art computers cookie debian definitions disclaimer drugs education ethnic food fortunes goedel
    humorists kids knghtbrd law linux linuxcookie literature love magic medicine men-women
    miscellaneous news paradoxum people perl pets platitudes politics pratchett riddles science
    songs-poems sports startrek tao wisdom work zippy""".split()
)
PACKAGES = ("fortunes", "fortunes-min")
VALIDATION_PERCENT = 5
SEPARATOR = b"\n%\n"


def records(raw: bytes) -> List[bytes]:
    out = []
    for chunk in raw.replace(b"\r\n", b"\n").split(b"\n%\n"):
        text = chunk.strip(b"\n").rstrip()
        if text.startswith(b"%\n"):
            text = text[2:]
        if text and text != b"%":
            out.append(text)
    return out


def is_clean(record: bytes) -> bool:
    if any(b < 32 and b not in (9, 10) for b in record) or 127 in record:
        return False
    try:
        record.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_validation(record: bytes) -> bool:
    return int.from_bytes(hashlib.sha256(record).digest()[:8], "big") % 100 < VALIDATION_PERCENT


def package_versions() -> Dict[str, str]:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            versions[pkg] = "unknown"
    return versions


def build(source_dir: str) -> Tuple[bytes, bytes, dict]:
    train: List[bytes] = []
    val: List[bytes] = []
    files = []
    dropped = 0
    for name in SOURCE_FILES:
        path = os.path.join(source_dir, name)
        with open(path, "rb") as f:
            raw = f.read()
        kept = 0
        for rec in records(raw):
            if not is_clean(rec):
                dropped += 1
                continue
            (val if is_validation(rec) else train).append(rec)
            kept += 1
        files.append({"file": path, "bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest(), "records": kept})
    train_bytes = b"".join(r + SEPARATOR for r in train)
    val_bytes = b"".join(r + SEPARATOR for r in val)
    manifest = {
        "packages": package_versions(),
        "files": files,
        "records": {"train": len(train), "validation": len(val), "dropped_control_chars": dropped},
        "bytes": {"train": len(train_bytes), "validation": len(val_bytes)},
        "split": f"validation iff int.from_bytes(sha256(record)[:8], 'big') % 100 < {VALIDATION_PERCENT}",
        "format": "records joined as record + b'\\n%\\n', one byte per token",
        "sha256": {"train.bin": hashlib.sha256(train_bytes).hexdigest(), "val.bin": hashlib.sha256(val_bytes).hexdigest()},
    }
    return train_bytes, val_bytes, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=SOURCE_DIR, help="folder of the fortune databases")
    parser.add_argument("--out", required=True, help="output folder for train.bin, val.bin, corpus.json")
    args = parser.parse_args()
    train, val, manifest = build(args.source)
    os.makedirs(args.out, exist_ok=True)
    for name, blob in (("train.bin", train), ("val.bin", val)):
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(blob)
    with open(os.path.join(args.out, "corpus.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(json.dumps({"records": manifest["records"], "bytes": manifest["bytes"]}))


if __name__ == "__main__":
    main()
