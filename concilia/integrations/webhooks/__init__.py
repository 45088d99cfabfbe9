"""Outbound webhooks: endpoints subscribed to event kinds, and the signed, ordered, retried
delivery of the outbox's events to them (docs/webhooks.md)."""
