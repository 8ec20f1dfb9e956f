"""`pycrl serve`: the scoring pipeline behind an HTTP API (FastAPI, run by uvicorn).

Install with ``pip install 'pycrl[serve]'``. `create_app` builds the ASGI application from
`ServeSettings`; ``pycrl serve`` runs it. FastAPI is imported only by `pycrl.serve.app`, so
``import pycrl`` never needs the extra.
"""

from pycrl.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def create_app(settings: ServeSettings):
    """The ASGI application (see `pycrl.serve.app`)."""
    from pycrl.serve.app import create_app as _create

    return _create(settings)
