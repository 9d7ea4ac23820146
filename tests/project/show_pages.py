"""Print tenant-7's subtask rows on three of its pages, as JSON (for test_between_strategies,
run with a strategy's settings)."""

import json
import re

import django

django.setup()

from django.test import Client  # noqa: E402

pages = {}
for path in ("/subtasks/", "/subtasks/3/", "/subtasks/9/"):
    html = Client().get(path, headers={"host": "tenant-7.localhost"}).content.decode()
    pages[path] = re.search(r"<tbody>.*</tbody>", html, re.S)[0]
print(json.dumps(pages))
