"""The OCI runtime-spec side: config.json, its conversion to a plan,
container state, hooks and the features document."""
