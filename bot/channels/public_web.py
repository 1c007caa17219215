"""Fetching from addresses that someone outside chose (a QQ picture's URL) without reaching
into the server's own network: only globally routable addresses are connected to.

A host name is checked where it is resolved — by the connector's resolver
(`fetching_session`), whose answer is the address connected to, so a name that resolves to a
public address when checked and to 127.0.0.1 when used (DNS rebinding) cannot slip through.
An IP literal never reaches a resolver in aiohttp, so `check_literal` is called for every hop
(the first URL and each redirect) by `media_download.by_url`.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL


class PrivateAddress(OSError):
    """The host is, or resolves only to, an address inside a private network, the loopback,
    a link-local or another reserved range."""


def is_public(address: str) -> bool:
    """Whether `address` (an IP address as text) is globally routable. An IPv4-mapped IPv6
    address is judged by the IPv4 address inside it."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_literal(url: URL) -> None:
    """Refuse a URL whose host is an IP address that is not public; a name passes here (the
    resolver checks it)."""
    host = (url.host or "").strip("[]")
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return  # a name
    if not is_public(host):
        raise PrivateAddress(f"not a public address: {host}")


class PublicOnlyResolver(AbstractResolver):
    """Resolves through `inner` (aiohttp's default resolver unless given) and keeps only the
    public addresses; none left is an error, as if the name did not resolve."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self.inner = inner or aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.inner.resolve(host, port, family)
        public = [answer for answer in found if is_public(answer["host"])]
        if not public:
            raise PrivateAddress(f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self.inner.close()


def fetching_session(private_ok: bool = False) -> aiohttp.ClientSession:
    """The client session for URLs from messages: connecting to public addresses only, unless
    `private_ok` (QIYI_MEDIA_FETCH_PRIVATE_OK)."""
    if private_ok:
        return aiohttp.ClientSession()
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PublicOnlyResolver()))
