"""The domain: the vault and its members, policy, audit history and the views of dossiers handed to plugins."""
