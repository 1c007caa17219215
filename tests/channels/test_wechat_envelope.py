"""Unit tests of the WeChat envelope: signatures, freshness, safe XML parsing and AES."""

from __future__ import annotations

from typing import Any

import pytest
import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto

from bot.channels.wechat import read_message
from bot.channels.wechat_envelope import Refused, SafeMode, check_fresh, parse_xml, signature

# Tencent's official sample (PROTOCOLS.md, "Test vectors").
SAMPLE_TOKEN = "spamtest"
SAMPLE_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SAMPLE_APPID = "wx2c2769f8efd9abc2"
SAMPLE_TIMESTAMP = "1409735669"
SAMPLE_NONCE = "1320562132"
SAMPLE_MSG_SIGNATURE = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6"
    "F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T33"
    "2jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCg"
    "avjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6Oewp"
    "usjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)
SAMPLE_ENVELOPE = {"ToUserName": "gh_10f6c3c3ac5a", "Encrypt": SAMPLE_ENCRYPT}

# Two valid-looking EncodingAESKeys (43 characters) that are not the sample's key.
WRONG_KEY = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
OTHER_WRONG_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"

REPLY_PLAINTEXT = (
    "<xml><ToUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></ToUserName>"
    "<FromUserName><![CDATA[gh_10f6c3c3ac5a]]></FromUserName>"
    "<CreateTime>1409735669</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[hello]]></Content></xml>"
)


def sample_safe_mode(key: str = SAMPLE_KEY, previous_key: str | None = None) -> SafeMode:
    return SafeMode.create(SAMPLE_TOKEN, SAMPLE_APPID, key, previous_key)


def decrypt_sample(safe: SafeMode, msg_signature: str = SAMPLE_MSG_SIGNATURE) -> dict[str, Any]:
    inner = safe.decrypt(SAMPLE_ENVELOPE, msg_signature, SAMPLE_TIMESTAMP, SAMPLE_NONCE)
    return dict(xmltodict.parse(inner)["xml"])


# --- signature ---------------------------------------------------------------------------


def test_signature_matches_the_url_check_vector() -> None:
    assert signature("AAAAA", "1714036504", "1514711492") == (
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )


def test_signature_does_not_depend_on_the_order_of_parts() -> None:
    assert signature("1514711492", "AAAAA", "1714036504") == (
        "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )


def test_signature_covers_the_encrypt_field_for_msg_signature() -> None:
    assert signature(SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, SAMPLE_ENCRYPT) == (
        SAMPLE_MSG_SIGNATURE
    )


# --- SafeMode.decrypt --------------------------------------------------------------------


def test_decrypt_official_sample() -> None:
    message = decrypt_sample(sample_safe_mode())
    assert message["ToUserName"] == "gh_10f6c3c3ac5a"
    assert message["FromUserName"] == "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
    assert message["MsgType"] == "text"
    assert message["Content"] == "abcdteT"
    assert message["MsgId"] == "6054768590064713728"


def test_decrypt_accepts_an_upper_case_msg_signature() -> None:
    message = decrypt_sample(sample_safe_mode(), SAMPLE_MSG_SIGNATURE.upper())
    assert message["Content"] == "abcdteT"


def test_decrypt_falls_back_to_the_previous_key_during_a_rotation() -> None:
    # The platform still encrypts with the old key: it is only configured as `previous`.
    safe = sample_safe_mode(key=WRONG_KEY, previous_key=SAMPLE_KEY)
    message = decrypt_sample(safe)
    assert message["Content"] == "abcdteT"
    assert message["MsgId"] == "6054768590064713728"


def test_decrypt_refuses_when_neither_key_fits() -> None:
    safe = sample_safe_mode(key=WRONG_KEY, previous_key=OTHER_WRONG_KEY)
    with pytest.raises(Refused) as refused:
        decrypt_sample(safe)
    assert refused.value.status == 400


def test_decrypt_refuses_with_a_wrong_key_and_no_previous_key() -> None:
    with pytest.raises(Refused) as refused:
        decrypt_sample(sample_safe_mode(key=WRONG_KEY))
    assert refused.value.status == 400


def test_decrypt_refuses_a_wrong_msg_signature() -> None:
    wrong = "0" * 40
    with pytest.raises(Refused) as refused:
        decrypt_sample(sample_safe_mode(), wrong)
    assert refused.value.status == 403


def test_decrypt_refuses_a_missing_msg_signature() -> None:
    with pytest.raises(Refused) as refused:
        sample_safe_mode().decrypt(SAMPLE_ENVELOPE, None, SAMPLE_TIMESTAMP, SAMPLE_NONCE)
    assert refused.value.status == 403


def test_decrypt_refuses_a_signature_made_for_another_timestamp() -> None:
    # The sample's msg_signature is bound to its timestamp: a replay with a new one fails.
    with pytest.raises(Refused) as refused:
        sample_safe_mode().decrypt(
            SAMPLE_ENVELOPE, SAMPLE_MSG_SIGNATURE, str(int(SAMPLE_TIMESTAMP) + 1), SAMPLE_NONCE
        )
    assert refused.value.status == 403


def test_decrypt_refuses_an_envelope_without_encrypt() -> None:
    with pytest.raises(Refused) as refused:
        sample_safe_mode().decrypt(
            {"ToUserName": "gh_10f6c3c3ac5a"}, SAMPLE_MSG_SIGNATURE, SAMPLE_TIMESTAMP, SAMPLE_NONCE
        )
    assert refused.value.status == 400


# --- SafeMode.encrypt --------------------------------------------------------------------


def test_encrypt_matches_the_reply_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PrpCrypto, "get_random_string", lambda self: "1234567890123456")
    safe = sample_safe_mode()
    reply = xmltodict.parse(safe.encrypt(REPLY_PLAINTEXT, SAMPLE_NONCE, int(SAMPLE_TIMESTAMP)))
    envelope = reply["xml"]
    assert envelope["MsgSignature"] == "ad5bdc49c5d43020529f95ff67103fb872c54c5d"
    assert envelope["TimeStamp"] == SAMPLE_TIMESTAMP
    assert envelope["Nonce"] == SAMPLE_NONCE
    # The signature is the one of the reply's own Encrypt, and the reply decrypts back.
    assert envelope["MsgSignature"] == signature(
        SAMPLE_TOKEN, SAMPLE_TIMESTAMP, SAMPLE_NONCE, envelope["Encrypt"]
    )
    inner = safe.decrypt(envelope, envelope["MsgSignature"], SAMPLE_TIMESTAMP, SAMPLE_NONCE)
    assert inner == REPLY_PLAINTEXT


# --- check_fresh -------------------------------------------------------------------------

NOW = 1_764_032_400
WINDOW = 300


@pytest.mark.parametrize("offset", [0, -WINDOW, WINDOW, -1, 1])
def test_check_fresh_accepts_timestamps_inside_the_window(offset: int) -> None:
    check_fresh(str(NOW + offset), NOW, WINDOW)  # does not raise


@pytest.mark.parametrize("offset", [-WINDOW - 1, WINDOW + 1, -600, 86_400])
def test_check_fresh_refuses_timestamps_outside_the_window(offset: int) -> None:
    with pytest.raises(Refused) as refused:
        check_fresh(str(NOW + offset), NOW, WINDOW)
    assert refused.value.status == 403


@pytest.mark.parametrize("timestamp", [None, "", "abc", "17140365O4", "-5", "1.5", " 1714036504"])
def test_check_fresh_refuses_non_digit_timestamps(timestamp: str | None) -> None:
    with pytest.raises(Refused) as refused:
        check_fresh(timestamp, NOW, WINDOW)
    assert refused.value.status == 400


# --- parse_xml ---------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE xml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<xml><ToUserName>gh_x</ToUserName><MsgType>text</MsgType><Content>&lol9;</Content></xml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_x</ToUserName><MsgType>text</MsgType><Content>&xxe;</Content></xml>"""


@pytest.fixture
def expanding_parser_calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records every document that reaches xmltodict: wechatpy's `parse_message`, which the
    webhook calls after `parse_xml`, parses with it, and it would expand entities."""
    calls: list[object] = []
    real_parse = xmltodict.parse

    def spy(body: object, *args: Any, **kwargs: Any) -> Any:
        calls.append(body)
        return real_parse(body, *args, **kwargs)

    monkeypatch.setattr(xmltodict, "parse", spy)
    return calls


def test_parse_xml_returns_the_fields_of_a_plain_message(
    expanding_parser_calls: list[object],
) -> None:
    body = (
        b"<xml><ToUserName><![CDATA[gh_x]]></ToUserName><MsgType>text</MsgType>"
        b"<Content><![CDATA[\xe5\xad\xa6\xe4\xb9\xa0 30]]></Content></xml>"
    )
    fields = parse_xml(body)
    assert fields == {"ToUserName": "gh_x", "MsgType": "text", "Content": "学习 30"}
    assert expanding_parser_calls == []  # parse_xml itself never expands
    assert parse_message(body).content == "学习 30"  # what the webhook does next
    assert len(expanding_parser_calls) == 1  # the spy really sees accepted documents


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"]
)
def test_parse_xml_refuses_entities_without_expanding_them(
    body: bytes, expanding_parser_calls: list[object]
) -> None:
    with pytest.raises(Refused) as refused:
        parse_xml(body)
    assert refused.value.status == 400
    assert "forbidden" in refused.value.reason
    assert expanding_parser_calls == []


def test_parse_xml_refuses_a_str_document_with_a_dtd(expanding_parser_calls: list[object]) -> None:
    with pytest.raises(Refused) as refused:
        parse_xml(EXTERNAL_ENTITY.decode())
    assert refused.value.status == 400
    assert expanding_parser_calls == []


@pytest.mark.parametrize(
    "body",
    [b"<xml><Content>unclosed</xml>", b"not xml at all", b"", b"<xml>", b"<xml></xml><xml></xml>"],
    ids=["mismatched-tag", "text", "empty", "unterminated", "two-roots"],
)
def test_parse_xml_refuses_malformed_xml(body: bytes, expanding_parser_calls: list[object]) -> None:
    with pytest.raises(Refused) as refused:
        parse_xml(body)
    assert refused.value.status == 400
    assert expanding_parser_calls == []


@pytest.mark.parametrize(
    "body",
    [b"<root><MsgType>text</MsgType></root>", b"<xml>just text</xml>", b"<xml/>"],
    ids=["other-root", "text-root", "empty-root"],
)
def test_parse_xml_refuses_a_document_that_is_not_an_xml_element_with_fields(body: bytes) -> None:
    with pytest.raises(Refused) as refused:
        parse_xml(body)
    assert refused.value.status == 400


TEXT_MESSAGE = (
    "<xml><ToUserName><![CDATA[gh_qiyi]]></ToUserName>"
    "<FromUserName><![CDATA[oMember1001xxxxxxxxxxxxxxxxx]]></FromUserName>"
    "<CreateTime>1764500000</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[学习 30 读《党章》 & <注释>]]></Content>"
    "<MsgId>6000000000000000123</MsgId></xml>"
)
CLICK_EVENT = (
    "<xml><ToUserName><![CDATA[gh_qiyi]]></ToUserName>"
    "<FromUserName><![CDATA[oMember1001xxxxxxxxxxxxxxxxx]]></FromUserName>"
    "<CreateTime>1764500000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_42]]></EventKey></xml>"
)


def test_read_message_builds_a_text_message_as_wechatpy_parses_it() -> None:
    fields = parse_xml(TEXT_MESSAGE.encode())
    message = read_message(fields, TEXT_MESSAGE)
    expected = parse_message(TEXT_MESSAGE)
    assert type(message) is type(expected)
    seen = (message.id, message.source, message.target, message.time, message.content)
    assert seen == (expected.id, expected.source, expected.target, expected.time, expected.content)
    assert message.id == 6000000000000000123
    assert message.content == "学习 30 读《党章》 & <注释>"


def test_read_message_leaves_events_to_wechatpy() -> None:
    # wechatpy tells a subscribe by QR scene apart and strips the scene's prefix.
    message = read_message(parse_xml(CLICK_EVENT.encode()), CLICK_EVENT)
    assert message.type == "event"
    assert message.event == "subscribe_scan"
    assert message.scene_id == "42"
