"""Features, one module each; importing this package declares every command on `router`."""

from importlib import import_module

from bot.router import Router

router = Router()

# In this order `帮助` lists the commands: the daily ones first.
FEATURES = (
    "binding",
    "study",
    "lessons",
    "news",
    "videos",
    "notes",
    "volunteer",
    "activities",
    "activity_dialog",
    "signing_in",
    "reminders",
    "points",
    "ranking",
    "my_report",
    "review",
    "materials",
    "unbinding",
    "console_login",
    "help",
    "events",
)
for feature in FEATURES:
    import_module(f"handlers.{feature}")
