"""The configuration of Winnow's gated cross-encoder, registered with transformers' AutoConfig.

Kept apart from the model (gated_cross_encoder.py): loading a tokenizer needs only this, and the model
module imports transformers' modeling code (seconds of start-up) that ONNX scoring never runs.
"""

from __future__ import annotations

from transformers import AutoConfig, BertConfig

MODEL_TYPE = "winnow-gated-bert"


class GatedCrossEncoderConfig(BertConfig):
    """BERT's configuration plus the initial similarity scale and bias of the bi-encoder term."""

    model_type = MODEL_TYPE

    def __init__(
        self,
        similarity_scale: float = 20.0,
        similarity_bias: float = -8.0,
        cls_token_id: int = 101,
        lexical_match: bool = False,
        lexical_weight: float = 0.0,
        lexical_avgdl: float = 100.0,
        lexical_k1: float = 1.2,
        lexical_b: float = 0.75,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.cls_token_id = cls_token_id
        self.similarity_scale = similarity_scale
        self.similarity_bias = similarity_bias
        self.lexical_match = lexical_match
        self.lexical_weight = lexical_weight
        self.lexical_avgdl = lexical_avgdl
        self.lexical_k1 = lexical_k1
        self.lexical_b = lexical_b


AutoConfig.register(MODEL_TYPE, GatedCrossEncoderConfig, exist_ok=True)
