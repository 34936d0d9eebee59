"""Parsing of list filters shared by the apps' selectors, the API and the pages."""

from __future__ import annotations


def is_id(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts '²', which ``int`` refuses."""
    return text.isascii() and text.isdigit()



class FilterError(ValueError):
    """Bad filter values; ``errors`` maps each parameter to a message naming the valid values."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
