"""Commands are declared where they are handled; the router matches text and injects arguments."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.messages import InboundKind
from bot.textforms import read, typed
from data.models import Role

Handler = Callable[..., Awaitable[str]]
# A dialog step: the reply, or None when the text is not an answer (it is routed as usual).
DialogHandler = Callable[..., Awaitable[str | None]]
Parser = Callable[[str], Any]

# The arguments a command takes, in characters, unless it declares more: enough for any id,
# amount, time or name with a short remark; a command with free text declares its own.
DEFAULT_MAX_CHARS = 100

# What a handler may ask for by parameter name; `Conversation` provides them.
INJECTABLE = frozenset(
    {
        "args",
        "member",
        "session",
        "clock",
        "settings",
        "rules",
        "sender",
        "today",
        "router",
        "report_context",
        "inbound",
        "standings",  # the month's standings so far, fetched before the transaction
    }
)


class UsageError(ValueError):
    """The arguments do not fit the command; `hint` names what was wrong (a template name)."""

    def __init__(self, hint: str = "", **details: Any) -> None:
        super().__init__(hint)
        self.hint = hint
        self.details = details


@dataclass(frozen=True)
class Command:
    names: tuple[str, ...]
    handler: Handler
    role: Role | None  # None: answers members and strangers alike (绑定, 帮助)
    usage: str
    summary: str
    parse: Parser | None
    params: tuple[str, ...]
    max_chars: int = DEFAULT_MAX_CHARS

    @property
    def name(self) -> str:
        return self.names[0]

    def read_args(self, args: str) -> Any:
        """The handler's `args`: the text after the command word, within the command's length
        and through its parser; `UsageError` when they do not fit."""
        if len(args) > self.max_chars:
            raise UsageError("too_long", most=self.max_chars)
        return self.parse(args) if self.parse else args


def _parameters(handler: Handler) -> tuple[str, ...]:
    names = tuple(inspect.signature(handler).parameters)
    unknown = set(names) - INJECTABLE
    if unknown:
        raise TypeError(f"{handler.__qualname__} asks for unknown parameters {sorted(unknown)}")
    return names


class Router:
    def __init__(self) -> None:
        self._commands: list[Command] = []
        self._by_name: dict[str, Command] = {}
        self._lengths: list[int] = []  # the command words' lengths, longest first, for `match`
        self._head_length = 8  # how much of a text `match` reads: see `register`
        self._events: dict[InboundKind, tuple[Handler, tuple[str, ...]]] = {}
        self._dialogs: dict[str, tuple[DialogHandler, tuple[str, ...]]] = {}
        self.dialog_role: Role | None = None  # the lowest role any dialog answers

    def command(
        self,
        *names: str,
        usage: str,
        summary: str,
        role: Role | None = Role.MEMBER,
        parse: Parser | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> Callable[[Handler], Handler]:
        """Declare a command: its words, who may use it, its help line, its argument parser and
        how long its arguments may be."""

        def register(handler: Handler) -> Handler:
            command = Command(
                names, handler, role, usage, summary, parse, _parameters(handler), max_chars
            )
            for name in names:
                if name in self._by_name:
                    raise ValueError(f"command word {name!r} is declared twice")
                self._by_name[name] = command
            self._lengths = sorted({len(name) for name in self._by_name}, reverse=True)
            # Room for a leading "/" and spaces before the longest word.
            self._head_length = 2 * self._lengths[0] + 8
            self._commands.append(command)
            return handler

        return register

    def event(self, kind: InboundKind) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._events[kind] = (handler, _parameters(handler))
            return handler

        return register

    def dialog(self, state: str, role: Role) -> Callable[[DialogHandler], DialogHandler]:
        """Declare the handler of a multi-step dialog's answers: while a member of `role` or
        above is in `state` (`data.dialogs`), their texts go to it before any command."""

        def register(handler: DialogHandler) -> DialogHandler:
            self._dialogs[state] = (handler, _parameters(handler))
            if self.dialog_role is None or role.rank < self.dialog_role.rank:
                self.dialog_role = role
            return handler

        return register

    def dialog_handler(self, state: str) -> tuple[DialogHandler, tuple[str, ...]] | None:
        return self._dialogs.get(state)

    def match(self, text: str) -> tuple[Command, str] | None:
        """The command a text starts with (longest word first) and the rest as its arguments.

        The one place where what a member sent is normalised before routing: the command
        word is read in the parsed form (full-width `／学习：` as `/学习:`, zero-width and
        control characters gone); the arguments are returned as typed, minus invisible
        characters, for the parser to read numbers from and to keep free text as written
        (see bot.textforms).
        """
        # Only the head is parsed here: the arguments can be long, and the word is short.
        source = typed(text)
        head = read(source[: self._head_length])
        words = head.text.lstrip("/").lstrip()
        skipped = len(head.text) - len(words)
        for length in self._lengths:  # a dictionary look-up per length, longest first
            word = words[:length]
            command = self._by_name.get(word)
            if command is not None:
                start = skipped + len(word)
                rest = head.source_from(start) + source[len(head.source) :]
                return command, rest.strip().lstrip(":：").strip()
        return None

    def event_handler(self, kind: InboundKind) -> tuple[Handler, tuple[str, ...]] | None:
        return self._events.get(kind)

    def commands_for(self, role: Role | None) -> list[Command]:
        """The commands someone with `role` (None: not bound) may use, in declaration order."""
        rank = role.rank if role else 0
        return [c for c in self._commands if (c.role.rank if c.role else 0) <= rank]

    @property
    def commands(self) -> list[Command]:
        return list(self._commands)


async def call(handler: Handler, params: tuple[str, ...], available: dict[str, Any]) -> str:
    return await handler(**{name: available[name] for name in params})


async def call_dialog(
    handler: DialogHandler, params: tuple[str, ...], available: dict[str, Any]
) -> str | None:
    return await handler(**{name: available[name] for name in params})
