"""A form protected against cross-site request forgery: with ``xsrf_cookies``
a POST must carry the token of the ``_xsrf`` cookie (the form field
``xsrf_form_html()`` writes, or an ``X-XSRFToken`` header), else it is a 403."""

from __future__ import annotations

from serve import serve

from reactor import escape, web


class FormHandler(web.RequestHandler):
    said: list[str] = []

    def get(self) -> None:
        self.write("<!DOCTYPE html><title>Form</title><form method='post'>")
        self.write(self.xsrf_form_html())
        self.write("<input name='message'><button>Send</button></form><ul>")
        for message in self.said:
            self.write(f"<li>{escape.xhtml_escape(message)}</li>")
        self.write("</ul>")

    def post(self) -> None:
        self.said.append(self.get_argument("message")[:200])
        del self.said[:-20]
        self.redirect("/")


def make_app() -> web.Application:
    return web.Application([(r"/", FormHandler)], xsrf_cookies=True)


if __name__ == "__main__":
    serve(make_app())
