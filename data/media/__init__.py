"""The media store: materials' files kept for good, addressed by their SHA-256."""
