#!/usr/bin/env python
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.path[0] = str(root)
    if sys.argv[1:2] == ["runserver"]:  # a web server: no owner role (shared.env)
        os.environ["TENANCY_SERVING"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rls.settings")
    from django.core.management import execute_from_command_line

    from shared.env import MissingSetting

    try:
        execute_from_command_line(sys.argv)
    except MissingSetting as exc:
        sys.exit(f"error: {exc}")
