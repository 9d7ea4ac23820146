#!/usr/bin/env python
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    sys.path[0] = str(root)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multidb.settings")
    from django.core.management import execute_from_command_line

    from shared.env import SettingError

    try:
        execute_from_command_line(sys.argv)
    except SettingError as exc:
        sys.exit(f"error: {exc}")
