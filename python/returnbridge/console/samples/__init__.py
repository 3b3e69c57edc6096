"""Sample canonical returns (JSON) the mapping sandbox offers; each one is also a mapping golden-case input."""

from __future__ import annotations

from importlib import resources
from typing import Final

__all__ = ["SAMPLES", "sample_json"]

#: Sample name -> file in this package.
SAMPLES: Final = {
    "us_authorized_netsuite": "us_authorized_netsuite.json",
    "eu_authorized_sap": "eu_authorized_sap.json",
    "apac_authorized_oracle": "apac_authorized_oracle.json",
}


def sample_json(name: str) -> str:
    """The sample's JSON text.

    Raises:
        KeyError: unknown sample name.
    """
    file = SAMPLES.get(name)
    if file is None:
        raise KeyError(f"unknown sample {name!r}; expected one of {sorted(SAMPLES)}")
    return (resources.files(__package__) / file).read_text(encoding="utf-8")
