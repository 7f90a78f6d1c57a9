"""`winnow serve`: reranking (Cohere and TEI shapes), search and answers over HTTP.

FastAPI routes (``app``), dynamic batching across requests (``batching``), admission limits
(``limits``), bearer auth (``auth``) and Prometheus metrics (``metrics``); ``server`` runs it on uvicorn.
"""

from winnow.serve.app import build_asgi, create_app
from winnow.serve.server import make_server
from winnow.serve.settings import ServeSettings

__all__ = ["ServeSettings", "build_asgi", "create_app", "make_server"]
