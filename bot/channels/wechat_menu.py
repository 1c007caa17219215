"""The custom menu from `content/menu.toml`: the platform's JSON and the click-key commands."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

MENU_FILE = Path(__file__).parent.parent.parent / "content" / "menu.toml"


def load(path: Path = MENU_FILE) -> list[dict[str, Any]]:
    with path.open("rb") as file:
        return list(tomllib.load(file)["button"])


def platform_json(buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of `POST /cgi-bin/menu/create`: our buttons without the `command` field."""

    def strip(button: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in button.items() if k not in ("command", "sub_button")}
        if "sub_button" in button:
            kept["sub_button"] = [strip(sub) for sub in button["sub_button"]]
        return kept

    return {"button": [strip(button) for button in buttons]}


def click_commands(buttons: list[dict[str, Any]]) -> dict[str, str]:
    """EventKey -> the command text it stands for."""
    found: dict[str, str] = {}
    for button in buttons:
        for item in [button, *button.get("sub_button", [])]:
            if item.get("type") == "click":
                found[item["key"]] = item["command"]
    return found
