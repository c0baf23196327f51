"""View-models: screen behaviour as plain Python, importable and testable without a window."""
