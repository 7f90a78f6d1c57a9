"""Hosted rerank APIs (Cohere, Voyage AI, Jina AI) behind Winnow's ``Reranker``.

``Reranker("cohere:rerank-v3.5")`` returns a ``HostedReranker``: same ``rerank`` / ``score`` /
``arerank``, results and cache as a local cross-encoder, scores from the provider's API. Each provider
is an optional extra, imported only when its reranker is built. This module stays import-light: the
``Reranker`` constructor asks it whether a model name is a hosted one.
"""

from __future__ import annotations

# provider prefix -> (module with its client, extra that installs its SDK)
PROVIDERS: dict[str, tuple[str, str]] = {
    "cohere": ("winnow.rerank.hosted.cohere", "cohere"),
    "voyage": ("winnow.rerank.hosted.voyage", "voyage"),
    "jina": ("winnow.rerank.hosted.jina", "jina"),
}


def hosted_provider(model: object) -> str | None:
    """The provider of a "provider:model" name (cohere, voyage, jina), or None for a local model."""
    if not isinstance(model, str):  # a Path is always a local model
        return None
    provider, colon, name = model.partition(":")
    return provider.lower() if colon and name and provider.lower() in PROVIDERS else None
