"""python-oracledb's exception and type surface, as the EBS stand-in raises and binds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

# -- the driver's exception and type surface ---------------------------------------------------------------


@dataclass(frozen=True)
class _Error:
    """What python-oracledb puts in ``exc.args[0]``."""

    full_code: str
    message: str
    isrecoverable: bool = False
    offset: int = 0
    context: str | None = None

    @property
    def code(self) -> int:
        digits = self.full_code.split("-", 1)[-1]
        return int(digits) if digits.isdigit() else 0

    def __str__(self) -> str:
        return f"{self.full_code}: {self.message}"


class Error(Exception):
    pass


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class IntegrityError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


def _raise(cls: type[Error], full_code: str, message: str, *, recoverable: bool = False) -> NoReturn:
    raise cls(_Error(full_code, message, isrecoverable=recoverable))


class _DbType:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<DbType {self.name}>"


DB_TYPE_NUMBER = _DbType("DB_TYPE_NUMBER")
DB_TYPE_VARCHAR = _DbType("DB_TYPE_VARCHAR")
DB_TYPE_DATE = _DbType("DB_TYPE_DATE")
NUMBER = DB_TYPE_NUMBER
STRING = DB_TYPE_VARCHAR
POOL_GETMODE_WAIT = 0
POOL_GETMODE_NOWAIT = 1
POOL_GETMODE_TIMEDWAIT = 3


class Var:
    """``cursor.var(...)``: an IN/OUT bind whose value the block sets."""

    def __init__(self, typ: Any, size: int = 0) -> None:
        self.type = typ
        self.size = size
        self._value: Any = None

    def getvalue(self, pos: int = 0) -> Any:
        return self._value

    def setvalue(self, pos: int, value: Any) -> None:
        self._value = value
