"""The case aggregate: categories, cases, their thread of messages and attachments, and their history."""
