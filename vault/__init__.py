"""vault: an encrypted client-archive vault built on the age v1 format."""

__version__ = "0.1.0"
