"""The pure parts of the FunLess ABI: headers, the allow-list, the integers."""

from __future__ import annotations

import pytest

from fless.exec import host_allowed
from fless.exec._abi import parse_headers, u16_le, u32_le


def test_parse_headers_splits_key_value_lines() -> None:
    raw = "Content-Type:application/json\nX-Token: abc \r\nHost:a:8080\n\n"
    assert parse_headers(raw) == [
        ("Content-Type", "application/json"),
        ("X-Token", "abc"),
        ("Host", "a:8080"),  # only the first colon separates
    ]


def test_parse_headers_of_nothing_is_empty() -> None:
    assert parse_headers("") == []
    assert parse_headers("\n\r\n") == []


@pytest.mark.parametrize("raw", ["no colon here", ":value without key", "  :x"])
def test_parse_headers_refuses_malformed_lines(raw: str) -> None:
    with pytest.raises(ValueError, match="malformed header line"):
        parse_headers(raw)


ALLOW = frozenset({"api.example.org", "10.0.0.5:8080", "*.svc.example.net", "Mixed.Case.Org"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://api.example.org/v1", True),
        ("https://api.example.org:9443/v1", True),  # a bare host allows any port
        ("http://API.Example.Org/", True),
        ("http://mixed.case.org/", True),
        ("http://10.0.0.5:8080/x", True),
        ("http://10.0.0.5/x", False),  # host:port allows that port only
        ("http://10.0.0.5:8081/x", False),
        ("http://a.svc.example.net/", True),
        ("http://a.b.svc.example.net/", True),
        ("http://svc.example.net/", False),  # the wildcard is for subdomains
        ("http://evilsvc.example.net/", False),
        ("http://api.example.org.evil.com/", False),
        ("http://evil.com/?api.example.org", False),
        ("http://api.example.org@evil.com/", False),  # the host is evil.com
        ("ftp://api.example.org/", False),
        ("file:///etc/passwd", False),
        ("api.example.org", False),  # no scheme
        ("http://api.example.org:notaport/", False),
        ("http:///nohost", False),
    ],
)
def test_host_allowed(url: str, allowed: bool) -> None:
    assert host_allowed(url, ALLOW) is allowed


def test_nothing_is_allowed_by_an_empty_list() -> None:
    assert not host_allowed("http://127.0.0.1/", frozenset())


def test_default_ports_match_host_port_entries() -> None:
    assert host_allowed("http://h.org/", frozenset({"h.org:80"}))
    assert host_allowed("https://h.org/", frozenset({"h.org:443"}))
    assert not host_allowed("https://h.org/", frozenset({"h.org:80"}))


def test_integers_are_little_endian() -> None:
    assert u16_le(200) == b"\xc8\x00"
    assert u16_le(0x1234) == b"\x34\x12"
    assert u32_le(8 * 1024 * 1024) == b"\x00\x00\x80\x00"
    assert u32_le(0xDEADBEEF) == b"\xef\xbe\xad\xde"


def test_integers_wrap_to_their_width() -> None:
    assert u16_le(0x1_0001) == b"\x01\x00"
    assert u32_le(-1) == b"\xff\xff\xff\xff"
