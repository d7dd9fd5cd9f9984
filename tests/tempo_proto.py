"""Tempo's ``tempopb`` messages, compiled at test time from its own ``tempo.proto``
(tests/upstream/tempo.proto, verbatim from grafana/tempo) with protoc from grpcio-tools.

Tempo's build copies the OTLP protos into ``pkg/tempopb`` with their packages renamed
``opentelemetry.proto.*`` -> ``tempopb.*`` (its Makefile's gen-proto); the same renaming is
done here on the descriptors of the opentelemetry-proto package, which protoc then takes
as the imports. The gogoproto options only steer Go code generation: they are removed,
and with them the import of gogo.proto.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc_tools
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

UPSTREAM = Path(__file__).parent / "upstream" / "tempo.proto"


def _renamed(module: Any) -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    stack = list(fd.message_type)
    while stack:
        message = stack.pop()
        stack.extend(message.nested_type)
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = field.type_name.replace(".opentelemetry.proto.", ".tempopb.")
    fd.name = fd.name.removeprefix("opentelemetry/proto/")
    fd.package = fd.package.replace("opentelemetry.proto.", "tempopb.")
    deps = [d.removeprefix("opentelemetry/proto/") for d in fd.dependency]
    del fd.dependency[:]
    fd.dependency.extend(deps)
    fd.options.Clear()
    return fd


def messages(tmp: Path) -> dict[str, Any]:
    """Message classes of ``tempopb`` by name (``Trace``, ``SearchResponse``, ...)."""
    imports = descriptor_pb2.FileDescriptorSet()
    for module in (common_pb2, resource_pb2, trace_pb2):
        imports.file.append(_renamed(module))
    (tmp / "imports.pb").write_bytes(imports.SerializeToString())
    text = UPSTREAM.read_text()
    text = re.sub(r'import "github.com/gogo/[^"]*";', "", text)
    text = re.sub(r"\[[^\]]*gogoproto[^\]]*\]", "", text, flags=re.S)
    (tmp / "tempo.proto").write_text(text)
    include = Path(grpc_tools.__file__).parent / "_proto"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--descriptor_set_in={tmp / 'imports.pb'}",
            f"-I{tmp}",
            f"-I{include}",
            "--include_imports",
            f"--descriptor_set_out={tmp / 'tempo.pb'}",
            "tempo.proto",
        ],
        check=True,
        cwd=tmp,
    )
    found = descriptor_pb2.FileDescriptorSet.FromString((tmp / "tempo.pb").read_bytes())
    pool = descriptor_pool.DescriptorPool()
    names = {f.name for f in found.file}
    for fd in imports.file:
        if fd.name not in names:
            pool.Add(fd)
    for fd in found.file:
        pool.Add(fd)
    tempo = pool.FindFileByName("tempo.proto")
    return {
        name: message_factory.GetMessageClass(desc)
        for name, desc in tempo.message_types_by_name.items()
    }
