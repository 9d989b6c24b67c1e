"""The one place that knows secrets: masking them and commands that print masked.

Every string that leaves oorfix (console, run record, error messages) passes through a
Redactor. A Command's ``str()`` and ``repr()`` are masked; the raw text is only reachable
through its ``text`` attribute, which only transports read.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from oorfix.results import CommandResult, Output

MASK = "********"
# Values this short would mask common words and digits everywhere; they are not secrets.
MIN_SECRET_LENGTH = 4
# Where bounded capture cut output (oorfix.transport.capture.OMITTED_MARKER), kept as a piece.
CUT = re.compile(r"(\n\[\.\.\. \d+ bytes omitted \.\.\.\]\n)")


@dataclass(frozen=True)
class Redactor:
    """Masks every known secret value in a text."""

    secrets: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, values: Iterable[object]) -> Redactor:
        """A redactor for these values, every leaf of nested ones, as text and shell-quoted."""
        texts = {text for value in values for text in _leaves(value)}
        texts |= {shlex.quote(t) for t in texts}
        return cls(frozenset(t for t in texts if len(t) >= MIN_SECRET_LENGTH))

    def cut_edges(self, text: str) -> str:
        """Mask the part of a secret left at a place where captured output was cut.

        Output is bounded before it is masked, so a cut may split a secret in two; neither
        half matches the whole value. Each piece before a cut loses a trailing secret prefix,
        each piece after one a leading secret suffix, and the text's end a trailing prefix.
        """
        pieces = CUT.split(text)
        for i in range(0, len(pieces), 2):
            if i > 0:
                pieces[i] = self._lead(pieces[i])
            pieces[i] = self._trail(pieces[i])
        return "".join(pieces)

    def _trail(self, piece: str) -> str:
        for secret in self.secrets:
            for k in range(len(secret) - 1, MIN_SECRET_LENGTH - 1, -1):
                if piece.endswith(secret[:k]):
                    return piece[:-k] + MASK
        return piece

    def _lead(self, piece: str) -> str:
        for secret in self.secrets:
            for k in range(len(secret) - 1, MIN_SECRET_LENGTH - 1, -1):
                if piece.startswith(secret[-k:]):
                    return MASK + piece[k:]
        return piece

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def output(self, output: Output) -> Output:
        """Captured output with every secret masked, also where capture cut it."""
        text = self(output.text)
        if output.truncated:
            text = self.cut_edges(text)
        return replace(output, text=text)

    def result(self, result: CommandResult) -> CommandResult:
        """A command result whose stdout and stderr are masked."""
        return replace(result, stdout=self.output(result.stdout), stderr=self.output(result.stderr))


def _leaves(value: object) -> Iterator[str]:
    if value is None:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _leaves(item)
    else:
        yield str(value)


NO_SECRETS = Redactor()


# Values known to be secret by where they came from (a vault-decrypted inventory value), not by
# their variable's name. They compare, hash and print as the plain value; only the type marks
# them, so the mark survives variable merging and `is_secret_value` finds it anywhere.
class SecretText(str):
    """Text that is a secret wherever it is used: masked in every output."""

    __slots__ = ()


class SecretInt(int):
    """A number that is a secret wherever it is used: masked in every output."""

    __slots__ = ()


class SecretFloat(float):
    """A number that is a secret wherever it is used: masked in every output."""

    __slots__ = ()


_SECRET_TYPES = (SecretText, SecretInt, SecretFloat)
_NEVER_SECRET = (*_SECRET_TYPES, bool, type(None))  # already marked, or nothing to hide


def mark_secret(value: object) -> object:
    """``value`` with every text and number in it marked secret; booleans and nulls stay."""
    if isinstance(value, _NEVER_SECRET):
        return value
    if isinstance(value, str):
        return SecretText(value)
    if isinstance(value, int):
        return SecretInt(value)
    if isinstance(value, float):
        return SecretFloat(value)
    if isinstance(value, Mapping):
        return {key: mark_secret(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mark_secret(item) for item in value]
    return value


def marked_secrets(value: object) -> list[object]:
    """Every value marked secret in ``value``: itself, or those inside its containers."""
    if isinstance(value, _SECRET_TYPES):
        return [value]
    if isinstance(value, Mapping):
        return [found for item in value.values() for found in marked_secrets(item)]
    if isinstance(value, list | tuple):
        return [found for item in value for found in marked_secrets(item)]
    return []


def is_secret_value(value: object) -> bool:
    """Whether ``value`` is, or holds, a value marked secret."""
    return bool(marked_secrets(value))


def mask_secret_values(value: object) -> object:
    """``value`` with each value marked secret replaced by the mask (for printed data)."""
    if isinstance(value, _SECRET_TYPES):
        return MASK
    if isinstance(value, Mapping):
        return {key: mask_secret_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_secret_values(item) for item in value]
    return value


@dataclass(frozen=True)
class Command:
    """A shell command to run on a host, that prints with its secrets masked."""

    text: str
    redactor: Redactor = NO_SECRETS
    stdin: bytes | None = field(default=None, repr=False)
    label: str | None = field(default=None, compare=False)  # the step that sends it, if any
    # The command enforces its own time limit on the host (a batch's watchdog does), so no
    # `timeout` process need wrap it.
    limits_itself: bool = field(default=False, compare=False)

    def __str__(self) -> str:
        return self.redactor(self.text)

    def __repr__(self) -> str:
        return f"Command({str(self)!r})"
