from typing import Any

from django.core.management.base import BaseCommand


class ProgressCommand(BaseCommand):
    """A command that says what it is doing on stderr, a line a step, unless -v0."""

    def execute(self, *args: Any, **options: Any) -> Any:
        self.verbosity = options.get("verbosity", 1)
        return super().execute(*args, **options)

    def progress(self, what: str) -> None:
        if self.verbosity >= 1:
            self.stderr.write(f"  {what}...")
