#!/usr/bin/env python3
"""Writes the seed corpus for the verify_bytes and line_analyzer fuzz targets.

Seeds are small: a few lines of each test vector, the lines around the first
place where a vector differs from the untampered chain, and hand-made hostile
inputs. Run from anywhere: python3 scripts/make_fuzz_seeds.py [VECTORS_DIR]
"""

import hashlib
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
VECTORS = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared/sec006/vectors"
CHAIN_FILE = "decisions_sealed.jsonl"
HEAD_LINES = 4


def write_seed(directory: pathlib.Path, data: bytes) -> None:
    """Write data under its SHA-1 name, as libFuzzer names corpus files."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def vector_seeds() -> list[bytes]:
    plain = (VECTORS / "plain" / CHAIN_FILE).read_bytes().splitlines(keepends=True)
    seeds = []
    for chain in sorted(VECTORS.glob(f"*/{CHAIN_FILE}")):
        lines = chain.read_bytes().splitlines(keepends=True)
        seeds.append(b"".join(lines[:HEAD_LINES]))
        seeds.append(b"".join(lines[-2:]))
        # The window around the first line that differs from the plain chain.
        for number, line in enumerate(lines):
            if number >= len(plain) or plain[number] != line:
                start = max(number - 1, 0)
                seeds.append(b"".join(lines[start : number + 3]))
                break
    return seeds


def hostile_seeds(record: bytes, second: bytes) -> list[bytes]:
    body = record.rstrip(b"\n")
    entry_start = body.index(b'"entry":{') + len(b'"entry":')
    return [
        b"",
        b"\n",
        b"\n\n\n",
        b"\x00" * 64,
        b"\x00" * 16 + b"\n" + record,
        record + b"\x00" * 300 + b"\n" + second,
        # A torn fragment glued to the front of the next record.
        body[:200] + second,
        record + body[: len(body) // 2],
        b"\xef\xbb\xbf" + record + second,
        record.replace(b"\n", b"\r\n") + second.replace(b"\n", b"\r\n"),
        b"[" * 5000 + b"]" * 5000 + b"\n",
        b'{"entry":' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"}\n",
        body.replace(b'"chain_idx":0', b'"chain_idx":1e400') + b"\n",
        body.replace(b'"chain_idx":0', b'"chain_idx":-9223372036854775809') + b"\n",
        body.replace(b'"chain_idx":0', b'"chain_idx":18446744073709551616') + b"\n",
        body.replace(b'"chain_idx":0', b'"chain_idx":0.0') + b"\n",
        body.replace(b'"action":"', b'"action":"\\u0000\\ud800\\udc00\\ude00\\"\\\\\\/\\b\\f\\n\\r\\t\\u2028') + b"\n",
        body.replace(b'"reason":"', b'"reason":"\xff\xfe\xc0\x80') + b"\n",
        body.replace(b'"reason":"', b'"reason":"\\') + b"\n",
        body[:entry_start] + b"null" + body[body.index(b',"hash"') :] + b"\n",
        body.replace(b'"timestamp":"', b'"timestamp":"9999-12-31T23:59:60.9999999999+25:00') + b"\n",
        body.replace(b'{"entry"', b'{"entry":{},"entry"', 1) + b"\n",
        record * 3,
        b'{"entry":{"previous_hash":"genesis"},"hash":"","signature":"","pcr_value":"","seal_mode":"","chain_idx":0}\n',
    ]


def main() -> None:
    plain = (VECTORS / "plain" / CHAIN_FILE).read_bytes().splitlines(keepends=True)
    corpus = REPO / "fuzz" / "corpus"
    for seed in vector_seeds() + hostile_seeds(plain[0], plain[1]):
        write_seed(corpus / "verify_bytes", seed)
        for line in seed.split(b"\n")[:HEAD_LINES]:
            write_seed(corpus / "line_analyzer", line)
    for target in ("verify_bytes", "line_analyzer"):
        count = len(list((corpus / target).iterdir()))
        print(f"{target}: {count} seeds")


if __name__ == "__main__":
    main()
