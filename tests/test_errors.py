"""One error tree: every project exception is a ``NewsletterError``, the tree drawn in the
``newsletter.errors`` docstring is the code's, and the command line ends with each
error's own ``exit_code`` (mapped in one place, ``cli.common.handle_errors``)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import newsletter
from newsletter import errors
from newsletter.cli.common import handle_errors
from newsletter.errors import EXIT_FAILED, EXIT_USAGE, NewsletterError

PACKAGE = Path(newsletter.__file__).parent


def project_classes() -> list[type[NewsletterError]]:
    return [
        c
        for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, NewsletterError) and c.__module__ == errors.__name__
    ]


def drawn_tree() -> list[tuple[int, str, str | None, int]]:
    """(depth, class name, extra base, exit code) of each line of the docstring tree."""
    doc = errors.__doc__ or ""
    rows = []
    for line in doc.splitlines():
        m = re.match(r"^\s{4}([│ ]*(?:[├└]── )?)(\w+)(?: \((\w+)\))?\s+(?:exit (\d))?", line)
        if not m or not m.group(2).endswith("Error"):
            continue
        depth = len(m.group(1)) // 4
        rows.append((depth, m.group(2), m.group(3), int(m.group(4) or 0)))
    return rows


def test_the_docstring_tree_is_the_class_tree() -> None:
    rows = drawn_tree()
    assert rows[0][1] == "NewsletterError" and rows[0][0] == 0
    assert {name for _, name, _, _ in rows} == {c.__name__ for c in project_classes()}
    parents: list[str] = []
    inherited = {0: EXIT_FAILED}
    for depth, name, extra, code in rows:
        cls = getattr(errors, name)
        parents[depth:] = [name]
        if depth:
            # The parent drawn above it is its first base; the one in parentheses, the other.
            bases = [b.__name__ for b in cls.__bases__]
            assert bases[0] == parents[depth - 1], name
            assert bases[1:] == ([extra] if extra else []), name
        expected = code or inherited[depth]
        inherited[depth + 1] = expected
        assert cls.exit_code == expected, name


def test_every_exception_the_package_defines_is_in_the_tree() -> None:
    # Outside errors.py, an exception class is only ever a private helper of its module.
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                assert not bases & {"Exception", "ValueError", "RuntimeError"}, (
                    f"{path.relative_to(PACKAGE)}: {node.name} is outside newsletter.errors"
                )


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigError("bad", setting="x"), EXIT_USAGE),
        (errors.AddressError("nope", "no @"), EXIT_USAGE),
        (errors.TemplateError("email.html.j2: broken"), EXIT_USAGE),
        (errors.StoreError("locked"), EXIT_FAILED),
        (errors.AuthenticationError("refused"), EXIT_FAILED),
        (errors.TransientDeliveryError("a@example.org", "451"), EXIT_FAILED),
        (errors.ExpiredTokenError("old link"), EXIT_FAILED),
        (errors.CompletionError("timed out"), EXIT_FAILED),
    ],
)
def test_the_cli_exits_with_the_errors_own_code(error: NewsletterError, code: int) -> None:
    @click.command()
    @handle_errors
    def command() -> None:
        raise error

    r = CliRunner().invoke(command, [])
    assert r.exit_code == code == type(error).exit_code
    assert r.output == f"error: {error}\n"


def test_moved_errors_keep_their_old_bases() -> None:
    assert issubclass(errors.BadTokenError, ValueError)
    assert issubclass(errors.AddressError, ValueError)
    assert issubclass(errors.ExpiredTokenError, errors.BadTokenError)
    assert not issubclass(errors.AuthenticationError, errors.DeliveryError)
