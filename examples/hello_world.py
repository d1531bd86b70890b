# Seed 000's hello world ("Understand Tornado"), with tornado changed to reactor.
import reactor.ioloop
import reactor.web

class MainHandler(reactor.web.RequestHandler):

    @reactor.gen.coroutine
    def get(self):
        self.write("Hello, world")

application = reactor.web.Application([
    (r"/", MainHandler),
])

if __name__ == "__main__":
    application.listen(8888)
    reactor.ioloop.IOLoop.current().start()
