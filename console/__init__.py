"""The web console (管理后台) for the party office and branch secretaries: one more door, like
a channel adapter — its pages call the same operations as the chat commands."""
