"""Correctly signed sample requests, as the WeChat platform would send them (demo, operators)."""

from __future__ import annotations

import secrets
import shlex
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto

from bot.channels.wechat_envelope import signature
from bot.settings import Settings

ACCOUNT = "gh_qiyi_demo"


def text_message_xml(openid: str, text: str, created: int, msg_id: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def signed_request(
    settings: Settings, openid: str, text: str, now: int, msg_id: int | None = None
) -> tuple[dict[str, str], str]:
    """The query string and body of a text message; encrypted when safe mode is configured."""
    assert settings.wechat_token is not None
    msg_id = msg_id or secrets.randbelow(10**18)
    nonce = str(secrets.randbelow(10**18))  # no two of a burst share a pair
    timestamp = str(now)
    body = text_message_xml(openid, text, now, msg_id)
    query = {
        "signature": signature(settings.wechat_token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    if settings.wechat_aes_key:
        assert settings.wechat_appid is not None
        crypto = WeChatCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)
        encrypted = crypto.encrypt_message(body, nonce, timestamp)
        encrypt = str(encrypted).split("<Encrypt><![CDATA[")[1].split("]]>")[0]
        query["encrypt_type"] = "aes"
        query["msg_signature"] = signature(settings.wechat_token, timestamp, nonce, encrypt)
        body = (
            f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
        )
    return query, body


def curl_command(base_url: str, query: dict[str, str], body: str) -> str:
    url = f"{base_url}/wechat?{urlencode(query)}"
    return f"curl -s -X POST {shlex.quote(url)} --data-binary {shlex.quote(body)}"
