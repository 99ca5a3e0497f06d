from __future__ import annotations

import pytest

from protocols.dns.edns import COOKIE_LIFETIME, CookieError, ServerCookies, split_cookie

CLIENT = bytes.fromhex("0102030405060708")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_server_cookie_is_valid_for_its_client_cookie_and_address() -> None:
    cookies = ServerCookies(b"k" * 16, clock=Clock())
    server = cookies.make(CLIENT, "127.0.0.1")
    assert len(server) == 16
    assert server[:4] == b"\x01\x00\x00\x00"  # RFC 9018 4: version 1, reserved
    assert cookies.valid(CLIENT, server, "127.0.0.1")
    assert cookies.valid(CLIENT, server, "::ffff:127.0.0.1")  # the same client, dual-stack
    assert not cookies.valid(CLIENT, server, "127.0.0.2")
    assert not cookies.valid(bytes(8), server, "127.0.0.1")
    assert not ServerCookies(b"j" * 16, clock=Clock()).valid(CLIENT, server, "127.0.0.1")
    assert not cookies.valid(CLIENT, server[:-1] + bytes([server[-1] ^ 1]), "127.0.0.1")
    assert not cookies.valid(CLIENT, b"\x02" + server[1:], "127.0.0.1")
    assert not cookies.valid(CLIENT, server + b"x", "127.0.0.1")


def test_a_server_cookie_lasts_an_hour_and_may_come_up_to_5_minutes_early() -> None:
    """RFC 9018 4.3."""
    clock = Clock()
    cookies = ServerCookies(b"k" * 16, clock=clock)
    server = cookies.make(CLIENT, None)
    clock.now += COOKIE_LIFETIME
    assert cookies.valid(CLIENT, server, None)
    clock.now += 1
    assert not cookies.valid(CLIENT, server, None)
    clock.now -= COOKIE_LIFETIME + 1 + 300
    assert cookies.valid(CLIENT, server, None)
    clock.now -= 1
    assert not cookies.valid(CLIENT, server, None)


@pytest.mark.parametrize("size", [8, 16, 24, 40])
def test_split_cookie_accepts_the_lengths_of_rfc_7873(size: int) -> None:
    data = bytes(range(size))
    assert split_cookie(data) == (data[:8], data[8:])


@pytest.mark.parametrize("size", [0, 7, 9, 15, 41])
def test_split_cookie_refuses_other_lengths(size: int) -> None:
    with pytest.raises(CookieError, match=f"a COOKIE option of {size} bytes"):
        split_cookie(bytes(size))
