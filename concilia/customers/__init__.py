"""Customer identity, contact data, privacy notices and consent, and one-time sign-in links."""
