"""A login kept in a signed cookie: ``set_signed_cookie`` signs the name with
``cookie_secret``, ``get_current_user`` reads it back (a cookie the server did
not sign, or a changed one, reads as None), and ``@authenticated`` sends
anonymous visitors to ``login_url``."""

from __future__ import annotations

import os

from serve import serve

from reactor import web


class BaseHandler(web.RequestHandler):
    def get_current_user(self) -> str | None:
        name = self.get_signed_cookie("user")
        return name.decode() if name else None


class SecretHandler(BaseHandler):
    @web.authenticated
    def get(self) -> None:
        self.write(f"Hello, {self.current_user}: this page is only for signed-in users.")


class LoginHandler(BaseHandler):
    def get(self) -> None:
        self.write(
            "<form method='post'>"
            + self.xsrf_form_html()
            + "<input name='name'><button>Sign in</button></form>"
        )

    def post(self) -> None:
        name = self.get_argument("name").strip()[:32]
        if not name:
            raise web.HTTPError(400, "a name, please")
        self.set_signed_cookie("user", name, httponly=True)
        target = self.get_argument("next", "/")
        if not target.startswith("/") or target.startswith(("//", "/\\")):
            target = "/"  # only a path on this site: no open redirect
        self.redirect(target)


def make_app() -> web.Application:
    return web.Application(
        [(r"/", SecretHandler), (r"/login", LoginHandler)],
        cookie_secret=os.urandom(32).hex(),
        login_url="/login",
        xsrf_cookies=True,
    )


if __name__ == "__main__":
    serve(make_app())
