"""From ranked passages to an answer: context assembly, a chat-completions client, extractive answers."""

from winnow.answer.ask import Answer, ask, citation_numbers
from winnow.answer.context import DEFAULT_TOKEN_BUDGET, Context, Passage, build_context, token_counter
from winnow.answer.extractive import NO_LLM_NOTICE, Sentence, best_sentences
from winnow.answer.llm import ChatClient, LLMConfigError, LLMError
from winnow.answer.prompt import SYSTEM_PROMPT, build_messages

__all__ = [
    "DEFAULT_TOKEN_BUDGET",
    "NO_LLM_NOTICE",
    "SYSTEM_PROMPT",
    "Answer",
    "ChatClient",
    "Context",
    "LLMConfigError",
    "LLMError",
    "Passage",
    "Sentence",
    "ask",
    "best_sentences",
    "build_context",
    "build_messages",
    "citation_numbers",
    "token_counter",
]
