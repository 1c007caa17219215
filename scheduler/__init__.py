"""Scheduled pushes (morning lesson, midday news, evening reminder): the pushes issue builds them.

`QIYI_SCHEDULER` is read already so deployments can set it; nothing is scheduled yet.
"""
