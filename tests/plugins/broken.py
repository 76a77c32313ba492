"""A plug-in module whose import fails (for the registry tests)."""

raise RuntimeError("broken on purpose")
