"""Fixtures shared by the conformance tests: a TLS certificate made at run time.

``tls_certificate`` is a throwaway CA and a server certificate it signed
(:func:`reactor.testing.tls.make_certificate`), made once per session; without
``cryptography`` or ``openssl``, the tests that need it are skipped and say why.
"""

from __future__ import annotations

import pytest

from reactor.testing.tls import TLSCertificate, make_certificate


@pytest.fixture(scope="session")
def tls_certificate(tmp_path_factory: pytest.TempPathFactory) -> TLSCertificate:
    try:
        return make_certificate(tmp_path_factory.mktemp("tls"))
    except RuntimeError as e:
        pytest.skip(str(e))
