"""JSON Schemas for every TOML file the vault reads (shipped as ``vault.schemas``)."""
