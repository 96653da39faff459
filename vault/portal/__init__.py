"""The customers' online platform [R-3.1.2]: the write-only web intake (its invitations are in vault.office.invitations)."""
