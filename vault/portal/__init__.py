"""The customers' online platform [R-3.1.2]: invitations, and a write-only web intake that reads nothing back."""
