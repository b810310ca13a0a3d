"""BLIP-2 (Li et al., 2023) and InstructBLIP (Dai et al., 2023): a Q-Former between a
frozen image tower and, in stage 2, a frozen LLM.

- Stage 1 (``llm=None``): ITC + ITM + ITG on image-text pairs, the three
  self-attention masks of :func:`mmmim.models.multimodal.qformer_attention_mask`.
- Stage 2 (``llm=dict(...)``): the 32 query outputs, through ``llm_proj``,
  are soft prompts of a frozen LLM trained with the LM loss on the text.
- :class:`InstructBLIP`: the instruction also enters the Q-Former, after the
  queries; only the query outputs go to the LLM.

Inputs: images ``[B, 3, H, W]`` and data samples with ``text`` (captions,
``CaptionDataset``) or ``question`` / ``gt_answer`` / ``gt_answer_weight``
(``VQADataset``), packed by ``PackInputs(algorithm_keys=[...])``.
"""
import random
import zlib
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze
from ..multimodal.utils import all_gather_with_grad, concat_all_gather, sample_hard_negatives
from ..tokenizers.text import build_bert_tokenizer

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm computed in fp32 and returned in the input's dtype (LAVIS ``ln_vision``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


def _rank_and_world() -> tuple:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@MODELS.register_module()
class BLIP2(BaseModel):
    """BLIP-2 stage 1 (``llm=None``) or stage 2 (``llm`` set).

    Args:
        visual_encoder: The image tower, a ``ViT`` config (EVA ViT-g/14:
            ``arch='eva-g'``, ``patch_size=14``, ``qkv_bias=False``,
            ``qv_bias=True``, ``final_norm=False``, ``out_type='raw'``).
        qformer: ``QFormer`` options (``num_query_tokens``, ``bert``,
            ``pretrained`` BERT folder, ...); ``vision_width``, ``text_input``
            and ``lm_head`` are set here from the stage.
        tokenizer: BERT ``vocab.txt`` (or its folder) of the Q-Former text
            (stage 1, InstructBLIP); the Q-Former vocabulary is the
            tokenizer's up to its ``[DEC]`` token (30,523 for bert-base-uncased).
        llm: ``FrozenLLM`` config (stage 2), or None (stage 1).
        embed_dim: ITC feature width (256).
        max_txt_len: Text token limit: the Q-Former text in stage 1 (32),
            the LLM input text in stage 2 (32; InstructBLIP 128).
        max_output_txt_len: LLM output token limit (stage 2: 32; InstructBLIP 256).
        prompt: Stage 2 / InstructBLIP text before the output: a string, a
            list of templates (one drawn per training sample, the first used
            in evaluation), or ``dict(vqa=..., caption=...)`` of those per
            task; ``{}`` takes the question of VQA samples.
        eval_prompt: ``dict(vqa=..., caption=...)`` of the prompt used in
            evaluation instead of the first template (InstructBLIP: LAVIS's
            zero-shot prompts, e.g. ``'Question: {} Short Answer:'``).
        prefix_lm: Encoder-decoder LLMs on captions: split each caption at a
            random word into prefix (encoder) and suffix (target).
        vit_precision: ``'fp16' | 'bf16' | 'fp32'`` of the frozen image tower.
        freeze_vit: Keep the image tower frozen (LAVIS: True).
        ln_vision_eps: Epsilon of ``ln_vision`` (LAVIS: torch's default 1e-5).
        itc_image_ids: Captions of one image are ITC positives and no ITM
            negatives (LAVIS retrieval fine-tuning; pretraining: False).
        vit_checkpoint: EVA-CLIP ViT-g file to load into the image tower
            (LAVIS ``eva_vit_g.pth`` layout, 40 blocks, position table resized).
        generation: ``generate`` defaults of the LLM (``num_beams``,
            ``max_new_tokens``, ``min_length``, ...).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads a LAVIS,
            HF or mmmim BLIP-2 / InstructBLIP file strictly through
            :func:`mmmim.checkpoint.blip2.load_blip2`.
    """

    qformer_text_input = False

    def __init__(self,
                 visual_encoder: dict,
                 qformer: Optional[dict] = None,
                 tokenizer: Optional[str] = None,
                 llm: Optional[dict] = None,
                 embed_dim: int = 256,
                 max_txt_len: int = 32,
                 max_output_txt_len: int = 32,
                 prompt: Union[str, Sequence[str], dict] = '',
                 eval_prompt: Optional[dict] = None,
                 prefix_lm: bool = True,
                 vit_precision: str = 'fp16',
                 freeze_vit: bool = True,
                 vit_checkpoint: Optional[str] = None,
                 ln_vision_eps: float = 1e-5,
                 itc_image_ids: bool = False,
                 generation: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if vit_precision not in PRECISIONS:
            raise ValueError(f'vit_precision must be one of {sorted(PRECISIONS)}, got '
                             f'{vit_precision!r}')
        self.stage = 1 if llm is None else 2
        self.visual_encoder = MODELS.build(visual_encoder)
        self.vit_dtype = PRECISIONS[vit_precision]
        self.freeze_vit = freeze_vit
        if freeze_vit:
            freeze(self.visual_encoder)
        self.vit_checkpoint = vit_checkpoint
        self.ln_vision = LayerNormFP32(self.visual_encoder.embed_dim, eps=ln_vision_eps)

        text_side = self.stage == 1 or self.qformer_text_input
        self.tokenizer = None
        qformer = dict(qformer or {})
        if text_side:
            if tokenizer is None:
                raise ValueError(f'{type(self).__name__} needs tokenizer= (the BERT vocab.txt) '
                                 'for the Q-Former text')
            self.tokenizer = build_bert_tokenizer(tokenizer)
            bert = dict(qformer.get('bert') or {})
            bert.setdefault('vocab_size', self.tokenizer.bos_token_id + 1)
            if self.tokenizer.bos_token_id >= bert['vocab_size']:
                raise ValueError(f'the Q-Former vocabulary ({bert["vocab_size"]}) has no room '
                                 f'for [DEC] (id {self.tokenizer.bos_token_id})')
            qformer['bert'] = bert
        qformer.update(type='QFormer', vision_width=self.visual_encoder.embed_dim,
                       text_input=text_side, lm_head=self.stage == 1)
        self.qformer = MODELS.build(qformer)
        C = self.qformer.hidden_size
        self.max_txt_len = max_txt_len
        self.max_output_txt_len = max_output_txt_len
        if self.stage == 1:
            self.vision_proj = nn.Linear(C, embed_dim)
            self.text_proj = nn.Linear(C, embed_dim)
            self.itm_head = nn.Linear(C, 2)
            self.temp = nn.Parameter(torch.tensor(0.07))
            self.llm = None
        else:
            self.llm = MODELS.build(dict(llm, type=llm.get('type', 'FrozenLLM')))
            self.llm_proj = nn.Linear(C, self.llm.width)
        if not isinstance(prompt, dict):
            prompt = dict(vqa=prompt, caption=prompt)
        self.prompts = {task: [p] if isinstance(p, str) else list(p) for task, p in prompt.items()}
        self.eval_prompts = dict(eval_prompt or {})
        self.prefix_lm = prefix_lm
        self.itc_image_ids = itc_image_ids
        self.generation = dict(num_beams=5, max_new_tokens=30, min_length=1)
        self.generation.update(generation or {})

    # ------------------------------------------------------------ plumbing
    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            self.qformer.init_weights()
            self._load_vit()
            from mmmim.checkpoint.blip2 import load_blip2
            load_blip2(self, cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()
            self._load_vit()
        if self.freeze_vit:
            freeze(self.visual_encoder)
        self.visual_encoder.to(self.vit_dtype)

    def _load_vit(self):
        if self.vit_checkpoint is not None:
            from mmmim.checkpoint.blip2 import load_eva_vit
            load_eva_vit(self.visual_encoder, self.vit_checkpoint)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_vit:
            self.visual_encoder.eval()
        if self.llm is not None:
            self.llm.eval()
        return self

    @staticmethod
    def _field(data_samples, key: str) -> list:
        if data_samples is None:
            raise KeyError(f'BLIP-2 needs data samples with {key!r}')
        values = [s.get(key) if isinstance(s, dict) else getattr(s, key, None)
                  for s in data_samples]
        if any(v is None for v in values):
            raise KeyError(f'a data sample has no {key!r}: pack it with PackInputs('
                           f'algorithm_keys=[{key!r}, ...])')
        return values

    def tokenize(self, texts: Sequence[str], max_length: Optional[int] = None,
                 padding: str = 'max_length', truncation_side: str = 'right') -> dict:
        """BERT ids and mask of the Q-Former text, ``[B, T]`` (T = ``max_length``, default
        ``max_txt_len``), on the model's device."""
        self.tokenizer.truncation_side = truncation_side
        enc = self.tokenizer(list(texts), padding=padding, truncation=True,
                             max_length=max_length or self.max_txt_len, return_tensors='pt')
        dev = self.qformer.query_tokens.device
        return dict(input_ids=enc.input_ids.to(dev), attention_mask=enc.attention_mask.to(dev))

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """Frozen image tower then ``ln_vision``: ``[B, 3, H, W] -> [B, 1 + h*w, D]`` (fp32)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_vit):
            x = self.visual_encoder(images.to(self.vit_dtype))[0]  # [B, 1 + h*w, D]
        return self.ln_vision(x).float()

    # ------------------------------------------------------------- stage 1
    def itc_loss(self, image_feats: torch.Tensor, text_feat: torch.Tensor,
                 image_ids: Optional[torch.Tensor] = None):
        """Image-text contrastive loss over the batches of all ranks.

        Args:
            image_feats: ``[B, Q, E]`` normalised query features.
            text_feat: ``[B, E]`` normalised ``[CLS]`` text features.
            image_ids: ``[B]`` ids making captions of one image positives
                (retrieval fine-tuning), or None (pretraining: the diagonal).

        Returns:
            The loss, ``sim_i2t`` and ``sim_t2i`` ``[B, W*B]`` and the positive mask.
        """
        rank, _ = _rank_and_world()
        B = image_feats.shape[0]
        image_feats_all = concat_all_gather(image_feats)  # [W*B, Q, E]
        text_feat_all = concat_all_gather(text_feat)  # [W*B, E]
        sim_q2t = torch.einsum('bqe,ne->bnq', image_feats, text_feat_all)  # [B, W*B, Q]
        sim_i2t = sim_q2t.max(-1).values / self.temp  # max over the queries
        sim_t2q = torch.einsum('be,nqe->bnq', text_feat, image_feats_all)  # [B, W*B, Q]
        sim_t2i = sim_t2q.max(-1).values / self.temp
        if image_ids is None:
            targets = torch.arange(rank * B, rank * B + B, device=sim_i2t.device)
            loss = (F.cross_entropy(sim_i2t, targets, label_smoothing=0.1) +
                    F.cross_entropy(sim_t2i, targets, label_smoothing=0.1)) / 2
            positive = F.one_hot(targets, sim_i2t.shape[1]).bool()
        else:
            ids = image_ids.view(-1, 1)
            positive = ids == concat_all_gather(ids).t()  # [B, W*B]
            soft = positive.float() / positive.float().sum(1, keepdim=True)
            soft = 0.9 * soft + 0.1 / soft.shape[1]
            loss = (-(F.log_softmax(sim_t2i, 1) * soft).sum(1).mean() -
                    (F.log_softmax(sim_i2t, 1) * soft).sum(1).mean()) / 2
        return loss, sim_i2t, sim_t2i, positive

    def itm_loss(self, image_embeds: torch.Tensor, text: dict, sim_i2t: torch.Tensor,
                 sim_t2i: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        """Image-text matching with one hard negative image per text and text per image.

        ``itm_head`` scores each query output of the bidirectional pass; the
        logits are their mean.
        """
        B = image_embeds.shape[0]
        ids_world = concat_all_gather(text['input_ids'])  # [W*B, T]
        mask_world = concat_all_gather(text['attention_mask'])
        image_embeds_world = all_gather_with_grad(image_embeds)  # [W*B, N, D]
        neg_image = sample_hard_negatives(sim_t2i.detach(), positive)  # [B]
        neg_text = sample_hard_negatives(sim_i2t.detach(), positive)
        ids = torch.cat([text['input_ids'], text['input_ids'], ids_world[neg_text]])  # [3B, T]
        mask = torch.cat([text['attention_mask'], text['attention_mask'], mask_world[neg_text]])
        images = torch.cat([image_embeds, image_embeds_world[neg_image], image_embeds])
        logits = self.itm_logits(images, ids, mask)  # [3B, 2]
        labels = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long().to(logits.device)
        return F.cross_entropy(logits, labels)

    def itg_loss(self, image_embeds: torch.Tensor, text: dict) -> torch.Tensor:
        """Image-grounded text generation: ``[DEC]`` first, text attends to the queries
        (multimodal causal mask); label smoothing 0.1 as LAVIS."""
        ids = text['input_ids'].clone()
        ids[:, 0] = self.tokenizer.bos_token_id
        labels = ids.masked_fill(ids == self.tokenizer.pad_token_id, -100)
        hidden = self.qformer(image_embeds, ids, text['attention_mask'], mode='causal')
        logits = self.qformer.lm_logits(hidden[:, self.qformer.num_query_tokens:])  # [B, T, V]
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                               labels[:, 1:].reshape(-1), label_smoothing=0.1)

    def stage1_features(self, image_embeds: torch.Tensor, text: dict):
        """One unimodal pass: normalised query features ``[B, Q, E]`` and text ``[CLS]``
        features ``[B, E]`` (queries and text do not see each other)."""
        hidden = self.qformer(image_embeds, text['input_ids'], text['attention_mask'],
                              mode='unimodal')  # [B, Q + T, C]
        Q = self.qformer.num_query_tokens
        image_feats = F.normalize(self.vision_proj(hidden[:, :Q]), dim=-1)
        text_feat = F.normalize(self.text_proj(hidden[:, Q]), dim=-1)
        return image_feats, text_feat

    # Retrieval (mmmim.evaluation.retrieval, as LAVIS's compute_sim_matrix / compute_itm)
    def image_feat(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Normalised ITC query features ``[B, Q, E]`` of the queries-only pass."""
        return F.normalize(self.vision_proj(self.qformer(image_embeds)), dim=-1)

    def text_feat(self, text: dict) -> torch.Tensor:
        """Normalised ITC ``[CLS]`` feature ``[B, E]`` of the text-only pass."""
        hidden = self.qformer(None, text['input_ids'], text['attention_mask'],
                              with_queries=False)  # [B, T, C]
        return F.normalize(self.text_proj(hidden[:, 0]), dim=-1)

    def itm_logits(self, image_embeds: torch.Tensor, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
        """ITM logits ``[B, 2]`` (column 1: match): ``itm_head`` on each query output of the
        bidirectional pass, averaged over the queries."""
        hidden = self.qformer(image_embeds, input_ids, attention_mask, mode='bidirectional')
        return self.itm_head(hidden[:, :self.qformer.num_query_tokens]).mean(1)

    def stage1_loss(self, images, data_samples) -> Dict[str, torch.Tensor]:
        image_embeds = self.image_embeds(images)
        text = self.tokenize(self._field(data_samples, 'text'), self.max_txt_len)
        image_ids = None
        if self.itc_image_ids:
            image_ids = torch.as_tensor(
                [i if isinstance(i, int) else zlib.crc32(str(i).encode())
                 for i in self._field(data_samples, 'image_id')], device=images.device)
        image_feats, text_feat = self.stage1_features(image_embeds, text)
        loss_itc, sim_i2t, sim_t2i, positive = self.itc_loss(image_feats, text_feat, image_ids)
        loss_itm = self.itm_loss(image_embeds, text, sim_i2t, sim_t2i, positive)
        loss_itg = self.itg_loss(image_embeds, text)
        return dict(loss_itc=loss_itc, loss_itm=loss_itm, loss_itg=loss_itg)

    # ------------------------------------------------------------- stage 2
    def query_outputs(self, image_embeds: torch.Tensor,
                      instructions: Optional[Sequence[str]] = None) -> torch.Tensor:
        """The Q-Former's query outputs ``[B, Q, C]`` (BLIP-2: queries only)."""
        return self.qformer(image_embeds)

    def soft_prompts(self, images: torch.Tensor, instructions=None) -> torch.Tensor:
        """``llm_proj`` of the query outputs, ``[B, Q, D_llm]``."""
        return self.llm_proj(self.query_outputs(self.image_embeds(images), instructions))

    def _prompt(self, question: Optional[str] = None) -> str:
        task = 'caption' if question is None else 'vqa'
        if task not in self.prompts:
            raise KeyError(f'no {task} prompt: set prompt=dict({task}=...)')
        templates = self.prompts[task]
        if self.training:
            template = random.choice(templates)
        else:
            template = self.eval_prompts.get(task, templates[0])
        if question is None:
            return template.replace('{}', '').strip() if '{}' in template else template
        return template.format(question) if '{}' in template else f'{template}{question}'

    @staticmethod
    def _get(sample, key: str):
        return sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)

    def text_pairs(self, data_samples) -> tuple:
        """(LLM input texts, output texts), per sample: a VQA question in the prompt template
        and its most weighted answer, or a caption after the caption prompt (encoder-decoder
        LLMs in training: split at a random word, the prefix joining the input)."""
        inputs, outputs = [], []
        for s in data_samples:
            question = self._get(s, 'question')
            if question is not None:
                gt = self._get(s, 'gt_answer')
                if gt is None:
                    raise KeyError('a VQA training sample has no gt_answer')
                gt = [gt] if isinstance(gt, str) else list(gt)
                w = self._get(s, 'gt_answer_weight')
                inputs.append(self._prompt(question))
                outputs.append(gt[int(torch.as_tensor(w).argmax())] if w is not None else gt[0])
                continue
            caption = self._get(s, 'text')
            if caption is None:
                raise KeyError('a data sample has neither "question" nor "text": pack it with '
                               "PackInputs(algorithm_keys=['text'] or the VQA keys)")
            prompt = self._prompt()
            if not self.llm.decoder_only and self.prefix_lm and self.training:
                words = caption.split()
                k = random.randint(0, max(len(words) - 1, 0))
                prompt = (prompt + ' ' + ' '.join(words[:k])).strip()
                caption = ' '.join(words[k:])
            inputs.append(prompt)
            outputs.append(caption)
        return inputs, outputs

    def stage2_loss(self, images, data_samples) -> Dict[str, torch.Tensor]:
        inputs, outputs = self.text_pairs(data_samples)
        prompts = self.soft_prompts(images, inputs)
        loss = self.llm.loss(prompts, inputs, outputs, self.max_txt_len, self.max_output_txt_len)
        return dict(loss_lm=loss)

    # --------------------------------------------------------------- modes
    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        if self.stage == 1:
            return self.stage1_loss(inputs, data_samples)
        return self.stage2_loss(inputs, data_samples)

    @torch.no_grad()
    def generate(self, images: torch.Tensor, questions: Optional[Sequence[str]] = None,
                 **generate_kwargs) -> List[str]:
        """Captions (``questions=None``) or answers of the images, through the frozen LLM."""
        if self.stage == 1:
            raise RuntimeError('BLIP-2 stage 1 has no LLM to generate with')
        texts = [self._prompt(q) for q in questions] if questions is not None else \
            [self._prompt()] * images.shape[0]
        prompts = self.soft_prompts(images, texts)
        return self.llm.generate(prompts, texts, self.max_txt_len,
                                 **dict(self.generation, **generate_kwargs))

    def predict(self, images: torch.Tensor, data_samples=None) -> list:
        """Stage 2: ``pred_answer`` (VQA samples) or ``pred_caption``; stage 1:
        ``image_feats`` ``[Q, E]`` and ``text_feat`` ``[E]`` for retrieval."""
        if data_samples is None:
            raise KeyError('BLIP-2 predict needs data samples')
        if self.stage == 1:
            text = self.tokenize(self._field(data_samples, 'text'), self.max_txt_len)
            image_feats, text_feat = self.stage1_features(self.image_embeds(images), text)
            for s, i, t in zip(data_samples, image_feats, text_feat):
                s.set_field(i, 'image_feats')
                s.set_field(t, 'text_feat')
            return list(data_samples)
        questions = [self._get(s, 'question') for s in data_samples]
        texts = [self._prompt(q) for q in questions]
        prompts = self.soft_prompts(images, texts)
        outs = self.llm.generate(prompts, texts, self.max_txt_len, **self.generation)
        for s, q, o in zip(data_samples, questions, outs):
            s.set_field(o, 'pred_caption' if q is None else 'pred_answer')
        return list(data_samples)

    def forward(self, images, data_samples=None, mode: str = 'tensor'):
        """``'loss'``, ``'predict'`` or ``'tensor'`` (query outputs ``[B, Q, C]``); ``images``
        as ``MultiModalDataPreprocessor`` names them."""
        if mode == 'loss':
            return self.loss(images, data_samples)
        if mode == 'predict':
            return self.predict(images, data_samples)
        if mode == 'tensor':
            return self.qformer(self.image_embeds(images))
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")


@MODELS.register_module()
class InstructBLIP(BLIP2):
    """InstructBLIP: BLIP-2 stage 2 whose Q-Former also reads the instruction.

    The instruction (the LLM input text) is BERT-tokenised (at most
    ``qformer_max_txt_len`` = 128 tokens, truncated on the left as LAVIS) and
    placed after the queries with the bidirectional mask; only the query
    outputs, through ``llm_proj``, reach the LLM. ``max_txt_len`` (128) and
    ``max_output_txt_len`` (256) bound the LLM input and output.
    """

    qformer_text_input = True

    def __init__(self, *args, max_txt_len: int = 128, max_output_txt_len: int = 256,
                 qformer_max_txt_len: int = 128, **kwargs):
        super().__init__(*args, max_txt_len=max_txt_len, max_output_txt_len=max_output_txt_len,
                         **kwargs)
        if self.stage == 1:
            raise ValueError('InstructBLIP needs an llm')
        self.qformer_max_txt_len = qformer_max_txt_len

    def query_outputs(self, image_embeds: torch.Tensor,
                      instructions: Optional[Sequence[str]] = None) -> torch.Tensor:
        if instructions is None:
            raise ValueError('InstructBLIP needs the instructions for its Q-Former')
        text = self.tokenize(instructions, self.qformer_max_txt_len, padding='longest',
                             truncation_side='left')
        hidden = self.qformer(image_embeds, text['input_ids'], text['attention_mask'],
                              mode='bidirectional')  # [B, Q + T, C]
        return hidden[:, :self.qformer.num_query_tokens]  # only the queries reach the LLM
