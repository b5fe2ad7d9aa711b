"""A tiny random-weight Qwen2.5-VL, its tokenizer and image processor, built locally from a config.

Nothing may be downloaded here, yet the code that fine-tunes a real Qwen2.5-VL-3B must be exercised end
to end: this builds the same architecture (vision tower, merger, M-RoPE text model) a few layers deep, a
byte-level BPE tokenizer trained on the corpus's own prompts with Qwen's special tokens and the three state
tokens, and Qwen's image processor, and saves them as a model folder that ``from_pretrained`` reads like
a downloaded one.
"""

from __future__ import annotations

from pathlib import Path

from streamo_data.formats.render import REFERENCE_SYSTEM_PROMPT, STATE_TOKENS

# Qwen2.5-VL's special tokens, in its own spelling
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"
END_OF_TEXT = "<|endoftext|>"
SPECIAL = [END_OF_TEXT, IM_START, IM_END, VISION_START, VISION_END, IMAGE_PAD, VIDEO_PAD]
PATCH, MERGE = 14, 2
TINY_SIDE = 56  # a 56x56 frame is 4x4 patches, merged 2x2: four image tokens


def build_tokenizer(vocab_size: int = 1024):  # noqa: ANN201 - transformers' tokenizer type, imported lazily
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    corpus = [REFERENCE_SYSTEM_PROMPT, "When does the person open the door? Describe what happens.",
              "<0s-1s> <12s-13s> 0123456789 the a person dog opens closes pours cuts walks table kitchen"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=IM_END, pad_token=END_OF_TEXT)
    fast.add_tokens(list(STATE_TOKENS.values()))  # one token each, as the reference's special_token_v1.txt
    return fast


def build_tiny_qwen(out_dir: Path, seed: int = 0) -> Path:
    """Save a tiny random Qwen2.5-VL with its tokenizer and image processor in ``out_dir``."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessor

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL}
    config = Qwen2_5_VLConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 8192, "bos_token_id": ids[END_OF_TEXT],
                     "eos_token_id": ids[IM_END], "pad_token_id": ids[END_OF_TEXT],
                     "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]}},
        vision_config={"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                       "out_hidden_size": 64, "patch_size": PATCH, "spatial_merge_size": MERGE,
                       "temporal_patch_size": 2, "fullatt_block_indexes": [1], "window_size": 56},
        image_token_id=ids[IMAGE_PAD], video_token_id=ids[VIDEO_PAD], vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END])
    model = Qwen2_5_VLForConditionalGeneration(config)
    processor = Qwen2VLImageProcessor(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=2,
                                      min_pixels=TINY_SIDE * TINY_SIDE, max_pixels=TINY_SIDE * TINY_SIDE)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
