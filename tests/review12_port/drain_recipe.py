"""Written for Tornado 6.6; run with the module prefix (tornado or reactor) as argv[1]
by tests/test_review12_port.py, which compares what each does."""

import importlib
import signal
import sys

lib = sys.argv[1]
web = importlib.import_module(lib + ".web")
httpserver = importlib.import_module(lib + ".httpserver")
ioloop = importlib.import_module(lib + ".ioloop")
netutil = importlib.import_module(lib + ".netutil")
locks = importlib.import_module(lib + ".locks")

never = locks.Event()


class Fast(web.RequestHandler):
    def get(self):
        self.write("fast")


class Slow(web.RequestHandler):
    async def get(self):
        print("slow: started", flush=True)
        await never.wait()
        self.write("slow")

    def on_connection_close(self):
        print("slow: on_connection_close", flush=True)


def main():
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    server = httpserver.HTTPServer(web.Application([("/fast", Fast), ("/slow", Slow)]))
    server.add_sockets(sockets)
    loop = ioloop.IOLoop.current()

    async def shutdown():
        server.stop()
        await server.close_all_connections()
        print("drained", flush=True)
        loop.stop()

    signal.signal(signal.SIGTERM, lambda s, f: loop.add_callback_from_signal(shutdown))
    print("port", sockets[0].getsockname()[1], flush=True)
    loop.start()
    print("exit", flush=True)


main()
