"""The subtask list as its readers see it: how many rows a page holds, and how the account of a
row is marked in the HTML (shared/templates/shared/subtask_list.html). The views, the
benchmarks' response checks and the tests all read these, so they cannot disagree.

No Django import here: the benchmark's bare psycopg ceiling uses it too."""

import re

PAGE_SIZE = 10
ACCOUNT_CELL = re.compile(r'<td class="account">([^<]*)</td>')
