"""twp-webhook: a TWP plugin that POSTs call, device and presence events to HTTP endpoints."""

__version__ = "0.1.0"
