"""Enables the vault conformance kit (its fixtures, network guard and parametrisation) for these tests."""

pytest_plugins = ["vault.testing"]
