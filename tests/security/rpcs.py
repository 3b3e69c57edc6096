"""Every RPC the server exposes, read from the descriptors, and a generic way to call each of them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha import reflection_pb2

from returnbridge.api.v1 import admin_pb2, inventory_pb2, returns_pb2, translation_pb2


@dataclass(frozen=True)
class Rpc:
    method: MethodDescriptor

    @property
    def path(self) -> str:
        return f"/{self.method.containing_service.full_name}/{self.method.name}"

    @property
    def short(self) -> str:
        """``Service.Method`` as docs/security.md writes it (reflection with its version prefix)."""
        service = self.method.containing_service
        if service.full_name.startswith("grpc.reflection."):
            return f"{service.full_name.split('.')[2]}.{service.name}.{self.method.name}"
        return f"{service.name}.{self.method.name}"

    def request_class(self) -> Any:
        return message_factory.GetMessageClass(self.method.input_type)

    async def call(
        self, channel: grpc.aio.Channel, request: Any = None, *, metadata: Any = None, timeout: float = 5.0
    ) -> Any:
        """Call with ``request`` (default: the empty request); streams send one message and read one reply.

        Returns the first response; raises ``grpc.aio.AioRpcError`` as the call does.
        """
        request = request if request is not None else self.request_class()()
        response = message_factory.GetMessageClass(self.method.output_type)
        kwargs = {"request_serializer": _serialize, "response_deserializer": response.FromString}
        client_stream, server_stream = self.method.client_streaming, self.method.server_streaming
        if not client_stream and not server_stream:
            return await channel.unary_unary(self.path, **kwargs)(request, metadata=metadata, timeout=timeout)
        if not client_stream:
            call = channel.unary_stream(self.path, **kwargs)(request, metadata=metadata, timeout=timeout)
        else:
            maker = channel.stream_stream if server_stream else channel.stream_unary
            call = maker(self.path, **kwargs)(_one(request), metadata=metadata, timeout=timeout)
            if not server_stream:
                return await call
        try:
            return await call.read()
        finally:
            call.cancel()


def _serialize(message: Any) -> bytes:
    return bytes(message) if isinstance(message, bytes | bytearray) else message.SerializeToString()


async def _one(request: Any) -> AsyncIterator[Any]:
    yield request
    await asyncio.sleep(0)


def api_rpcs() -> list[Rpc]:
    """Every RPC of the v1 contract plus reflection (v1alpha, the version grpcio-reflection serves)."""
    rpcs = []
    for module in (returns_pb2, inventory_pb2, translation_pb2, admin_pb2, reflection_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            rpcs.extend(Rpc(m) for m in service.methods)
    return rpcs
