"""Built-in retention trigger events [R-3.3.2]."""

from typing import Any, Callable

from vault.hookspecs import hookimpl


@hookimpl
def vault_register_retention_events(register: Callable[[str, Any], None]) -> None:
    register("contract-fulfilled", "the contract this document records has been fulfilled")
    register("relationship-ended", "the business relationship with the customer has ended")
