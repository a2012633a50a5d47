"""Linux mechanics: each concern in its own module, all kernel calls through kernel.py."""
