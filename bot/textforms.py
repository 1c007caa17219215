"""What a member typed, in the two forms the bot reads it.

- **Typed** (`typed`): the text as written, minus what cannot be seen — zero-width and
  other default-ignorable characters (U+200B–U+200F, U+2060…, U+FEFF, variation selectors,
  soft hyphen, bidi controls), control characters other than newline and tab, and lone
  surrogates — with line ends unified and the ends trimmed. Free text (a note, a
  description, a reason) is kept in this form: its own punctuation stays, e.g. the Chinese
  full-width comma, which NFKC would turn into an ASCII one.
- **Parsed** (`read`): the typed text with every character NFKC-normalised on its own
  (full-width digits, letters, spaces, `：` and `／` become ASCII) and each run of
  whitespace as one space. Command words, numbers and ids are read from this form; it keeps
  for each of its characters the index of the typed character it came from, so the free
  text after an amount or an id is cut from what the member typed.

Both run in time linear in the text: one character class, one pass.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties), control characters but
# newline and tab, and surrogates (a JSON body may carry a lone one; no database stores it).
_INVISIBLE = re.compile(
    "["
    "\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 and C1 controls, DEL (newline and tab stay)
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\ud800-\udfff"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff"
    "]+"
)
_LINE_ENDS = str.maketrans({"\r": "\n", "\u2028": "\n", "\u2029": "\n", "\x85": "\n"})
# Anything in the typed text that `read` would change besides NFKC: a whitespace run, or a
# whitespace character other than the plain space.
_NOT_PLAIN_SPACING = re.compile(r"\s\s|[^\S ]")


def typed(text: str) -> str:
    """`text` without invisible and control characters, line ends as "\\n", ends trimmed."""
    return _INVISIBLE.sub("", text.replace("\r\n", "\n").translate(_LINE_ENDS)).strip()


@dataclass(frozen=True)
class Reading:
    """The parsed form of a typed text, and the way back to the typed characters."""

    text: str
    source: str  # the typed text
    origins: tuple[int, ...] | None  # per parsed character its typed index; None: the same

    def source_from(self, index: int) -> str:
        """The typed text from the character that became `text[index]` on."""
        if self.origins is None:
            return self.source[index:]
        return self.source[self.origins[index] :] if index < len(self.origins) else ""


def read(text: str) -> Reading:
    """The parsed form of `text`: see the module's description."""
    source = typed(text)
    if unicodedata.is_normalized("NFKC", source) and not _NOT_PLAIN_SPACING.search(source):
        # Each character of an NFKC-normalised text is normalised on its own too.
        return Reading(source, source, None)
    pieces: list[str] = []
    origins: list[int] = []
    after_space = True  # no space at the start
    for index, char in enumerate(source):
        for piece in char if char < "\x80" else unicodedata.normalize("NFKC", char):
            if piece.isspace():
                if after_space:
                    continue
                piece, after_space = " ", True
            else:
                after_space = False
            pieces.append(piece)
            origins.append(index)
    if pieces and pieces[-1] == " ":
        pieces.pop()
        origins.pop()
    return Reading("".join(pieces), source, tuple(origins))


def parsed(text: str) -> str:
    """The parsed form of `text` alone (NFKC per character, one space per whitespace run)."""
    return read(text).text


_ASCII_NUMBER = re.compile(r"[0-9]+")


def bounded_int(text: str, digits: int) -> int | None:
    """`text` as a whole number when it is 1 to `digits` ASCII digits; else None.

    `str.isdigit` is true for "፩" or "²", which `int` refuses, and `int` of thousands of
    digits is slow: only ASCII digits, and only so many, are ever converted.
    """
    if len(text) > digits or not _ASCII_NUMBER.fullmatch(text):
        return None
    return int(text)
