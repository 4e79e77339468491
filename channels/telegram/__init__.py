"""Telegram channel: webhook and long-polling ingress, rate-limited outbound, command replies.

Python-telegram-bot's ``Bot`` is used as a plain HTTP client; nothing here uses its
``Application`` framework, so the channel fits the same Ingress → queue → sender path
as every other channel.
"""
