"""Written for Tornado 6.6; run with the module prefix (tornado or reactor) as argv[1]
by tests/test_review12_port.py, which compares what each does."""

import http.client
import importlib
import json
import socket
import sys

lib = sys.argv[1]
web = importlib.import_module(lib + ".web")
ioloop = importlib.import_module(lib + ".ioloop")
testing = importlib.import_module(lib + ".testing")


class Echo(web.RequestHandler):
    def post(self):
        self.write(
            {
                "ip": self.request.remote_ip,
                "proto": self.request.protocol,
                "n": len(self.request.body),
            }
        )


sock, port = testing.bind_unused_port()
sock.close()
app = web.Application([("/", Echo)])
server = app.listen(
    port,
    "127.0.0.1",
    family=socket.AF_INET,
    backlog=64,
    flags=None,
    reuse_port=True,
    xheaders=True,
    max_body_size=100,
    no_keep_alive=True,
    idle_connection_timeout=5,
    decompress_request=True,
    trusted_downstream=["10.0.0.9"],
)
print(type(server).__name__, type(server).__module__.split(".")[0])
loop = ioloop.IOLoop.current()


def blocking():
    out = []
    for body, headers in [
        (b"x" * 10, {"X-Forwarded-For": "1.2.3.4, 10.0.0.9", "X-Forwarded-Proto": "https"}),
        (b"x" * 101, {}),
    ]:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/", body=body, headers=headers)
        status = connection = None
        try:
            r = c.getresponse()
            status, connection = r.status, r.getheader("Connection")
            text = r.read().decode()[:80]
        except ConnectionResetError:
            # Tornado closes a refused connection with the body unread: the
            # kernel may reset it before the answer is read (a lingering
            # close, as reactor's, does not).
            text = "(reset)"
        out.append((status, connection, text))
        c.close()
    return out


async def main():
    return await loop.run_in_executor(None, blocking)


print(json.dumps(loop.run_sync(main)))
