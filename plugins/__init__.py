"""Built-in vault plugins, registered through the ``vault`` entry-point group like any third-party plugin."""
