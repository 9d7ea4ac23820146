"""`make slides`: serve the deck on 127.0.0.1, built afresh from the code and the latest
benchmark figures on every load of the page, so a reload shows what the repository says now.

    python presentation/serve.py [--port 8001]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import build  # noqa: E402


class Deck(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] not in ("/", "/index.html"):
            return super().do_GET()
        try:
            page, status = build.build().encode(), 200
        except build.QuoteMissing as exc:
            page, status = f"The deck cannot be built: {exc}".encode(), 500
        self.send_response(status)
        self.send_header(
            "Content-Type", "text/html; charset=utf-8" if status == 200 else "text/plain"
        )
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def end_headers(self):
        if self.path.endswith(".svg"):  # the charts change when the benchmarks run again
            self.send_header("Cache-Control", "no-store")
        super().end_headers()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args(argv)
    try:
        build.build()
    except build.QuoteMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    handler = functools.partial(Deck, directory=str(HERE))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"Slides: http://localhost:{args.port}/ (S opens the speaker notes; Ctrl-C stops)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
