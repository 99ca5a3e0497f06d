# The C accelerator's two functions (framing/_speedups.c documents them).
from framing.base import BytesLike

def split_length(
    data: BytesLike, pos: int, width: int, little: int, max_size: int, limit: int, /
) -> tuple[list[bytes], int, int]: ...
def split_delimited(
    data: BytesLike,
    start: int,
    delimiter: bytes,
    max_size: int,
    lines: bool,
    keep: bool,
    strict: bool,
    /,
) -> tuple[list[bytes], int] | None: ...
