"""Winnow inside other frameworks and services; each module is an optional extra imported only on use.

``winnow.integrations.langchain`` (``winnow[langchain]``), ``winnow.integrations.llama_index``
(``winnow[llama-index]``), ``winnow.integrations.haystack`` (``winnow[haystack]``); see
docs/integrations.md.
"""
