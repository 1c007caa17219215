"""Property tests (Hypothesis): no input up to 5,000 characters makes a parser on the message
path raise anything but `UsageError`, or an adapter anything but its refusal (HTTP 400).

The inputs mix the known adversarial atoms — runs of spaces, commas, digits of every script,
half-width and full-width forms, zero-width and control characters, CQ-code syntax — with
arbitrary Unicode. The example budget is bounded so the suite stays fast; growth with size is
tested in test_parsing_growth.py, without timing any single call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.onebot_message import parse_cq, read
from bot.channels.qqbot import MESSAGE_EVENTS, QQBotWebhook
from bot.channels.wechat import UNREADABLE, read_message, to_inbound
from bot.channels.wechat_envelope import Refused, parse_xml
from bot.clock import FixedClock
from bot.messages import INBOUND_TEXT_LIMIT, Inbound
from bot.router import Command, UsageError
from bot.textforms import parsed, typed
from bot.textforms import read as read_text
from handlers import router
from tests.conftest import MORNING, make_settings

BUDGET = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad\ufe0f\x00\x07\x1b\x7f\x85\ud800"
ATOMS = [
    " ", "\u3000", "\t", "\n", "\r\n", ",", "，", "、", ":", "：", ";", "/", "／", "#", ".",
    "0", "1", "9", "１", "９", "٣", "፩", "²", "①", "𝟗",
    "一", "两", "十", "百", "千", "半", "个", "小时", "分钟", "分", "h", "min", "hours",
    "点", "时", "早上", "晚上", "开启", "关闭", "A", "b", "ｂ",
    "[", "]", "[CQ:", "[CQ:at,qq=1]", "&#44;", "&#91;", "&amp;", "=",
    "学习", "笔记", "资料", "😀", "👍🏽", "《", "》", "！", *INVISIBLE,
]  # fmt: skip


@st.composite
def adversarial(draw: st.DrawFn, max_size: int = 5000) -> str:
    """Runs of atoms (a run may be hundreds long) and arbitrary Unicode, up to `max_size`."""
    runs = draw(
        st.lists(
            st.tuples(
                st.one_of(st.sampled_from(ATOMS), st.text(max_size=4)),
                st.integers(min_value=1, max_value=1200),
            ),
            max_size=8,
        )
    )
    return "".join(atom * times for atom, times in runs)[:max_size]


TEXTS = st.one_of(adversarial(), st.text(max_size=300))

PARSED_COMMANDS = [command for command in router.commands if command.parse is not None]


@pytest.mark.parametrize("command", PARSED_COMMANDS, ids=lambda command: command.name)
@BUDGET
@given(text=TEXTS)
def test_a_parser_answers_or_explains(command: Command, text: str) -> None:
    assert command.parse is not None
    try:
        command.parse(text)
    except UsageError as problem:
        assert problem.hint  # every refusal names its hint template


@pytest.mark.parametrize("command", router.commands, ids=lambda command: command.name)
@BUDGET
@given(text=TEXTS)
def test_a_commands_arguments_within_its_length(command: Command, text: str) -> None:
    # What the conversation does: routing, then the length cap, then the parser.
    matched = router.match(f"{command.name} {text}")
    assert matched is not None
    found, args = matched
    try:
        value = found.read_args(args)
    except UsageError:
        return
    assert len(args) <= found.max_chars
    # Whatever free text a parser keeps has no invisible characters left in it.
    kept = value if isinstance(value, str) else getattr(value, "rest", None)
    if kept is not None:
        assert typed(kept) == kept.strip()


@BUDGET
@given(text=TEXTS)
def test_routing_and_normalising_never_fail(text: str) -> None:
    router.match(text)
    reading = read_text(text)
    assert "  " not in reading.text
    assert reading.text == parsed(reading.text)  # normalising twice changes nothing
    for index in range(0, len(reading.text), 97):
        assert reading.source_from(index) in reading.source


# --- WeChat ------------------------------------------------------------------------------

CLOCK = FixedClock(MORNING)
XML_CHAR = st.characters(
    codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00\ufffe\uffff"
).filter(lambda c: c in "\t\n\r" or c >= " ")
FIELD_TEXT = st.one_of(adversarial(max_size=2000), st.text(XML_CHAR, max_size=200))
MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "file", "location", "link", "event"]


def cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@st.composite
def wechat_xml(draw: st.DrawFn) -> str:
    fields: dict[str, str] = {
        "ToUserName": "gh_account",
        "FromUserName": draw(st.one_of(st.just("oMember"), FIELD_TEXT)),
        "CreateTime": draw(st.one_of(st.just("1764032400"), FIELD_TEXT)),
        "MsgType": draw(st.one_of(st.sampled_from(MSG_TYPES), FIELD_TEXT)),
    }
    optional = ["Content", "MsgId", "MediaId", "PicUrl", "Recognition", "Event", "EventKey"]
    optional += ["FileKey", "Title", "Format", "ThumbMediaId"]
    for name in draw(st.lists(st.sampled_from(optional), max_size=6, unique=True)):
        fields[name] = draw(FIELD_TEXT)
    body = "".join(f"<{name}>{cdata(value)}</{name}>" for name, value in fields.items())
    return f"<xml>{body}</xml>"


def check_inbound(inbound: Inbound) -> None:
    assert len(inbound.text) <= INBOUND_TEXT_LIMIT


@BUDGET
@given(xml=wechat_xml())
def test_a_wechat_message_is_read_or_refused(xml: str) -> None:
    try:
        fields = parse_xml(xml.encode("utf-8", "surrogatepass"))
        check_inbound(to_inbound(read_message(fields, xml), CLOCK, {"K": "积分"}))
    except (Refused, *UNREADABLE):
        pass  # 400 from the webhook: nothing changes


@BUDGET
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_any_wechat_body_is_parsed_or_refused(body: bytes) -> None:
    with contextlib.suppress(Refused):
        parse_xml(body)


# --- OneBot ------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
SEGMENT = st.fixed_dictionaries(
    {
        "type": st.one_of(st.sampled_from(["text", "at", "image", "video", "file", "face"]), JSON),
        "data": st.one_of(
            st.dictionaries(
                st.sampled_from(["text", "qq", "url", "file", "file_id", "id"]),
                st.one_of(TEXTS, JSON),
                max_size=3,
            ),
            JSON,
        ),
    }
)


@BUDGET
@given(message=st.one_of(TEXTS, st.lists(st.one_of(SEGMENT, JSON), max_size=6), JSON))
def test_a_onebot_message_is_read_or_refused(message: Any) -> None:
    try:
        content = read(message)
    except ValueError:
        return  # 400 from the webhook
    assert all(item.kind in ("image", "video", "file") and item.reference for item in content.media)


@BUDGET
@given(message=TEXTS)
def test_cq_codes_always_parse_and_keep_the_text(message: str) -> None:
    segments = parse_cq(message)
    assert all(isinstance(segment["data"], dict) for segment in segments)
    if "[" not in message and "&" not in message:
        assert "".join(s["data"]["text"] for s in segments) == message


# --- the official QQ bot -----------------------------------------------------------------

QQBOT = QQBotWebhook(
    make_settings("sqlite+aiosqlite:///unused.db", qqbot_appid="1", qqbot_secret="s" * 16),
    CLOCK,
)
EVENT_DATA = st.one_of(
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.text(max_size=20), JSON),
            "content": st.one_of(TEXTS, JSON),
            "author": st.one_of(
                st.fixed_dictionaries(
                    {"member_openid": st.text(max_size=20), "user_openid": st.text(max_size=20)}
                ),
                JSON,
            ),
            "group_openid": st.one_of(st.text(max_size=20), JSON),
        }
    ),
    JSON,
)


@BUDGET
@given(
    kind=st.sampled_from(sorted(MESSAGE_EVENTS)),
    data=EVENT_DATA,
    event_id=st.one_of(st.none(), st.text(max_size=20)),
)
def test_a_qq_bot_event_is_read_or_refused(kind: str, data: Any, event_id: str | None) -> None:
    try:
        inbound, _, _ = QQBOT._inbound({"op": 0, "t": kind, "d": data, "id": event_id})
    except (KeyError, TypeError):
        return  # 400 from the webhook
    check_inbound(inbound)
    assert inbound.received_at == CLOCK.now()
    assert isinstance(inbound.received_at, dt.datetime)
