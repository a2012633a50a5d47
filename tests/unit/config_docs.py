"""config.json documents in the tests: paths into a document, and runc's default config
with one field pyrunc refuses set (each field of semantic.REFUSED_FIELDS has an example)."""


def set_at(doc, parts, value):
    """Set the value at `parts` (keys and indexes) of a document."""
    target = doc
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def string_leaves(value, parts=()):
    """The path (a list of keys and indexes) of every string in a document."""
    if isinstance(value, str):
        yield list(parts)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_leaves(item, parts + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from string_leaves(item, parts + (i,))


# A schema-valid example of each refused field, on runc's default config.
REFUSED_EXAMPLES = {
    "windows": ("windows", {"layerFolders": ["C:\\layers\\base"]}),
    "solaris": ("solaris", {"milestone": "svc:/milestone/container:default"}),
    "vm": ("vm", {"kernel": {"path": "/boot/vmlinuz"}}),
    "zos": ("zos", {}),
    "freebsd": ("freebsd", {}),
    "process.commandLine": ("process.commandLine", "sh -c true"),
    "process.user.username": ("process.user.username", "ContainerUser"),
    "mounts[].uidMappings": ("mounts.0.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
    "mounts[].gidMappings": ("mounts.0.gidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
}


def refused_example(path):
    """runc's default config with the refused field set; the path the error must name."""
    from pyrunc.config.default import default_spec

    doc = default_spec()
    where, value = REFUSED_EXAMPLES[path]
    node = doc
    keys = [int(k) if k.isdigit() else k for k in where.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    if path.startswith("mounts[]."):  # both or neither, as the schema's semantics ask
        doc["mounts"][0]["uidMappings" if "gid" in path else "gidMappings"] = value
    named = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys).lstrip(".")
    return doc, named
