"""Telephony: normalized PBX events, the call model, supervision across links, call control."""
