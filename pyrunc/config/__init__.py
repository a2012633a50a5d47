"""config.json: loading, validation, defaults, and the frozen internal model."""
