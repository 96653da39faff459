"""Entry point for ``python -m vault``."""

from vault.launch import main

main()
