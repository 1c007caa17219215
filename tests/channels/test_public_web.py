"""Which addresses a URL from a message may reach: public ones only."""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.channels import public_web

PRIVATE = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # a cloud's metadata service
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "ff02::1",
    "not an address",
]
PUBLIC = ["8.8.8.8", "119.29.29.29", "2001:4860:4860::8888", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not public_web.is_public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_routable_addresses_are_public(address: str) -> None:
    assert public_web.is_public(address)


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/a.jpg", "http://[::1]:8080/a", "https://10.0.0.7/x", "http://0.0.0.0/"],
)
def test_an_ip_literal_of_a_private_network_is_refused(url: str) -> None:
    with pytest.raises(public_web.PrivateAddress):
        public_web.check_literal(URL(url))


@pytest.mark.parametrize(
    "url", ["https://gchat.qpic.cn/a.jpg", "http://8.8.8.8/a", "http://[2001:4860::1]/"]
)
def test_names_and_public_literals_pass_the_literal_check(url: str) -> None:
    public_web.check_literal(URL(url))  # raises if refused


class Answers(AbstractResolver):
    """A resolver that answers what it is told to."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=a, port=port, family=family, proto=0, flags=0)
            for a in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_the_resolver_keeps_only_public_addresses() -> None:
    resolver = public_web.PublicOnlyResolver(Answers("10.0.0.1", "8.8.8.8", "127.0.0.1"))
    found = await resolver.resolve("pictures.example", 443)
    assert [answer["host"] for answer in found] == ["8.8.8.8"]


async def test_a_name_with_no_public_address_does_not_resolve() -> None:
    inner = Answers("10.0.0.1", "169.254.169.254")
    resolver = public_web.PublicOnlyResolver(inner)
    with pytest.raises(public_web.PrivateAddress, match=r"rebind\.example resolves to no public"):
        await resolver.resolve("rebind.example", 80)
    await resolver.close()
    assert inner.closed
