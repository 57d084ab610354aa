"""A captioner backed by a local vision-language model directory (transformers).

``describe_motion`` shows the model a strip of driving frames (left to right) and asks
what the character does; ``describe_appearance`` shows the reference and asks what it
looks like; ``fuse`` asks a language model (``fusion_model_dir``, default the same
model) to write one sentence about the reference character doing the motion. Any
model that ``AutoModelForImageTextToText`` loads works (BLIP, GIT, LLaVA, Qwen2-VL,
SmolVLM...); chat models get their chat template. Weights come from local folders only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from charanim.captioning.base import Captioner
from charanim.errors import CharanimError, ModelLoadError

MOTION_QUESTION = (
    "These frames, left to right, show a character moving. In one short sentence, what does the character do?"
)
APPEARANCE_QUESTION = "In a few words, describe the character: its kind, colours and clothes."
FUSION_TEMPLATE = (
    "Motion: {motion}\nCharacter: {appearance}\n"
    "Write one sentence describing this character performing this motion:"
)


def _require(folder: Path | None, what: str) -> Path:
    if folder is None:
        raise CharanimError(
            f"The vlm captioner needs {what} (a local model directory; nothing is downloaded)."
        )
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise ModelLoadError(
            f"Model directory '{folder}' does not exist (the vlm captioner never downloads models)."
        )
    return folder


def frame_strip(frames: np.ndarray, count: int = 4, height: int = 224) -> Image.Image:
    """``count`` evenly spaced frames side by side (what the model sees of the motion)."""
    picks = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    tiles = [
        Image.fromarray(frames[i]).resize((round(frames.shape[2] * height / frames.shape[1]), height))
        for i in picks
    ]
    strip = Image.new("RGB", (sum(t.width for t in tiles), height))
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width
    return strip


class VLMCaptioner(Captioner):
    name = "vlm"
    description = (
        "a local vision-language model (transformers) describes motion and appearance; a language model fuses"
    )

    def __init__(
        self, model_dir: Path | None = None, fusion_model_dir: Path | None = None, max_new_tokens: int = 40
    ):
        import transformers

        folder = _require(model_dir, "--model-dir")
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(folder, local_files_only=True)
            self.model = transformers.AutoModelForImageTextToText.from_pretrained(
                folder, local_files_only=True
            ).eval()
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(
                f"'{folder}' is not a vision-language model transformers can load: {str(exc).splitlines()[0]}"
            ) from None
        self.max_new_tokens = max_new_tokens
        self.fusion = None
        if fusion_model_dir is not None:
            fusion = _require(fusion_model_dir, "--fusion-model-dir")
            try:
                self.fusion = (
                    transformers.AutoTokenizer.from_pretrained(fusion, local_files_only=True),
                    transformers.AutoModelForCausalLM.from_pretrained(fusion, local_files_only=True).eval(),
                )
            except (OSError, ValueError, KeyError) as exc:
                raise ModelLoadError(
                    f"'{fusion}' is not a language model transformers can load: {str(exc).splitlines()[0]}"
                ) from None

    def _ask(self, image: Image.Image, question: str) -> str:
        import torch

        processor = self.processor
        if getattr(processor, "chat_template", None):
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
            inputs = processor(images=image, text=prompt, return_tensors="pt")
        else:  # captioning models (BLIP, GIT): the image alone, the answer is a caption
            inputs = processor(images=image, return_tensors="pt")
        with torch.no_grad():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        if "input_ids" in inputs and output.shape[1] > inputs["input_ids"].shape[1]:
            output = output[:, inputs["input_ids"].shape[1] :]
        return _sentence(processor.batch_decode(output, skip_special_tokens=True)[0])

    def describe_motion(self, frames, keypoints, fps):
        if frames is None or len(frames) == 0:
            return "moves", {"reason": "no frames"}
        return self._ask(frame_strip(frames), MOTION_QUESTION), {"frames_shown": min(4, len(frames))}

    def describe_appearance(self, image, alpha, keypoints):
        return self._ask(Image.fromarray(image), APPEARANCE_QUESTION), {}

    def fuse(self, motion: str, appearance: str) -> str:
        if self.fusion is None:
            return super().fuse(motion, appearance)
        import torch

        tokenizer, model = self.fusion
        inputs = tokenizer(FUSION_TEMPLATE.format(motion=motion, appearance=appearance), return_tensors="pt")
        with torch.no_grad():
            output = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        text = _sentence(
            tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        )
        return text or super().fuse(motion, appearance)


def _sentence(text: str) -> str:
    """The first line of generated text, trimmed."""
    return text.strip().splitlines()[0].strip() if text.strip() else ""
