"""Quick checks of the WeChat outbound API fake itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.fakes.wechat_api import (
    CUSTOM_SEND,
    MEDIA_UPLOAD,
    MENU_CREATE,
    STABLE_TOKEN,
    TEMPLATE_SEND,
    FakeWeChat,
)

AppClientFactory = Callable[[Any], Awaitable[TestClient]]

ALICE = "oAlice000000000000000000000"
BOB = "oBob00000000000000000000000"


@pytest.fixture
def fake() -> FakeWeChat:
    return FakeWeChat(appid="wx-test", secret="secret")


@pytest.fixture
async def client(aiohttp_client: AppClientFactory, fake: FakeWeChat) -> TestClient:
    return await aiohttp_client(fake.app())


async def call(client: TestClient, path: str, body: dict[str, Any], **query: str) -> Any:
    response = await client.post(path, json=body, params=query)
    assert response.status == 200
    return await response.json()


async def token(client: TestClient, force: bool = False) -> str:
    body = {
        "grant_type": "client_credential",
        "appid": "wx-test",
        "secret": "secret",
        "force_refresh": force,
    }
    answer = await call(client, STABLE_TOKEN, body)
    assert answer["expires_in"] == 7200
    return answer["access_token"]


def text(openid: str, content: str) -> dict[str, Any]:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


def template(openid: str, client_msg_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "touser": openid,
        "template_id": "tmpl-1",
        "url": "https://example.org/x",
        "data": {"thing1": {"value": "学习提醒"}},
    }
    if client_msg_id is not None:
        body["client_msg_id"] = client_msg_id
    return body


async def test_stable_token_is_stable_until_expired(client: TestClient, fake: FakeWeChat) -> None:
    first = await token(client)
    assert await token(client) == first
    assert fake.tokens_issued == [first]

    fake.expire_token()
    second = await token(client)
    assert second != first
    assert fake.tokens_issued == [first, second]
    assert fake.current_token == second

    third = await token(client, force=True)
    assert third not in (first, second)
    assert len(fake.received) == 4
    assert all(r.path == STABLE_TOKEN for r in fake.received)


async def test_stable_token_checks_credentials(client: TestClient, fake: FakeWeChat) -> None:
    base = {"grant_type": "client_credential", "appid": "wx-test", "secret": "secret"}
    assert (await call(client, STABLE_TOKEN, {**base, "appid": "wx-other"}))["errcode"] == 40013
    assert (await call(client, STABLE_TOKEN, {**base, "secret": "nope"}))["errcode"] == 40125
    assert fake.tokens_issued == []


async def test_token_endpoint_is_absent(client: TestClient, fake: FakeWeChat) -> None:
    response = await client.get("/cgi-bin/token", params={"grant_type": "client_credential"})
    assert response.status == 404
    assert fake.received[-1].method == "GET"


async def test_old_token_gets_40001_after_expiry(client: TestClient, fake: FakeWeChat) -> None:
    old = await token(client)
    assert (await call(client, CUSTOM_SEND, text(ALICE, "hi"), access_token=old))["errcode"] == 0

    fake.expire_token()
    answer = await call(client, CUSTOM_SEND, text(ALICE, "again"), access_token=old)
    assert answer == {"errcode": 40001, "errmsg": "invalid credential"}
    assert (await call(client, CUSTOM_SEND, text(ALICE, "x")))["errcode"] == 40001

    new = await token(client)
    answer = await call(client, CUSTOM_SEND, text(ALICE, "again"), access_token=new)
    assert answer["errcode"] == 0
    assert fake.sent_texts() == ["hi", "again"]


async def test_fail_next_queues_errcodes_in_order(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    fake.fail_next(CUSTOM_SEND, -1, times=2)
    fake.fail_next(CUSTOM_SEND, 45015, errmsg="out of window")

    answers = [
        await call(client, CUSTOM_SEND, text(ALICE, f"m{i}"), access_token=access) for i in range(4)
    ]
    assert [a["errcode"] for a in answers] == [-1, -1, 45015, 0]
    assert answers[2]["errmsg"] == "out of window"
    assert fake.sent_texts() == ["m3"]
    assert [r.body["text"]["content"] for r in fake.calls(CUSTOM_SEND)] == ["m0", "m1", "m2", "m3"]


async def test_fail_http(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    fake.fail_http(CUSTOM_SEND, 502)
    response = await client.post(
        CUSTOM_SEND, json=text(ALICE, "x"), params={"access_token": access}
    )
    assert response.status == 502
    assert (await call(client, CUSTOM_SEND, text(ALICE, "y"), access_token=access))["errcode"] == 0
    assert fake.sent_texts() == ["y"]


async def test_body_checks(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    too_long = "党" * 683  # 2049 UTF-8 bytes
    answer = await call(client, CUSTOM_SEND, text(ALICE, too_long), access_token=access)
    assert answer["errcode"] == 45002
    assert (await call(client, CUSTOM_SEND, text(ALICE, "党" * 682), access_token=access))[
        "errcode"
    ] == 0
    answer = await call(
        client, CUSTOM_SEND, {"touser": ALICE, "msgtype": "text"}, access_token=access
    )
    assert answer["errcode"] != 0
    bad = {**template(ALICE), "data": {"thing1": "not a dict"}}
    assert (await call(client, TEMPLATE_SEND, bad, access_token=access))["errcode"] == 47003


async def test_not_following_gives_43004(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    fake.not_following(BOB)
    assert (await call(client, CUSTOM_SEND, text(BOB, "x"), access_token=access))[
        "errcode"
    ] == 43004
    assert (await call(client, TEMPLATE_SEND, template(BOB), access_token=access))[
        "errcode"
    ] == 43004
    assert (await call(client, CUSTOM_SEND, text(ALICE, "x"), access_token=access))["errcode"] == 0
    assert fake.sent_texts(BOB) == []
    assert fake.sent_templates(BOB) == []


async def test_template_client_msg_id_is_idempotent(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    first = await call(client, TEMPLATE_SEND, template(ALICE, "outbox-1"), access_token=access)
    again = await call(client, TEMPLATE_SEND, template(ALICE, "outbox-1"), access_token=access)
    other = await call(client, TEMPLATE_SEND, template(ALICE, "outbox-2"), access_token=access)
    assert first["errcode"] == again["errcode"] == other["errcode"] == 0
    assert first["msgid"] == again["msgid"] != other["msgid"]
    assert [t["client_msg_id"] for t in fake.sent_templates(ALICE)] == ["outbox-1", "outbox-2"]
    assert len(fake.calls(TEMPLATE_SEND)) == 3


async def test_sent_texts_filters_by_openid(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    for openid, content in [(ALICE, "a1"), (BOB, "b1"), (ALICE, "a2")]:
        answer = await call(client, CUSTOM_SEND, text(openid, content), access_token=access)
        assert answer["errcode"] == 0
    assert fake.sent_texts() == ["a1", "b1", "a2"]
    assert fake.sent_texts(ALICE) == ["a1", "a2"]
    assert fake.sent_texts(BOB) == ["b1"]


async def test_media_upload_and_menu(client: TestClient, fake: FakeWeChat) -> None:
    access = await token(client)
    form = aiohttp.FormData()
    form.add_field("media", b"\x89PNG fake", filename="r.png", content_type="image/png")
    response = await client.post(
        MEDIA_UPLOAD, data=form, params={"access_token": access, "type": "image"}
    )
    answer = await response.json()
    assert answer["type"] == "image"
    assert answer["media_id"] == fake.uploads[0].media_id
    assert isinstance(answer["created_at"], int)
    assert fake.uploads[0].data == b"\x89PNG fake"
    assert fake.received[-1].body["media"]["filename"] == "r.png"

    menu = {"button": [{"type": "click", "name": "学习", "key": "STUDY"}]}
    assert (await call(client, MENU_CREATE, menu, access_token=access))["errcode"] == 0
    assert fake.menus == [fake.received[-1].raw]
    assert "STUDY" in fake.menus[0]
