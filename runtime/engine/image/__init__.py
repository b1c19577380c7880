"""Images: references, a content-addressed store, sources (registries,
OCI layouts, archives), safe layer unpacking and container rootfs."""
