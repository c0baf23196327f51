"""Provisioning: kiosk identities, enrolment, flashing, and the foundation every part shares.

The foundation (exception tree, configuration loading, logging set-up, retry backoff) lives
here because provisioning is what defines a kiosk: its identity and its configuration.
"""
