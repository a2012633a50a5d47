"""pyrunc's image front end: from an OCI or Docker image to a bundle (docs/images.md)."""
