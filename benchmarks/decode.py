"""Parts 1 and 2: decode throughput against the peers, and the scaling run.

Part 1 decodes one stream per (framing, payload size, chunking) with every
contestant, checks that each produced exactly the frames encoded, and keeps the
best of ``BENCH_REPEATS`` (default 3) runs: the least disturbed by a shared machine.

Part 2 feeds our framers streams of 1 to 64 MiB and reports the cost per byte,
which must stay flat (no quadratic copying): many small frames in one chunk, and
one message as large as the stream in 4 KiB chunks.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import decoders
from benchmarks.common import BUILD, HERE, best_of, env_int, gc_paused, log, quick

FRAMINGS = ("len2", "len4", "lines", "crlf")
FRAMING_NAMES = {
    "len2": "LengthPrefixed(2)",
    "len4": "LengthPrefixed(4)",
    "lines": "Lines()",
    "crlf": 'Delimited(b"\\r\\n")',
}
PAYLOADS = (16, 64, 512, 16384)
CHUNKINGS = ("64k", "random")
CHUNKING_NAMES = {"64k": "64 KiB chunks", "random": "random 1..4096-byte chunks"}
SEED = 20260401

#: Per framing: the contestants, in table order. "ours" first, "c" last. "ours" is
#: the framer as installed (with the C accelerator when it was built); "python" is
#: the same framer on its pure-Python path, what a user without a compiler gets.
PEERS = {
    "len2": ("ours", "python", "careful", "twisted", "asyncio", "anyio", "c"),
    "len4": ("ours", "python", "careful", "twisted", "asyncio", "anyio", "c"),
    "lines": ("ours", "python", "careful", "find", "twisted", "asyncio", "anyio", "c"),
    "crlf": ("ours", "python", "careful", "find", "twisted", "asyncio", "anyio", "c"),
}
CONTESTANT_NAMES = {
    "len2": {
        "ours": "framing LengthPrefixed(2)",
        "python": "ours, pure-Python path",
        "careful": "careful pure-Python loop",
        "twisted": "Twisted Int16StringReceiver",
        "asyncio": "asyncio StreamReader.readexactly",
        "anyio": "anyio BufferedByteReceiveStream.receive_exactly",
        "c": "C reference",
    },
    "len4": {
        "ours": "framing LengthPrefixed(4)",
        "python": "ours, pure-Python path",
        "careful": "careful pure-Python loop",
        "twisted": "Twisted Int32StringReceiver",
        "asyncio": "asyncio StreamReader.readexactly",
        "anyio": "anyio BufferedByteReceiveStream.receive_exactly",
        "c": "C reference",
    },
    "lines": {
        "ours": "framing Lines()",
        "python": "ours, pure-Python path",
        "careful": "careful bytes.split decoder",
        "find": "bytes.find loop",
        "twisted": "Twisted LineOnlyReceiver",
        "asyncio": "asyncio StreamReader.readuntil",
        "anyio": "anyio BufferedByteReceiveStream.receive_until",
        "c": "C reference",
    },
    "crlf": {
        "ours": 'framing Delimited(b"\\r\\n")',
        "python": "ours, pure-Python path",
        "careful": "careful bytes.split decoder",
        "find": "bytes.find loop",
        "twisted": "Twisted LineOnlyReceiver",
        "asyncio": "asyncio StreamReader.readuntil",
        "anyio": "anyio BufferedByteReceiveStream.receive_until",
        "c": "C reference",
    },
}


# -- streams ---------------------------------------------------------------------


def frame_count(payload: int) -> int:
    """Frames per stream: about 1 MiB of stream, at least 256 frames, at most 60 000."""
    target = (256 << 10) if quick() else (1 << 20)
    cap = 20_000 if quick() else 60_000
    return max(64 if quick() else 256, min(cap, target // (payload + 2)))


def make_payloads(framing: str, size: int, count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    blob = rng.randbytes(size * count)
    if framing in decoders.DELIMITER:
        # No \n or \r inside a line: map them to letters.
        blob = blob.translate(bytes.maketrans(b"\n\r", b"nr"))
    return [blob[i : i + size] for i in range(0, size * count, size)]


def encode(framing: str, payloads: Sequence[bytes]) -> bytes:
    if framing in decoders.WIDTH:
        width = decoders.WIDTH[framing]
        return b"".join(len(p).to_bytes(width, "big") + p for p in payloads)
    delimiter = decoders.DELIMITER[framing]
    return delimiter.join(payloads) + delimiter


def chunk_sizes(total: int, chunking: str, seed: int) -> list[int]:
    if chunking == "64k":
        sizes = [65536] * (total // 65536)
        if total % 65536:
            sizes.append(total % 65536)
        return sizes
    if chunking.startswith("fixed:"):
        step = int(chunking.split(":", 1)[1])
        sizes = [step] * (total // step)
        if total % step:
            sizes.append(total % step)
        return sizes
    rng = random.Random(seed)
    sizes = []
    left = total
    while left:
        n = min(left, rng.randint(1, 4096))
        sizes.append(n)
        left -= n
    return sizes


def cut(stream: bytes, sizes: Sequence[int]) -> list[bytes]:
    chunks = []
    pos = 0
    for n in sizes:
        chunks.append(stream[pos : pos + n])
        pos += n
    return chunks


# -- the C reference -------------------------------------------------------------------


def build_c() -> Path | None:
    """Compile the C reference with ``cc -O2``; ``None`` when there is no compiler."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        log("decode: no C compiler, the C reference is left out")
        return None
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / "ref_decode"
    subprocess.run(
        [cc, "-O2", "-o", str(binary), str(HERE / "ref_decode.c")],
        check=True,
    )
    return binary


class CReference:
    """Runs the compiled reference on a stream written to a temporary directory."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir

    def run(
        self,
        framing: str,
        stream: bytes,
        sizes: Sequence[int],
        expected: Sequence[bytes],
        repeats: int,
    ) -> tuple[int, int, bool]:
        """Return (best ns, frames, verified) for the reference on this stream."""
        stream_file = self.workdir / "stream.bin"
        chunks_file = self.workdir / "chunks.bin"
        stream_file.write_bytes(stream)
        chunks_file.write_bytes(b"".join(n.to_bytes(4, "little") for n in sizes))
        args = [str(stream_file), str(chunks_file)]
        dumped = subprocess.run(
            [str(self.binary), "dump", framing, *args, "1"], capture_output=True, check=True
        ).stdout
        want = b"".join(len(p).to_bytes(4, "little") + p for p in expected)
        verified = dumped == want
        out = subprocess.run(
            [str(self.binary), "time", framing, *args, str(repeats * 3)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        best, frames, checksum = int(out[0]), int(out[1]), int(out[2])
        verified = verified and frames == len(expected) and checksum == light_checksum(expected)
        return best, frames, verified


def light_checksum(frames: Sequence[bytes]) -> int:
    """The C reference's timed-mode checksum: length, first and last byte of each frame."""
    h = 0
    mask = (1 << 64) - 1
    for p in frames:
        h = (h * 31 + len(p)) & mask
        if p:
            h = ((h * 31 + p[0]) * 31 + p[-1]) & mask
    return h


# -- part 1 -----------------------------------------------------------------------------


def contestant(framing: str, name: str) -> decoders.Contestant:
    if name == "careful":
        return (
            decoders.careful_length(framing)
            if framing in decoders.WIDTH
            else (decoders.careful_split(framing))
        )
    makers: dict[str, Callable[[str], decoders.Contestant]] = {
        "ours": decoders.ours,
        "python": partial(decoders.ours, pure=True),
        "find": decoders.find_loop,
        "twisted": decoders.twisted_receiver,
        "asyncio": decoders.asyncio_reader,
        "anyio": decoders.anyio_buffered,
    }
    if name not in makers:
        raise ValueError(name)
    return makers[name](framing)


def _measure_cell(
    framing: str,
    *,
    payload: int,
    chunking: str,
    payloads: list[bytes],
    stream: bytes,
    sizes: list[int],
    runners: dict[str, decoders.Contestant],
    cref: CReference | None,
    repeats: int,
) -> list[dict[str, Any]]:
    """Every contestant on one stream, round-robin: repeat r of each before repeat r + 1.

    Taking turns spreads a burst of load from elsewhere over all contestants
    instead of landing on one, so the ratios between them stay fair.
    """
    chunks = cut(stream, sizes)
    names = [n for n in PEERS[framing] if n in runners]
    best: dict[str, int] = {}
    frames: dict[str, list[bytes]] = {}
    failed: dict[str, str] = {}
    for _ in range(repeats):
        for name in names:
            if name in failed:
                continue
            try:
                with gc_paused():
                    result, elapsed = runners[name](chunks)
            except Exception as exc:  # a contestant that breaks is reported, not fatal
                failed[name] = f"{type(exc).__name__}: {exc}"
                log(f"decode {framing} {payload} {chunking} {name} FAILED: {failed[name]}")
                continue
            best[name] = min(best.get(name, elapsed), elapsed)
            frames[name] = result
    rows = []
    for name in PEERS[framing]:
        row: dict[str, Any] = {
            "framing": framing,
            "payload": payload,
            "chunking": chunking,
            "contestant": name,
            "bytes": len(stream),
            "chunks": len(chunks),
        }
        if name == "c":
            if cref is None:
                continue
            try:
                ns, count, verified = cref.run(framing, stream, sizes, payloads, repeats)
            except (OSError, subprocess.SubprocessError, ValueError) as exc:
                log(f"decode {framing} {payload} {chunking} C FAILED: {exc}")
                continue
            row.update(frames=count, verified=verified, best_ns=ns)
        elif name in failed:
            row.update(
                frames=0,
                verified=False,
                best_ns=0,
                frames_per_s=0.0,
                mb_per_s=0.0,
                error=failed[name],
            )
            rows.append(row)
            continue
        elif name in best:
            row.update(
                frames=len(frames[name]), verified=frames[name] == payloads, best_ns=best[name]
            )
        else:
            continue
        row["frames_per_s"] = len(payloads) / (row["best_ns"] / 1e9)
        row["mb_per_s"] = len(stream) / (row["best_ns"] / 1e9) / 1e6
        rows.append(row)
    return rows


def run_decode() -> dict[str, Any]:
    repeats = env_int("BENCH_REPEATS", 2 if quick() else 5)
    binary = build_c()
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="framing-bench-") as tmp:
        cref = CReference(binary, Path(tmp)) if binary else None
        for framing in FRAMINGS:
            runners: dict[str, decoders.Contestant] = {}
            for name in PEERS[framing]:
                if name == "c":
                    continue
                try:
                    runners[name] = contestant(framing, name)
                except ImportError as exc:
                    notes.append(f"{CONTESTANT_NAMES[framing][name]}: not run ({exc})")
                    log(f"decode: {framing} {name} not available: {exc}")
            for payload in PAYLOADS:
                count = frame_count(payload)
                payloads = make_payloads(framing, payload, count, SEED + payload)
                stream = encode(framing, payloads)
                for chunking in CHUNKINGS:
                    sizes = chunk_sizes(len(stream), chunking, SEED)
                    cell = _measure_cell(
                        framing,
                        payload=payload,
                        chunking=chunking,
                        payloads=payloads,
                        stream=stream,
                        sizes=sizes,
                        runners=runners,
                        cref=cref,
                        repeats=repeats,
                    )
                    rows += cell
                    for row in cell:
                        if "error" in row:
                            notes.append(
                                f"{CONTESTANT_NAMES[framing][row['contestant']]} {framing} "
                                f"{payload} {chunking}: FAILED ({row['error']})"
                            )
                        elif not row["verified"]:
                            notes.append(
                                f"{CONTESTANT_NAMES[framing][row['contestant']]} {framing} "
                                f"{payload} {chunking}: WRONG FRAMES ({row['frames']} of {count})"
                            )
                    log(
                        f"decode {framing:5} {payload:5} {chunking:6} "
                        + " ".join(
                            f"{r['contestant']}={r['frames_per_s'] / 1e6:.2f}M"
                            + ("" if r["verified"] else "(WRONG)")
                            for r in cell
                        )
                    )
    return {
        "rows": rows,
        "notes": notes,
        "repeats": repeats,
        "statistic": f"best of {repeats} runs, contestants taking turns (C: best of {repeats * 3})",
        "accelerator": _accelerator(),
        "seconds": time.monotonic() - started,
    }


def _accelerator() -> str:
    """Which path "ours" ran: with the C accelerator, or pure Python (and why)."""
    from framing import _accel

    if _accel.enabled():
        return "on"
    return "off (FRAMING_NO_EXTENSIONS=1)" if _accel.available else "off (not built)"


# -- part 2: scaling ----------------------------------------------------------------------


SCALING_SIZES_MIB = (1, 4, 16, 64)


def _feed_all(factory: Callable[[], Any], chunks: Sequence[bytes]) -> tuple[tuple[int, int], int]:
    """Feed every chunk; return ((messages, payload bytes), elapsed ns)."""
    framer = factory()
    feed = framer.feed
    count = size = 0
    start = time.perf_counter_ns()
    for chunk in chunks:
        out = feed(chunk)
        count += len(out)
        size += sum(map(len, out))
    out = framer.feed_eof()
    count += len(out)
    size += sum(map(len, out))
    return (count, size), time.perf_counter_ns() - start


def run_scaling() -> dict[str, Any]:
    """ns per byte for streams of 1..64 MiB, in two shapes, for LengthPrefixed and Lines."""
    repeats = env_int("BENCH_REPEATS", 2 if quick() else 3)
    sizes_mib = SCALING_SIZES_MIB[:2] if quick() else SCALING_SIZES_MIB
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    started = time.monotonic()
    for framing in ("len2", "lines"):
        try:
            small_factory = decoders.make_ours(framing)
        except ImportError as exc:
            notes.append(f"{FRAMING_NAMES[framing]}: not run ({exc})")
            continue
        for mib in sizes_mib:
            total = mib << 20
            # Shape 1: 64-byte frames, the whole stream in one chunk.
            count = total // 66
            payloads = make_payloads(framing, 64, count, SEED + mib)
            stream = encode(framing, payloads)
            (got, best, _) = best_of(repeats, partial(_feed_all, small_factory, [stream]))
            rows.append(
                _scaling_row(
                    framing,
                    "small frames, one chunk",
                    mib=mib,
                    size=len(stream),
                    got=got,
                    expected=(count, 64 * count),
                    best=best,
                )
            )
            # The control: the careful pure-Python decoder on the same stream. If its
            # cost per byte grows as ours does, the growth is the price of holding a
            # million messages at once (allocator, caches), not the framer's algorithm.
            careful = contestant(framing, "careful")
            (frames, best, _) = best_of(repeats, partial(careful, [stream]))
            rows.append(
                _scaling_row(
                    framing,
                    "control: careful decoder, small frames, one chunk",
                    mib=mib,
                    size=len(stream),
                    got=(len(frames), sum(map(len, frames))),
                    expected=(count, 64 * count),
                    best=best,
                )
            )
            del payloads, stream, frames
            # Shape 2: one message as large as the stream, in 4 KiB chunks. Width 2 cannot
            # announce more than 65535 bytes, so the one-message shape uses a width-4 header.
            big_framing = "len4" if framing == "len2" else framing
            payload = make_payloads(big_framing, total, 1, SEED)[0]
            stream = encode(big_framing, [payload])
            chunks = cut(stream, chunk_sizes(len(stream), "fixed:4096", SEED))
            big_factory = _big_factory(big_framing, total)
            (got, best, _) = best_of(repeats, partial(_feed_all, big_factory, chunks))
            rows.append(
                _scaling_row(
                    big_framing,
                    "one message, 4 KiB chunks",
                    mib=mib,
                    size=len(stream),
                    got=got,
                    expected=(1, total),
                    best=best,
                )
            )
            del payload, stream, chunks
            log(
                f"scaling {framing} {mib} MiB: "
                + ", ".join(f"{r['shape']} {r['ns_per_byte']:.2f} ns/B" for r in rows[-3:])
            )
    # Any chunk size: one 16 MiB stream of 64-byte frames, chunks from 256 B to 1 MiB.
    chunk_rows: list[dict[str, Any]] = []
    total = (4 if quick() else 16) << 20
    for framing in ("len2", "lines"):
        try:
            factory = decoders.make_ours(framing)
        except ImportError:
            continue
        count = total // 66
        payloads = make_payloads(framing, 64, count, SEED)
        stream = encode(framing, payloads)
        for step in (256, 4096, 65536, 1 << 20):
            chunks = cut(stream, chunk_sizes(len(stream), f"fixed:{step}", SEED))
            (got, best, _) = best_of(repeats, partial(_feed_all, factory, chunks))
            chunk_rows.append(
                {
                    "framing": framing,
                    "chunk": step,
                    "bytes": len(stream),
                    "verified": got == (count, 64 * count),
                    "best_ns": best,
                    "ns_per_byte": best / len(stream),
                }
            )
        log(
            f"scaling {framing} by chunk: "
            + ", ".join(
                f"{r['chunk']}={r['ns_per_byte']:.2f}"
                for r in chunk_rows
                if r["framing"] == framing
            )
        )
    return {
        "rows": rows,
        "chunk_rows": chunk_rows,
        "notes": notes,
        "statistic": f"best of {repeats} runs",
        "seconds": time.monotonic() - started,
    }


def _big_factory(framing: str, total: int) -> Callable[[], Any]:
    if framing == "len4":
        from framing.length import LengthPrefixed

        return lambda: LengthPrefixed(4, max_size=total)
    from framing.delimited import Lines

    return lambda: Lines(max_size=total)


def _scaling_row(
    framing: str,
    shape: str,
    *,
    mib: int,
    size: int,
    got: tuple[int, int],
    expected: tuple[int, int],
    best: int,
) -> dict[str, Any]:
    return {
        "framing": framing,
        "shape": shape,
        "mib": mib,
        "bytes": size,
        "frames": got[0],
        "verified": got == expected,
        "best_ns": best,
        "ns_per_byte": best / size,
    }
