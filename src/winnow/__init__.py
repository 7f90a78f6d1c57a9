"""Winnow: two-stage retrieval for RAG. Recall candidates fast, then rerank them with a cross-encoder.

Everything a user needs is importable from here: ``from winnow import Index, Pipeline, Reranker, ask``.
Optional integrations stay in their own modules (``winnow.integrations.langchain``, ``winnow.stores.chroma``,
...) so that importing them is what asks for the extra.
"""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes
from winnow.errors import ModelNotFoundError, UnsupportedHardwareError, WinnowError
from winnow.extras import MissingExtraError
from winnow.records import AuthorityRules, Candidate, Chunk, Document, as_candidate

if TYPE_CHECKING:
    from winnow.answer import Answer, ChatClient, LLMConfigError, LLMError, ask, build_context
    from winnow.evaluation.datasets import DatasetError
    from winnow.pipeline import Pipeline, PipelineResponse, PipelineResult
    from winnow.rerank import DEFAULT_RERANKER, Cascade, Ranking, Reranker, RerankResult, ScoreCache
    from winnow.rerank.hosted.reranker import HostedAPIError
    from winnow.retrieve import Filters, Index, IndexNotFoundError
    from winnow.retrieve.index import DamagedIndexError, IndexExistsError
    from winnow.retrieve.ingest import IngestError, IngestReport, iter_documents
    from winnow.retrieve.writing import IndexBusyError
    from winnow.signals import Abstention, Signals

__version__ = "0.1.0"

# Each public name and the module that defines it. The heavy ones (torch, numpy, bm25s) load on first
# use, so `import winnow` and `winnow --help` stay fast.
_EXPORTS = {
    **dict.fromkeys(
        ["DEFAULT_RERANKER", "Cascade", "Ranking", "RerankResult", "Reranker", "ScoreCache"], "winnow.rerank"
    ),
    **dict.fromkeys(["Pipeline", "PipelineResponse", "PipelineResult"], "winnow.pipeline"),
    **dict.fromkeys(["Filters", "Index", "IndexNotFoundError"], "winnow.retrieve"),
    **dict.fromkeys(["DamagedIndexError", "IndexExistsError"], "winnow.retrieve.index"),
    **dict.fromkeys(["IngestError", "IngestReport", "iter_documents"], "winnow.retrieve.ingest"),
    "IndexBusyError": "winnow.retrieve.writing",
    **dict.fromkeys(["Abstention", "Signals"], "winnow.signals"),
    **dict.fromkeys(
        ["Answer", "ChatClient", "LLMConfigError", "LLMError", "ask", "build_context"], "winnow.answer"
    ),
    "DatasetError": "winnow.evaluation.datasets",
    "HostedAPIError": "winnow.rerank.hosted.reranker",
}

__all__ = [
    "DEFAULT_RERANKER",
    "Abstention",
    "Answer",
    "AuthorityRules",
    "Candidate",
    "Cascade",
    "ChatClient",
    "Chunk",
    "DamagedIndexError",
    "DatasetError",
    "Document",
    "Filters",
    "HostedAPIError",
    "Index",
    "IndexBusyError",
    "IndexExistsError",
    "IndexNotFoundError",
    "IngestError",
    "IngestReport",
    "LLMConfigError",
    "LLMError",
    "MissingExtraError",
    "ModelNotFoundError",
    "Pipeline",
    "PipelineResponse",
    "PipelineResult",
    "Ranking",
    "RerankResult",
    "Reranker",
    "ScoreCache",
    "Signals",
    "UnsupportedHardwareError",
    "WinnowError",
    "__version__",
    "as_candidate",
    "ask",
    "build_context",
    "iter_documents",
]

__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS)
