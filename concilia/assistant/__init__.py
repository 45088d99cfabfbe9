"""The complaints assistant: conversations that understand, collect, resolve or hand over."""
