"""Telegram as a channel for the assistant: a bot's webhook brings customers' messages in, the
Bot API takes the assistant's and agents' answers out (docs/connectors.md, "Telegram")."""
