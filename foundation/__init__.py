"""The foundation every part shares: exception tree, settings, logging, backoff, lifecycle, secure files, sd_notify.

A leaf: it imports no other package of the project (``docs/architecture.md``).
"""
