"""The organisation's daily rhythm: morning lesson, midday news, evening reminders.

Jobs are declared in one place (`jobs.py`) and are thin calls into `bot.pushes`, the same
functions `qiyi push …` runs; what they enqueue the dispatcher sends.
"""
