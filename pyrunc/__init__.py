"""pyrunc: an OCI runtime-spec compliant container runtime, compatible with runc."""

__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
