"""Istio's helloworld sample app (samples/helloworld/src/app.py) without Flask: HTTP on port 5000,
`/hello` answers `Hello version: <SERVICE_VERSION>, instance: <HOSTNAME>`, `/health` answers that it is healthy.
(The original also burns CPU in a loop per request to simulate work; this one does not.)"""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle and delayed ACKs add 40 ms per request.
    disable_nagle_algorithm = True
    server_version = "Werkzeug/3.0"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] == "/hello":
            body = f"Hello version: {os.environ.get('SERVICE_VERSION')}, instance: {os.environ.get('HOSTNAME')}\n"
            code = 200
        elif self.path.split("?", 1)[0] == "/health":
            body, code = "Helloworld is healthy", 200
        else:
            body, code = "Not Found\n", 404
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        print(f"{self.client_address[0]} {fmt % args} xfcc={self.headers.get('X-Forwarded-Client-Cert', '-')}",
              flush=True)


def main():
    ThreadingHTTPServer(("0.0.0.0", 5000), Handler).serve_forever()


if __name__ == "__main__":
    main()
