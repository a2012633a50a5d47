"""A minimal CRI (runtime.v1) client: the few RuntimeService calls the CRI tests make, over
gRPC on a unix socket, with the protobuf wire format written out here for the messages it
needs (no generated code, no protoc).  It needs only grpcio, which Debian's python3-grpcio
gives /usr/bin/python3, so the tests run it as a command:

    python3 cri_client.py SOCKET METHOD < request.json  > response.json

The request and the response are JSON objects keyed by the proto field names; enums are
numbers, bytes come back as text.  A gRPC error prints {"error": CODE, "details": TEXT} and
exits 1.
"""

import json
import sys

# message -> [(field number, name, type)]; a type is a scalar, an enum ("enum"), or another
# message's name; a leading "*" makes the field repeated.
MESSAGES = {
    "VersionRequest": [(1, "version", "string")],
    "VersionResponse": [
        (1, "version", "string"),
        (2, "runtime_name", "string"),
        (3, "runtime_version", "string"),
        (4, "runtime_api_version", "string"),
    ],
    "NamespaceOption": [(1, "network", "enum"), (2, "pid", "enum"), (3, "ipc", "enum")],
    "LinuxSandboxSecurityContext": [(1, "namespace_options", "NamespaceOption")],
    "LinuxPodSandboxConfig": [(1, "cgroup_parent", "string"), (2, "security_context", "LinuxSandboxSecurityContext")],
    "PodSandboxMetadata": [
        (1, "name", "string"),
        (2, "uid", "string"),
        (3, "namespace", "string"),
        (4, "attempt", "uint32"),
    ],
    "PodSandboxConfig": [
        (1, "metadata", "PodSandboxMetadata"),
        (2, "hostname", "string"),
        (3, "log_directory", "string"),
        (8, "linux", "LinuxPodSandboxConfig"),
    ],
    "RunPodSandboxRequest": [(1, "config", "PodSandboxConfig"), (2, "runtime_handler", "string")],
    "RunPodSandboxResponse": [(1, "pod_sandbox_id", "string")],
    "PodSandboxIdRequest": [(1, "pod_sandbox_id", "string")],
    "Empty": [],
    "KeyValue": [(1, "key", "string"), (2, "value", "string")],
    "ContainerMetadata": [(1, "name", "string"), (2, "attempt", "uint32")],
    "ImageSpec": [(1, "image", "string")],
    "LinuxContainerResources": [
        (1, "cpu_period", "int64"),
        (2, "cpu_quota", "int64"),
        (3, "cpu_shares", "int64"),
        (4, "memory_limit_in_bytes", "int64"),
        (5, "oom_score_adj", "int64"),
        (6, "cpuset_cpus", "string"),
        (7, "cpuset_mems", "string"),
        (10, "memory_swap_limit_in_bytes", "int64"),
    ],
    "LinuxContainerConfig": [(1, "resources", "LinuxContainerResources")],
    "ContainerConfig": [
        (1, "metadata", "ContainerMetadata"),
        (2, "image", "ImageSpec"),
        (3, "command", "*string"),
        (4, "args", "*string"),
        (5, "working_dir", "string"),
        (6, "envs", "*KeyValue"),
        (11, "log_path", "string"),
        (15, "linux", "LinuxContainerConfig"),
    ],
    "CreateContainerRequest": [
        (1, "pod_sandbox_id", "string"),
        (2, "config", "ContainerConfig"),
        (3, "sandbox_config", "PodSandboxConfig"),
    ],
    "CreateContainerResponse": [(1, "container_id", "string")],
    "ContainerIdRequest": [(1, "container_id", "string")],
    "StopContainerRequest": [(1, "container_id", "string"), (2, "timeout", "int64")],
    "ExecSyncRequest": [(1, "container_id", "string"), (2, "cmd", "*string"), (3, "timeout", "int64")],
    "ExecSyncResponse": [(1, "stdout", "bytes"), (2, "stderr", "bytes"), (3, "exit_code", "int32")],
    "ContainerStatusRequest": [(1, "container_id", "string"), (2, "verbose", "bool")],
    "ContainerStatus": [
        (1, "id", "string"),
        (2, "metadata", "ContainerMetadata"),
        (3, "state", "enum"),
        (4, "created_at", "int64"),
        (5, "started_at", "int64"),
        (6, "finished_at", "int64"),
        (7, "exit_code", "int32"),
        (10, "reason", "string"),
        (11, "message", "string"),
        (15, "log_path", "string"),
    ],
    "ContainerStatusResponse": [(1, "status", "ContainerStatus")],
}

# method -> (request message, response message)
METHODS = {
    "Version": ("VersionRequest", "VersionResponse"),
    "RunPodSandbox": ("RunPodSandboxRequest", "RunPodSandboxResponse"),
    "StopPodSandbox": ("PodSandboxIdRequest", "Empty"),
    "RemovePodSandbox": ("PodSandboxIdRequest", "Empty"),
    "CreateContainer": ("CreateContainerRequest", "CreateContainerResponse"),
    "StartContainer": ("ContainerIdRequest", "Empty"),
    "StopContainer": ("StopContainerRequest", "Empty"),
    "RemoveContainer": ("ContainerIdRequest", "Empty"),
    "ExecSync": ("ExecSyncRequest", "ExecSyncResponse"),
    "ContainerStatus": ("ContainerStatusRequest", "ContainerStatusResponse"),
}

VARINT = {"int32", "int64", "uint32", "uint64", "bool", "enum"}
CONTAINER_STATES = ["CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN"]
NAMESPACE_MODES = {"POD": 0, "CONTAINER": 1, "NODE": 2, "TARGET": 3}


def _varint(n):
    n &= (1 << 64) - 1  # negative numbers: two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(message, doc):
    """The wire bytes of message from a dict; proto3: default values are left out."""
    fields = {name: (number, kind) for number, name, kind in MESSAGES[message]}
    unknown = set(doc) - set(fields)
    if unknown:
        raise ValueError(f"{message} has no field {sorted(unknown)}")
    out = bytearray()
    for name, value in doc.items():
        number, kind = fields[name]
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        for item in value if repeated else [value]:
            if kind in VARINT:
                if item:
                    out += _varint(number << 3) + _varint(int(item))
            elif kind in ("string", "bytes"):
                data = item.encode() if isinstance(item, str) else bytes(item)
                if data or repeated:
                    out += _varint(number << 3 | 2) + _varint(len(data)) + data
            else:
                data = encode(kind, item)
                out += _varint(number << 3 | 2) + _varint(len(data)) + data
    return bytes(out)


def _read_varint(data, pos):
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode(message, data):
    """A dict of message from its wire bytes; fields this schema does not name are skipped."""
    fields = {number: (name, kind) for number, name, kind in MESSAGES[message]}
    doc = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"{message}: wire type {wire} of field {number} is not supported")
        if number not in fields:
            continue
        name, kind = fields[number]
        repeated = kind.startswith("*")
        kind = kind.lstrip("*")
        if kind in VARINT:
            if kind in ("int32", "int64") and value >= 1 << 63:
                value -= 1 << 64
            value = bool(value) if kind == "bool" else value
        elif kind == "string":
            value = bytes(value).decode()
        elif kind == "bytes":
            value = bytes(value).decode(errors="replace")
        else:
            value = decode(kind, bytes(value))
        if repeated:
            doc.setdefault(name, []).append(value)
        else:
            doc[name] = value
    return doc


def call(socket, method, request, timeout=120):
    """Call RuntimeService.method with the request dict; return the response dict."""
    import grpc

    req_type, resp_type = METHODS[method]
    with grpc.insecure_channel(f"unix://{socket}") as channel:
        stub = channel.unary_unary(
            f"/runtime.v1.RuntimeService/{method}",
            request_serializer=lambda doc: encode(req_type, doc),
            response_deserializer=lambda data: decode(resp_type, data),
        )
        return stub(request, timeout=timeout)


def main(argv):
    if len(argv) != 3 or argv[2] not in METHODS:
        sys.stderr.write(f"usage: {argv[0]} SOCKET {{{'|'.join(METHODS)}}} < request.json\n")
        return 2
    import grpc

    request = json.loads(sys.stdin.read() or "{}")
    try:
        response = call(argv[1], argv[2], request)
    except grpc.RpcError as e:
        print(json.dumps({"error": e.code().name, "details": e.details()}))
        return 1
    print(json.dumps(response))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
