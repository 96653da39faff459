"""Entry point for ``python -m vault``."""

from vault.cli import main

main()
