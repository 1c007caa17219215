"""Replays and forgeries on `POST /wechat`, over HTTP (aiohttp's test client).

In plain mode the signature covers the token, timestamp and nonce, not the body: a captured
query string could carry any body for the replay window. The (timestamp, nonce) pairs are
remembered with the body's hash; with an AES key plain bodies are refused unless the account
runs in compatibility mode (QIYI_WECHAT_COMPAT).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import create_app
from bot.clock import FixedClock
from content.texts import render
from data import processed, seen_requests
from data.models import ProcessedMessage, SeenRequest, StudyEntry
from tests.channels.test_wechat import (
    AES_KEY,
    APPID,
    MEMBER,
    WeChat,
    bind_member,
    message_xml,
    parse_reply,
    rows,
    start,
)
from tests.conftest import make_settings

AppClientFactory = Callable[[Any], Awaitable[TestClient]]


async def plain_server(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, **overrides: object
) -> WeChat:
    wechat = await start(
        aiohttp_client, make_settings(database_url, bind_proof="name", **overrides), clock
    )
    await bind_member(wechat)
    return wechat


@pytest.fixture
async def wechat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> WeChat:
    """Plain mode (no AES key), member 1001 bound."""
    return await plain_server(aiohttp_client, database_url, clock)


@pytest.fixture
async def compat_wechat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> WeChat:
    """An AES key and QIYI_WECHAT_COMPAT=true, member 1001 bound."""
    return await plain_server(
        aiohttp_client,
        database_url,
        clock,
        wechat_aes_key=AES_KEY,
        wechat_appid=APPID,
        wechat_compat=True,
    )


@pytest.fixture
async def safe_wechat(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> WeChat:
    """An AES key, compatibility mode off (the default), member 1001 bound."""
    return await plain_server(
        aiohttp_client, database_url, clock, wechat_aes_key=AES_KEY, wechat_appid=APPID
    )


def study(wechat: WeChat, minutes: int, msg_id: int) -> str:
    return message_xml(MEMBER, "text", wechat.now, Content=f"学习 {minutes}", MsgId=msg_id)


async def minutes_recorded(wechat: WeChat) -> list[int]:
    return sorted(entry.minutes for entry in await rows(wechat, StudyEntry))


# --- plain mode: a captured query string carries one body only ---------------------------


async def test_a_captured_query_with_another_body_is_refused_and_changes_nothing(
    wechat: WeChat,
) -> None:
    query = wechat.query()
    first = await wechat.post(study(wechat, 30, msg_id=101), query)
    assert first.status == 200
    assert "30/120" in parse_reply(await first.text())["Content"]
    processed_before = await rows(wechat, ProcessedMessage)
    seen_before = await rows(wechat, SeenRequest)

    # The same signed query string, a forged body: another message id, another amount.
    forged = await wechat.post(study(wechat, 90, msg_id=102), query)

    assert forged.status == 403
    assert "120" not in await forged.text()
    assert await minutes_recorded(wechat) == [30]
    assert await rows(wechat, ProcessedMessage) == processed_before
    assert await rows(wechat, SeenRequest) == seen_before


async def test_the_same_pair_with_the_same_body_gets_the_stored_reply_and_counts_once(
    wechat: WeChat,
) -> None:
    query, body = wechat.query(), study(wechat, 30, msg_id=111)
    first = await wechat.post(body, query)
    again = await wechat.post(body, query)  # the platform's retry (or a replay) of it

    assert first.status == again.status == 200
    assert await again.text() == await first.text()
    assert "30/120" in parse_reply(await first.text())["Content"]
    assert await minutes_recorded(wechat) == [30]


async def test_the_pair_is_remembered_with_the_bodys_sha256(wechat: WeChat) -> None:
    query, body = wechat.query(), study(wechat, 30, msg_id=121)
    assert (await wechat.post(body, query)).status == 200

    [seen] = await rows(wechat, SeenRequest, SeenRequest.nonce == query["nonce"])
    assert seen.channel == "wechat"
    assert seen.timestamp == int(query["timestamp"])
    assert seen.body_hash == hashlib.sha256(body.encode()).hexdigest()


async def test_the_pair_is_kept_with_its_message_in_one_transaction(
    wechat: WeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pair is remembered inside the message's transaction: a message whose answer
    failed leaves neither its pair nor anything else; WeChat's retry of it (same query, same
    body) is then answered in full, and the pair refuses another body from then on."""
    query, body = wechat.query(), study(wechat, 30, msg_id=131)
    record = processed.record

    async def failing(*_: object) -> None:
        raise OSError("the disk is full")

    monkeypatch.setattr(processed, "record", failing)
    failed = await wechat.post(body, query)
    assert parse_reply(await failed.text())["Content"] == render("error")
    assert await rows(wechat, SeenRequest, SeenRequest.nonce == query["nonce"]) == []
    assert await minutes_recorded(wechat) == []

    monkeypatch.setattr(processed, "record", record)
    retried = await wechat.post(body, query)
    assert "30/120" in parse_reply(await retried.text())["Content"]
    assert len(await rows(wechat, SeenRequest, SeenRequest.nonce == query["nonce"])) == 1
    forged = await wechat.post(study(wechat, 90, msg_id=132), query)
    assert forged.status == 403
    assert await minutes_recorded(wechat) == [30]


async def test_two_servers_given_one_pair_with_two_bodies_at_once_accept_one(
    aiohttp_client: AppClientFactory, database_url: str, clock: FixedClock, engine: AsyncEngine
) -> None:
    # Two processes on one database (two apps, two engines): the unique constraint decides.
    first = await plain_server(aiohttp_client, database_url, clock)
    second_client = await aiohttp_client(
        create_app(make_settings(database_url, bind_proof="name"), clock)
    )
    second = WeChat(second_client, first.now)
    query = first.query()

    answers = await asyncio.gather(
        first.post(study(first, 30, msg_id=131), query),
        second.post(study(first, 45, msg_id=132), query),
    )

    assert sorted(answer.status for answer in answers) == [200, 403]
    assert len(await minutes_recorded(first)) == 1
    assert len(await rows(first, SeenRequest, SeenRequest.nonce == query["nonce"])) == 1


# --- an AES key: encrypted only, unless compatibility mode -------------------------------


async def test_with_an_aes_key_a_plain_request_is_refused(safe_wechat: WeChat) -> None:
    processed_before = await rows(safe_wechat, ProcessedMessage)

    response = await safe_wechat.post(study(safe_wechat, 30, msg_id=201))

    assert response.status == 403
    assert await minutes_recorded(safe_wechat) == []
    assert await rows(safe_wechat, ProcessedMessage) == processed_before
    assert await rows(safe_wechat, SeenRequest) == []


async def test_with_an_aes_key_encrypted_requests_are_answered_without_nonce_memory(
    safe_wechat: WeChat,
) -> None:
    # msg_signature covers the nonce and the body: a replayed pair brings the same message,
    # which the message dedupe answers once with the stored reply.
    body, query = safe_wechat.encrypted_request(study(safe_wechat, 30, msg_id=211))
    first = await safe_wechat.post(body, query)
    again = await safe_wechat.post(body, query)

    assert first.status == again.status == 200
    assert safe_wechat.open_reply(await again.text()) == safe_wechat.open_reply(await first.text())
    assert await minutes_recorded(safe_wechat) == [30]
    assert await rows(safe_wechat, SeenRequest) == []


async def test_compatibility_mode_accepts_a_plain_request_and_remembers_its_pair(
    compat_wechat: WeChat,
) -> None:
    query = compat_wechat.query()
    accepted = await compat_wechat.post(study(compat_wechat, 30, msg_id=301), query)
    forged = await compat_wechat.post(study(compat_wechat, 90, msg_id=302), query)

    assert accepted.status == 200
    assert "30/120" in parse_reply(await accepted.text())["Content"]
    assert forged.status == 403
    assert await minutes_recorded(compat_wechat) == [30]


async def test_compatibility_mode_a_captured_encrypted_query_cannot_carry_a_plain_body(
    compat_wechat: WeChat,
) -> None:
    body, query = compat_wechat.encrypted_request(study(compat_wechat, 30, msg_id=311))
    assert (await compat_wechat.post(body, query)).status == 200

    # The attacker drops encrypt_type and msg_signature and posts a plain body of their own
    # under the captured signature, timestamp and nonce.
    plain_query = {name: query[name] for name in ("signature", "timestamp", "nonce")}
    forged = await compat_wechat.post(study(compat_wechat, 90, msg_id=312), plain_query)

    assert forged.status == 403
    assert await minutes_recorded(compat_wechat) == [30]
    # The genuine encrypted retry is still answered (same message, same pair).
    retry = await compat_wechat.post(body, query)
    assert retry.status == 200
    assert "30/120" in compat_wechat.open_reply(await retry.text())["Content"]
    assert await minutes_recorded(compat_wechat) == [30]


async def test_when_the_nonce_cannot_be_checked_the_member_gets_the_apology(
    wechat: WeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def unreachable(*_: object) -> bool:
        raise OSError("the database went away")

    monkeypatch.setattr(seen_requests, "remember", unreachable)

    response = await wechat.post(study(wechat, 30, msg_id=401))

    assert response.status == 200
    assert parse_reply(await response.text())["Content"] == render("error")
    assert await minutes_recorded(wechat) == []
