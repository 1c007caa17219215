"""Qiyi: a chatbot for membership organisations on WeChat and QQ."""
