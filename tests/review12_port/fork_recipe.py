"""Written for Tornado 6.6; run with the module prefix (tornado or reactor) as argv[1]
by tests/test_review12_port.py, which compares what each does."""

import importlib
import os
import sys

lib = sys.argv[1]
web = importlib.import_module(lib + ".web")
httpserver = importlib.import_module(lib + ".httpserver")
ioloop = importlib.import_module(lib + ".ioloop")
netutil = importlib.import_module(lib + ".netutil")
process = importlib.import_module(lib + ".process")


class Pid(web.RequestHandler):
    def get(self):
        self.write(f"{process.task_id()} {os.getpid()}")


class Quit(web.RequestHandler):
    def get(self):
        self.write("bye")
        self.finish()
        ioloop.IOLoop.current().add_callback(ioloop.IOLoop.current().stop)


sockets = netutil.bind_sockets(0, "127.0.0.1")
print("port", sockets[0].getsockname()[1], flush=True)
process.fork_processes(2, max_restarts=5)
server = httpserver.HTTPServer(web.Application([("/pid", Pid), ("/quit", Quit)]))
server.add_sockets(sockets)
ioloop.IOLoop.current().start()
print("child", process.task_id(), "leaves", flush=True)
