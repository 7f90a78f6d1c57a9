"""A cross-encoder that starts out as its bi-encoder and learns how much query and passage should interact.

A cross-encoder made from a bi-encoder's weights with a fresh classification head starts from nothing:
the head has never seen a relevance label, and a few thousand training queries on a CPU do not teach
it what the bi-encoder learned from a billion pairs. This model keeps that knowledge from step 0.

It reads the usual pair input ``[CLS] query [SEP] passage [SEP]`` in one pass. In every attention head,
the attention weights are a mix of two softmaxes over the same scores: one restricted to the token's
own segment (query tokens see only the query, passage tokens only the passage: exactly how the
bi-encoder encodes them apart) and one over the whole pair (a plain cross-encoder). A gate per layer
and head, initialised at 0, sets the mix. Passage positions restart after the query and every token
uses segment embedding 0, as in the bi-encoder. The score is

    logit = scale * cos(mean(query tokens), mean(passage tokens)) + bias + head(pooled [CLS])

with the head initialised at 0, so before training the logit ranks passages exactly as the
bi-encoder's cosine does (up to the passage's missing [CLS] token). Training opens the gates and
trains the head only as far as the labels support it; a development split shows whether it helped.

Optionally (``lexical_match``) the logit also gets ``lexical_weight * BM25(query, passage)`` computed
on the pair's own word pieces, with an IDF table stored in the model. A bi-encoder misses exact
matches of rare terms (gene names, drug names, numbers) that BM25 catches; with this term the model
starts as a hybrid of the two, and training learns what neither catches (reranking SciFact's hybrid
top 20 at 512 tokens, nDCG@10: 0.650 for a model trained without the term, 0.714 with it).
Relevance models have long mixed exact-match signals into neural scores (DRMM, Guo et al. 2016; BM25
injected into BERT rerankers, Askari et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, BertConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from winnow.models.gated_config import MODEL_TYPE, GatedCrossEncoderConfig


class _Embeddings(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        segment = self.token_type_embeddings.weight[0]
        hidden = self.word_embeddings(input_ids) + self.position_embeddings(position_ids) + segment
        return self.dropout(self.LayerNorm(hidden))


class _SelfAttention(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.implementation = config._attn_implementation or "eager"
        # How far each head looks across the query/passage boundary: 0 = bi-encoder, 1 = cross-encoder.
        self.cross_gate = nn.Parameter(torch.zeros(self.heads))

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_size).transpose(1, 2)

    def forward(
        self, hidden: torch.Tensor, full_mask: torch.Tensor, segment_mask: torch.Tensor
    ) -> torch.Tensor:
        # Cast once for the three projections (fused bf16 layers would otherwise each cast the fp32 input).
        hidden = hidden.to(self.query.weight.dtype)
        q, k, v = (
            self._split(self.query(hidden)),
            self._split(self.key(hidden)),
            self._split(self.value(hidden)),
        )
        # The forward pass uses the gate clamped to [0, 1]; the gradient passes straight through the clamp,
        # so a gate pushed below 0 early in training can still open later (a plain clamp would kill it).
        raw = self.cross_gate
        gate = (raw + (raw.clamp(0.0, 1.0) - raw).detach()).to(q.dtype).view(1, -1, 1, 1)
        if self.implementation == "sdpa":
            # (within + g * (across - within)) @ v == lerp(within @ v, across @ v, g): two fused attention
            # calls and one fused mix, and only one call at inference while every gate of the layer is shut.
            p = self.dropout.p if self.training else 0.0
            attend = nn.functional.scaled_dot_product_attention
            context = attend(q, k, v, attn_mask=segment_mask, dropout_p=p)
            if self.training or bool((gate > 0).any()):
                context = torch.lerp(context, attend(q, k, v, attn_mask=full_mask, dropout_p=p), gate)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_size)
            within = torch.softmax(scores + segment_mask, dim=-1)
            across = torch.softmax(scores + full_mask, dim=-1)
            context = self.dropout(torch.lerp(within, across, gate)) @ v
        return context.transpose(1, 2).reshape(hidden.shape)


class _Output(nn.Module):
    """Dense, dropout, residual, LayerNorm: BERT's ``*.output`` block."""

    def __init__(self, inner: int, hidden: int, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(inner, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.self = _SelfAttention(config)
        self.output = _Output(config.hidden_size, config.hidden_size, config)


class _Intermediate(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = nn.functional.gelu  # as BERT's block names it (fused_linear looks for it)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class _Layer(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.attention = _Attention(config)
        self.intermediate = _Intermediate(config)
        self.output = _Output(config.intermediate_size, config.hidden_size, config)

    def forward(
        self, hidden: torch.Tensor, full_mask: torch.Tensor, segment_mask: torch.Tensor
    ) -> torch.Tensor:
        attended = self.attention.output(self.attention.self(hidden, full_mask, segment_mask), hidden)
        return self.output(self.intermediate(attended), attended)


class _Encoder(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(config) for _ in range(config.num_hidden_layers))


class _Pooler(nn.Module):
    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)


class _Bert(nn.Module):
    """BERT's modules under BERT's parameter names, so a bi-encoder's weights load unchanged."""

    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.encoder = _Encoder(config)
        self.pooler = _Pooler(config)


class GatedBertForSequenceClassification(PreTrainedModel):
    """One logit per (query, passage) pair; see the module docstring for how it starts as a bi-encoder."""

    config_class = GatedCrossEncoderConfig
    base_model_prefix = "bert"
    _supports_sdpa = True
    main_input_name = "input_ids"

    def __init__(self, config: GatedCrossEncoderConfig) -> None:
        super().__init__(config)
        self.bert = _Bert(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.similarity_scale = nn.Parameter(torch.tensor(float(config.similarity_scale)))
        self.similarity_bias = nn.Parameter(torch.tensor(float(config.similarity_bias)))
        if config.lexical_match:
            self.lexical_weight = nn.Parameter(torch.tensor(float(config.lexical_weight)))
            self.register_buffer("lexical_idf", torch.zeros(config.vocab_size))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Fresh parts only: the head and gates start at 0 (everything else comes from the bi-encoder)."""
        if module is self.classifier:
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, _SelfAttention):
            nn.init.zeros_(module.cross_gate)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def _lexical_match(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> torch.Tensor:
        """BM25 of the passage's word pieces for the query's distinct word pieces, one score per row."""
        config = self.config
        idf = self.lexical_idf[input_ids]
        # Special tokens, and only they, have IDF 0 (set_lexical_idf): the passage's closing [SEP] is
        # not one of its words.
        present = attention_mask.bool() & (idf > 0)
        query = present & (token_type_ids == 0)
        passage = present & (token_type_ids == 1)
        same = input_ids[:, :, None] == input_ids[:, None, :]
        term_frequency = (same & passage[:, None, :]).sum(-1).float()
        length = input_ids.shape[1]
        earlier = torch.ones(length, length, dtype=torch.bool, device=input_ids.device).tril(-1)
        first = query & ~(same & earlier & query[:, None, :]).any(-1)
        passage_length = passage.sum(-1, keepdim=True).float()
        saturation = config.lexical_k1 * (
            1 - config.lexical_b + config.lexical_b * passage_length / config.lexical_avgdl
        )
        term = idf * term_frequency * (config.lexical_k1 + 1) / (term_frequency + saturation)
        return (term * first).sum(-1)

    def _give_passage_its_cls(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Insert a [CLS] token where each row's passage starts.

        The bi-encoder always saw a [CLS] at position 0, and its passage representation depends on it
        (without it, cosine to the true embedding drops to about 0.5), so the passage gets its own.
        """
        length = input_ids.shape[1]
        # Query tokens come first and padding last (BERT tokenizers pad on the right).
        start = ((token_type_ids == 0) & attention_mask.bool()).long().sum(dim=1, keepdim=True)
        slots = torch.arange(length + 1, device=input_ids.device).expand(input_ids.shape[0], -1)
        source = torch.where(slots < start, slots, slots - 1).clamp(min=0, max=length - 1)
        inserted = slots == start
        cls_id = torch.full_like(source, self.config.cls_token_id)
        input_ids = torch.where(inserted, cls_id, input_ids.gather(1, source))
        attention_mask = torch.where(inserted, 1, attention_mask.gather(1, source))
        token_type_ids = torch.where(inserted, 1, token_type_ids.gather(1, source))
        return input_ids, attention_mask, token_type_ids

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **_: object,
    ) -> SequenceClassifierOutput:
        if token_type_ids is None:
            raise ValueError("this model needs token_type_ids to tell the query from the passage")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lexical = (
            self.lexical_weight * self._lexical_match(input_ids, attention_mask, token_type_ids)
            if self.config.lexical_match
            else 0.0
        )
        input_ids, attention_mask, token_type_ids = self._give_passage_its_cls(
            input_ids, attention_mask, token_type_ids
        )
        present = attention_mask.bool()
        passage = token_type_ids.bool() & present
        query = ~token_type_ids.bool() & present
        # Passage positions restart at 0 (its own [CLS]), as if it were encoded alone.
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        positions = torch.where(passage, torch.cumsum(passage.long(), dim=1) - 1, positions)
        # Padding keeps position 0: with the inserted [CLS] a full-length row is one slot longer than the
        # position table, and only padding can sit in that last slot.
        positions = torch.where(present, positions, 0)

        hidden = self.bert.embeddings(input_ids, positions)
        # Attention runs in its projections' format: the model's own, or bf16 when the linear layers are
        # fused (winnow.models.fused_linear) while the residual stream stays fp32.
        attention_dtype = self.bert.encoder.layer[0].attention.self.query.weight.dtype
        lowest = torch.finfo(attention_dtype).min
        full_mask = torch.where(present[:, None, None, :], 0.0, lowest).to(attention_dtype)
        same_segment = (passage[:, :, None] == passage[:, None, :]) & present[:, None, :]
        segment_mask = torch.where(same_segment[:, None], 0.0, lowest).to(attention_dtype)
        for layer in self.bert.encoder.layer:
            hidden = layer(hidden, full_mask, segment_mask)

        def mean(mask: torch.Tensor) -> torch.Tensor:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

        similarity = nn.functional.cosine_similarity(mean(query).float(), mean(passage).float(), dim=-1)
        pooled = torch.tanh(self.bert.pooler.dense(hidden[:, 0]))
        head = self.classifier(pooled).float().squeeze(-1)
        logits = self.similarity_scale * similarity + self.similarity_bias + head + lexical
        return SequenceClassifierOutput(logits=logits.unsqueeze(-1))


def from_bi_encoder(bi_encoder_dir: str, **config_overrides: float) -> GatedBertForSequenceClassification:
    """A gated cross-encoder holding a BERT bi-encoder's weights (e.g. all-MiniLM-L6-v2's ``BertModel``)."""
    base = BertConfig.from_pretrained(bi_encoder_dir)
    config = GatedCrossEncoderConfig(**base.to_diff_dict() | config_overrides)
    config.model_type = MODEL_TYPE
    config.architectures = ["GatedBertForSequenceClassification"]
    config.num_labels = 1
    model = GatedBertForSequenceClassification(config)
    from safetensors.torch import load_file

    weights = load_file(f"{bi_encoder_dir}/model.safetensors")
    weights = {k if k.startswith("bert.") else f"bert.{k}": v for k, v in weights.items()}
    weights = {k: v for k, v in weights.items() if "position_ids" not in k}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    fresh = {
        "classifier.weight",
        "classifier.bias",
        "similarity_scale",
        "similarity_bias",
        "lexical_weight",
        "lexical_idf",
    }
    missing = [k for k in missing if k not in fresh and not k.endswith("cross_gate")]
    if missing or unexpected:
        raise ValueError(
            f"{bi_encoder_dir} does not hold BERT weights this model can start from "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


def shut_small_gates(model: GatedBertForSequenceClassification, below: float) -> int:
    """Set every cross-attention gate under ``below`` to exactly 0; returns how many of them are now 0.

    A gate of 0.01 lets a head look 1% across the query/passage boundary, yet costs a second attention
    call in its layer, and on CPUs attention is a large share of a cross-encoder's time (40% of bf16 time
    even with one call, benchmarks/rerank_speed.py), so a model whose gates are all exactly 0 reranks about
    1.4x faster (docs/cascade.md). Whether the scores can spare those gates is for a dev set to say.
    """
    if not isinstance(model, GatedBertForSequenceClassification):
        raise ValueError("only a gated cross-encoder has cross-attention gates to shut")
    shut = 0
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            gate = layer.attention.self.cross_gate
            gate.masked_fill_(gate < below, 0.0)
            shut += int((gate == 0).sum())
    return shut


def set_lexical_idf(model: GatedBertForSequenceClassification, tokenizer, texts: Iterable[str]) -> int:
    """Fill the model's IDF table and average passage length from a collection of passages.

    The table belongs to the model (saved with its weights), so scoring needs no corpus statistics at
    run time; a model trained for one domain carries that domain's term weights. Special tokens get 0.
    Returns how many texts were counted.
    """
    if not model.config.lexical_match:
        raise ValueError("this model was built without lexical_match")
    special = set(tokenizer.all_special_ids)
    document_frequency = torch.zeros(model.config.vocab_size, dtype=torch.float64)
    documents = tokens = 0
    texts = list(texts)
    for start in range(0, len(texts), 1000):
        encoded = tokenizer(texts[start : start + 1000], add_special_tokens=False, verbose=False)
        for ids in encoded["input_ids"]:
            ids = [i for i in ids if i not in special]
            if ids:
                document_frequency[list(set(ids))] += 1
                documents += 1
                tokens += len(ids)
    if not documents:
        raise ValueError("no text to count term frequencies from")
    idf = torch.log1p((documents - document_frequency + 0.5) / (document_frequency + 0.5))
    idf[list(special)] = 0.0
    model.lexical_idf.copy_(idf.float())
    model.config.lexical_avgdl = tokens / documents
    return documents


# Importing this module lets transformers' Auto classes load saved models of this type.
AutoModelForSequenceClassification.register(
    GatedCrossEncoderConfig, GatedBertForSequenceClassification, exist_ok=True
)
