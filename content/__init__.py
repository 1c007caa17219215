"""What the bot says and teaches: Jinja2 templates, micro-lessons and micro-news, the rules."""
