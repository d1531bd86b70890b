#!/usr/bin/env python
# Seed 001's hello world (reading notes on Tornado's IOLoop), with tornado
# changed to reactor: options from the command line, an explicit HTTPServer.

import reactor.httpserver
import reactor.ioloop
import reactor.options
import reactor.web

from reactor.options import define, options

define("port", default=8888, help="run on the given port", type=int)

class MainHandler(reactor.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

def main():
    reactor.options.parse_command_line()
    application = reactor.web.Application([
        (r"/", MainHandler),
    ])
    http_server = reactor.httpserver.HTTPServer(application)
    http_server.listen(options.port)
    reactor.ioloop.IOLoop.instance().start()

if __name__ == "__main__":
    main()
