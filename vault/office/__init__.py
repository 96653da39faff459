"""The archive office's procedures, one module per job."""
