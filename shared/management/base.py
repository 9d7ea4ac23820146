"""What the tenant commands share: progress on stderr, and a confirmation typed by hand."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class ProgressCommand(BaseCommand):
    """A command that says what it is doing on stderr, a line a step, unless -v0."""

    def execute(self, *args: Any, **options: Any) -> Any:
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)

    def progress(self, what: str) -> None:
        if self.verbosity >= 1:
            self.stderr.write(f"  {what}...")


def confirm(slug: str, question: str, *, doing: str, done: str, yes: bool) -> None:
    """Go on only with ``--yes``, or once the operator has typed the slug at a terminal."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f"not {doing} without confirmation: pass --yes")
    if input(f"{question} Type the slug to confirm: ").strip() != slug:
        raise CommandError(f"not confirmed; nothing was {done}")
