"""Type stub for the Rust extension ``returnbridge._mapper`` (checked by mypy.stubtest in the tests)."""

from typing import final

__all__ = ["Mapper", "SpecCompileError", "TranslateFailure", "build_profile"]

build_profile: str

class SpecCompileError(ValueError):
    """A spec failed to compile: ``args == (rule, message)``."""

class TranslateFailure(ValueError):
    """A document failed to translate: ``args == (rule, path, message)``."""

@final
class Mapper:
    """One compiled mapping spec (normalized JSON spec + serialized FileDescriptorSet).

    ``dynamic_types``: full names of the API's dynamic-value messages (value, list, struct).
    """

    def __new__(cls, spec_json: bytes, descriptors: bytes, dynamic_types: tuple[str, str, str]) -> Mapper: ...
    @property
    def id(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def output_message(self) -> str: ...
    def translate(self, document: bytes) -> bytes: ...
    def translate_batch(self, documents: list[bytes]) -> list[bytes | tuple[str, str, str]]: ...
    def explain(self, document: bytes) -> tuple[bytes, list[tuple[str, str, str]]]: ...
