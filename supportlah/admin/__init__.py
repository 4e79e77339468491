"""Admin API, API keys, audit log, analytics, retention and request hardening."""
