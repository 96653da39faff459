"""Cryptography for the vault: the age v1 format and Ed25519 signatures.

This package is the only place that imports ``cryptography``.
"""
