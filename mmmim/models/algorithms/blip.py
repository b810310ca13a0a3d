"""BLIP (Li et al., 2022): ITC + ITM + LM pretraining, retrieval and captioning fine-tuning.

One class, three tasks (the official ``BLIP_Pretrain``, ``BLIP_Retrieval``
and ``BLIP_Decoder``), chosen by ``task``:

- ``'pretrain'``: image encoder, MED text encoder and decoder (tied except
  self-attention), momentum encoders and queues; loss ITC + ITM + LM.
- ``'retrieval'``: no decoder; ITC targets and ITM negatives by image id
  (captions of one image are all positives), an image-id queue; ITC + ITM.
- ``'caption'``: image encoder and decoder only; LM loss after a prompt.
"""
import copy
import hashlib
import re
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze
from ..multimodal.med import build_med, encode_text, med_config, tie_encoder_decoder_weights
from ..multimodal.utils import all_gather_with_grad, concat_all_gather, sample_hard_negatives
from ..tokenizers.text import build_bert_tokenizer

TASKS = ('pretrain', 'retrieval', 'caption')
# Token limits of the official training scripts: pretraining pads to 30,
# retrieval to 35, captioning pads to the longest caption, at most 40 tokens.
TEXT_LENGTHS = {'pretrain': ('max_length', 30), 'retrieval': ('max_length', 35),
                'caption': ('longest', 40)}


def pre_caption(caption: str, max_words: int = 50) -> str:
    """The official caption clean-up: lower case, ``.!"()*#:;~`` to spaces, at most ``max_words``."""
    caption = re.sub(r'([.!"()*#:;~])', ' ', caption.lower())
    caption = re.sub(r'\s{2,}', ' ', caption).rstrip('\n').strip(' ')
    return ' '.join(caption.split(' ')[:max_words])


@MODELS.register_module()
class BLIP(BaseModel):
    """BLIP with an mmmim ViT image tower and an HF BERT MED.

    Inputs: images ``[B, 3, H, W]`` and data samples with ``text`` (a caption)
    and ``image_id`` (``CaptionDataset`` + ``PackInputs(algorithm_keys=
    ['text', 'image_id'])``).

    Args:
        vision_encoder: ``ViT`` config with ``out_type='raw'`` (all tokens,
            final norm: the official ``visual_encoder``).
        med: MED options: ``arch`` (``'base'`` / ``'small'`` / ``'tiny'`` or a
            dict of BERT sizes), ``vocab_size`` (None: the tokenizer's) and
            other ``BertConfig`` fields; ``pretrained``: a BERT checkpoint or
            folder (bert-base-uncased) that initialises the MED
            (:func:`mmmim.checkpoint.blip.load_bert_weights`).
        tokenizer: ``vocab.txt`` (or its folder) of the BERT tokenizer.
        task: ``'pretrain'``, ``'retrieval'`` or ``'caption'``.
        embed_dim: ITC feature width (256).
        queue_size: ITC queue length (57,600).
        momentum: Momentum-encoder EMA rate (0.995).
        alpha: ITC soft-target weight after warm-up (0.4); ``ITCAlphaWarmupHook``
            sets ``self.itc_alpha`` during the warm-up.
        negative_all_rank: Draw ITM hard negatives from the batches of all ranks.
        max_words: Caption words kept by :func:`pre_caption` (30).
        max_txt_len: Token limit; None: the task's official one.
        prompt: Text before each caption for the decoder (``'a picture of '``
            in captioning), masked out of the LM loss.
        generation: ``generate`` defaults (``num_beams``, ``max_length``,
            ``min_length``, ``repetition_penalty``).
        init_cfg: ``dict(type='Pretrained', checkpoint=PATH)`` loads a BLIP
            file (official, mmpretrain, HF or mmmim layout) strictly through
            :func:`mmmim.checkpoint.blip.load_blip`; without it the image
            tower's own ``init_cfg`` (e.g. DeiT weights) and
            ``med.pretrained`` initialise the model.
    """

    def __init__(self,
                 vision_encoder: dict,
                 med: dict,
                 tokenizer: str,
                 task: str = 'pretrain',
                 embed_dim: int = 256,
                 queue_size: int = 57600,
                 momentum: float = 0.995,
                 alpha: float = 0.4,
                 negative_all_rank: bool = False,
                 max_words: int = 30,
                 max_txt_len: Optional[int] = None,
                 prompt: str = '',
                 generation: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):  # mmmim's scope (mmpretrain's preprocessors)
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if task not in TASKS:
            raise ValueError(f'task must be one of {TASKS}, got {task!r}')
        self.task = task
        self.tokenizer = build_bert_tokenizer(tokenizer)
        med = dict(med)
        self.med_pretrained = med.pop('pretrained', None)
        vocab_size = med.pop('vocab_size', None) or len(self.tokenizer)
        if len(self.tokenizer) > vocab_size:
            raise ValueError(f'the tokenizer {tokenizer} has {len(self.tokenizer)} ids but '
                             f'med.vocab_size is {vocab_size}')
        bert_cfg = med_config(med.pop('arch', 'base'), vocab_size, **med)

        self.visual_encoder = MODELS.build(vision_encoder)
        if getattr(self.visual_encoder, 'out_type', 'raw') != 'raw':
            raise ValueError("BLIP's vision_encoder needs out_type='raw' (all tokens)")
        vision_width = self.visual_encoder.embed_dim
        text_width = bert_cfg.hidden_size
        self.text_decoder = None if task == 'retrieval' else build_med(bert_cfg, vision_width,
                                                                       lm_head=True)
        self.text_encoder = None
        if task != 'caption':
            self.text_encoder = build_med(bert_cfg, vision_width)
            if self.text_decoder is not None:
                tie_encoder_decoder_weights(self.text_encoder, self.text_decoder.bert)
            self.vision_proj = nn.Linear(vision_width, embed_dim)
            self.text_proj = nn.Linear(text_width, embed_dim)
            self.itm_head = nn.Linear(text_width, 2)
            self.temp = nn.Parameter(0.07 * torch.ones([]))
            # Momentum encoders: EMA copies, never trained, in eval mode.
            self.visual_encoder_m = freeze(copy.deepcopy(self.visual_encoder))
            self.vision_proj_m = freeze(copy.deepcopy(self.vision_proj))
            self.text_encoder_m = freeze(build_med(bert_cfg, vision_width))
            self.text_proj_m = freeze(copy.deepcopy(self.text_proj))
            self.copy_params()
            self.register_buffer('image_queue', F.normalize(torch.randn(embed_dim, queue_size), dim=0))
            self.register_buffer('text_queue', F.normalize(torch.randn(embed_dim, queue_size), dim=0))
            self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))
            if task == 'retrieval':
                self.register_buffer('idx_queue', torch.full((1, queue_size), -100))
        self.queue_size = queue_size
        self.momentum = momentum
        self.alpha = self.itc_alpha = alpha
        self.negative_all_rank = negative_all_rank
        self.max_words = max_words
        self.padding, default_len = TEXT_LENGTHS[task]
        self.max_txt_len = max_txt_len or default_len
        self.prompt = prompt
        self.prompt_length = len(self.tokenizer(prompt).input_ids) - 1  # [DEC] + prompt tokens
        self.generation = dict(num_beams=3, max_length=20, min_length=5, repetition_penalty=1.0)
        self.generation.update(generation or {})

    # ---------------------------------------------------------------- set-up
    def momentum_pairs(self):
        """(online, momentum) module pairs of the ITC momentum encoders."""
        return [(self.visual_encoder, self.visual_encoder_m), (self.vision_proj, self.vision_proj_m),
                (self.text_encoder, self.text_encoder_m), (self.text_proj, self.text_proj_m)]

    @staticmethod
    def _param_pairs(model, model_m):
        own = dict(model.named_parameters())
        return [(own[name], p_m) for name, p_m in model_m.named_parameters()]

    @torch.no_grad()
    def copy_params(self):
        """Momentum encoders start as copies of the online ones."""
        for model, model_m in self.momentum_pairs():
            for p, p_m in self._param_pairs(model, model_m):
                p_m.copy_(p)

    @torch.no_grad()
    def momentum_update(self):
        """``p_m <- m * p_m + (1 - m) * p`` for every momentum parameter."""
        for model, model_m in self.momentum_pairs():
            for p, p_m in self._param_pairs(model, model_m):
                p_m.mul_(self.momentum).add_(p.detach(), alpha=1.0 - self.momentum)

    def init_weights(self):
        """A BLIP checkpoint through the strict loader, or the image tower's own init."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint.blip import load_blip  # checkpoint reads no models
            load_blip(self, cfg['checkpoint'])
        else:
            self.visual_encoder.init_weights()
            if self.med_pretrained:
                from mmmim.checkpoint.blip import load_bert_weights
                load_bert_weights(self, self.med_pretrained)
            if self.text_encoder is not None:
                self.copy_params()
        self._is_init = True

    def train(self, mode: bool = True):
        super().train(mode)
        if self.text_encoder is not None:
            for _, model_m in self.momentum_pairs():
                model_m.eval()
        return self

    # ------------------------------------------------------------------ text
    def tokenize(self, texts: Sequence[str], prompt: str = '') -> dict:
        """Cleaned captions (with ``prompt`` before each) as ``input_ids`` / ``attention_mask``."""
        texts = [prompt + pre_caption(t, self.max_words) for t in texts]
        tok = self.tokenizer(texts, padding=self.padding, truncation=True,
                             max_length=self.max_txt_len, return_tensors='pt')
        device = self.visual_encoder.patch_embed.proj.weight.device
        return dict(input_ids=tok.input_ids.to(device), attention_mask=tok.attention_mask.to(device))

    @staticmethod
    def _field(data_samples, key: str) -> list:
        if data_samples is None:
            raise KeyError(f'BLIP needs data samples with "{key}"')
        values = [s.get(key) if isinstance(s, dict) else getattr(s, key, None) for s in data_samples]
        if any(v is None for v in values):
            raise KeyError(f'BLIP needs "{key}" in every data sample (PackInputs(algorithm_keys='
                           f"['text', 'image_id']))")
        return values

    def _image_ids(self, data_samples, device) -> torch.Tensor:
        ids = self._field(data_samples, 'image_id')
        # String ids (LAVIS files) become a hash that every rank computes alike.
        ids = [i if isinstance(i, int) else int(hashlib.md5(str(i).encode()).hexdigest()[:15], 16)
               for i in ids]
        return torch.as_tensor(ids, dtype=torch.long, device=device)

    # ---------------------------------------------------------------- features
    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """Image tokens ``[B, 1 + h*w, C]`` (class token first)."""
        return self.visual_encoder(images)[0]

    def image_feat(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """Normalised ITC image feature ``[B, D]``."""
        return F.normalize(self.vision_proj(image_embeds[:, 0]), dim=-1)

    def text_feat(self, text: dict) -> torch.Tensor:
        """Normalised ITC text feature ``[B, D]`` of the unimodal encoder."""
        hidden = encode_text(self.text_encoder, text['input_ids'], text['attention_mask'])
        return F.normalize(self.text_proj(hidden[:, 0]), dim=-1)

    def itm_logits(self, image_embeds: torch.Tensor, input_ids: torch.Tensor,
                   attention_mask: torch.Tensor) -> torch.Tensor:
        """ITM logits ``[B, 2]`` (column 1: match); ``[ENC]`` replaces ``[CLS]``."""
        input_ids = input_ids.clone()
        input_ids[:, 0] = self.tokenizer.enc_token_id
        hidden = encode_text(self.text_encoder, input_ids, attention_mask, image_embeds)
        return self.itm_head(hidden[:, 0])

    def lm_logits(self, image_embeds: torch.Tensor, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor) -> torch.Tensor:
        """Decoder logits ``[B, L, V]``; ``[DEC]`` replaces ``[CLS]``."""
        input_ids = input_ids.clone()
        input_ids[:, 0] = self.tokenizer.bos_token_id
        image_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=image_embeds.device)
        return self.text_decoder(input_ids=input_ids, attention_mask=attention_mask,
                                 encoder_hidden_states=image_embeds,
                                 encoder_attention_mask=image_atts, use_cache=False,
                                 return_dict=True).logits

    # ------------------------------------------------------------------ losses
    def itc_loss(self, images, image_embeds, text, image_ids):
        """Image-text contrastive loss against the momentum features and queues.

        Targets are ``alpha * softmax(momentum similarity) + (1 - alpha) *
        positives``; positives are the diagonal (pretraining) or every
        feature of the same image id, queue included (retrieval). The
        temperature is clamped to [0.001, 0.5] first.

        Returns:
            The loss and the features the ITM loss samples negatives with:
            ``dict(image_feat, text_feat, image_feat_m, text_feat_m)``, ``[B, D]`` each.
        """
        with torch.no_grad():
            self.temp.clamp_(0.001, 0.5)
        image_feat = self.image_feat(image_embeds)  # [B, D]
        text_feat = self.text_feat(text)  # [B, D]
        with torch.no_grad():
            self.momentum_update()
            image_feat_m = F.normalize(self.vision_proj_m(self.visual_encoder_m(images)[0][:, 0]), dim=-1)
            hidden_m = encode_text(self.text_encoder_m, text['input_ids'], text['attention_mask'])
            text_feat_m = F.normalize(self.text_proj_m(hidden_m[:, 0]), dim=-1)
            image_feat_all = torch.cat([image_feat_m.t(), self.image_queue.clone()], dim=1)  # [D, B+Q]
            text_feat_all = torch.cat([text_feat_m.t(), self.text_queue.clone()], dim=1)  # [D, B+Q]
            if self.task == 'retrieval':
                idx = image_ids.view(-1, 1)
                pos = torch.eq(idx, torch.cat([idx.t(), self.idx_queue.clone()], dim=1)).float()
                targets = pos / pos.sum(1, keepdim=True)  # [B, B+Q]
            else:
                targets = torch.zeros(image_feat.shape[0], image_feat_all.shape[1],
                                      device=image_feat.device)
                targets.fill_diagonal_(1)
            alpha = self.itc_alpha
            i2t_targets = alpha * F.softmax(image_feat_m @ text_feat_all / self.temp, dim=1) \
                + (1 - alpha) * targets
            t2i_targets = alpha * F.softmax(text_feat_m @ image_feat_all / self.temp, dim=1) \
                + (1 - alpha) * targets
        sim_i2t = image_feat @ text_feat_all / self.temp  # [B, B+Q]
        sim_t2i = text_feat @ image_feat_all / self.temp
        loss_i2t = -(F.log_softmax(sim_i2t, dim=1) * i2t_targets).sum(1).mean()
        loss_t2i = -(F.log_softmax(sim_t2i, dim=1) * t2i_targets).sum(1).mean()
        self.dequeue_and_enqueue(image_feat_m, text_feat_m, image_ids)
        feats = dict(image_feat=image_feat, text_feat=text_feat, image_feat_m=image_feat_m,
                     text_feat_m=text_feat_m)
        return (loss_i2t + loss_t2i) / 2, feats

    @torch.no_grad()
    def dequeue_and_enqueue(self, image_feat_m, text_feat_m, image_ids=None):
        """Write the momentum features of all ranks into the queues at ``queue_ptr``."""
        image_feats = concat_all_gather(image_feat_m)  # [W*B, D]
        text_feats = concat_all_gather(text_feat_m)
        n = image_feats.shape[0]
        if self.queue_size % n:
            raise ValueError(f'queue_size {self.queue_size} is not a multiple of the global batch '
                             f'{n} (batch per rank x ranks)')
        ptr = int(self.queue_ptr)
        self.image_queue[:, ptr:ptr + n] = image_feats.T
        self.text_queue[:, ptr:ptr + n] = text_feats.T
        if self.task == 'retrieval':
            self.idx_queue[:, ptr:ptr + n] = concat_all_gather(image_ids).view(1, -1)
        self.queue_ptr[0] = (ptr + n) % self.queue_size

    def itm_loss(self, image_embeds, text, feats, image_ids):
        """Image-text matching on positives and softmax-sampled hard negatives.

        Each text gets a negative image and each image a negative text drawn
        with :func:`sample_hard_negatives` from the ITC similarities, positives
        excluded. Pretraining (as official) draws within the rank's batch from
        online x momentum similarities, +1e-4, the diagonal excluded;
        retrieval and ``negative_all_rank`` use online features, exclude every
        pair of one image id and, with ``negative_all_rank``, draw from all
        ranks (image tokens gathered with their gradient). Labels: B positives,
        then 2B negatives; cross-entropy over ``itm_head`` logits.
        """
        B = image_embeds.shape[0]
        ids, atts = text['input_ids'], text['attention_mask']
        with torch.no_grad():
            if self.negative_all_rank:
                ids_world = concat_all_gather(image_ids)
                pos = torch.eq(image_ids.view(-1, 1), ids_world.view(1, -1))  # [B, W*B]
                sim_i2t = feats['image_feat'] @ concat_all_gather(feats['text_feat']).t() / self.temp
                sim_t2i = feats['text_feat'] @ concat_all_gather(feats['image_feat']).t() / self.temp
                eps = 0.0
            elif self.task == 'retrieval':
                pos = torch.eq(image_ids.view(-1, 1), image_ids.view(1, -1))
                sim_i2t = feats['image_feat'] @ feats['text_feat'].t() / self.temp
                sim_t2i = sim_i2t.t()
                eps = 0.0
            else:
                pos = torch.eye(B, dtype=torch.bool, device=image_embeds.device)
                sim_i2t = feats['image_feat'] @ feats['text_feat_m'].t() / self.temp
                sim_t2i = feats['text_feat'] @ feats['image_feat_m'].t() / self.temp
                eps = 1e-4
            neg_image = sample_hard_negatives(sim_t2i, pos, eps)  # [B]
            neg_text = sample_hard_negatives(sim_i2t, pos, eps)  # [B]
        if self.negative_all_rank:
            image_pool = all_gather_with_grad(image_embeds)
            ids_pool, atts_pool = concat_all_gather(ids), concat_all_gather(atts)
        else:
            image_pool, ids_pool, atts_pool = image_embeds, ids, atts
        image_all = torch.cat([image_embeds, image_pool[neg_image], image_embeds], dim=0)  # [3B, N, C]
        ids_all = torch.cat([ids, ids, ids_pool[neg_text]], dim=0)  # [3B, L]
        atts_all = torch.cat([atts, atts, atts_pool[neg_text]], dim=0)
        logits = self.itm_logits(image_all, ids_all, atts_all)  # [3B, 2]
        labels = torch.cat([torch.ones(B), torch.zeros(2 * B)]).long().to(logits.device)
        return F.cross_entropy(logits, labels)

    def lm_loss(self, image_embeds, text):
        """Captioning loss of the decoder: next-token cross-entropy, label smoothing 0.1.

        Padding and the prompt tokens (``[DEC]`` + ``prompt``) are not targets.
        """
        ids = text['input_ids']
        targets = ids.masked_fill(ids == self.tokenizer.pad_token_id, -100)
        targets[:, :self.prompt_length] = -100
        logits = self.lm_logits(image_embeds, ids, text['attention_mask'])  # [B, L, V]
        return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets[:, 1:].flatten(),
                               ignore_index=-100, label_smoothing=0.1)

    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        texts = self._field(data_samples, 'text')
        image_embeds = self.image_embeds(images)  # [B, N, C]
        losses = {}
        if self.task == 'caption':
            losses['loss_lm'] = self.lm_loss(image_embeds, self.tokenize(texts, self.prompt))
            return losses
        image_ids = self._image_ids(data_samples, images.device)
        text = self.tokenize(texts)
        losses['loss_itc'], feats = self.itc_loss(images, image_embeds, text, image_ids)
        losses['loss_itm'] = self.itm_loss(image_embeds, text, feats, image_ids)
        if self.task == 'pretrain':
            losses['loss_lm'] = self.lm_loss(image_embeds, text)
        return losses

    # -------------------------------------------------------------- inference
    @torch.no_grad()
    def generate(self, images: torch.Tensor, sample: bool = False, top_p: float = 0.9,
                 **kwargs) -> List[str]:
        """Captions of ``images``: beam search, or nucleus sampling (``sample=True``).

        As the official ``BLIP_Decoder.generate``: the decoder starts from
        ``[DEC]`` + prompt and stops at ``[SEP]``; sampling uses top-p 0.9 and
        repetition penalty 1.1. ``kwargs`` override ``self.generation``
        (``max_length`` counts the prompt tokens).
        """
        if self.text_decoder is None:
            raise RuntimeError("a 'retrieval' BLIP has no decoder to caption with")
        opts = dict(self.generation, **kwargs)
        image_embeds = self.image_embeds(images)
        image_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long, device=images.device)
        prompt = self.tokenizer([self.prompt] * images.shape[0], return_tensors='pt').input_ids
        prompt = prompt[:, :-1].to(images.device)  # drop [SEP]
        prompt[:, 0] = self.tokenizer.bos_token_id
        common = dict(input_ids=prompt, max_length=opts['max_length'], min_length=opts['min_length'],
                      eos_token_id=self.tokenizer.sep_token_id,
                      pad_token_id=self.tokenizer.pad_token_id, encoder_hidden_states=image_embeds,
                      encoder_attention_mask=image_atts)
        if sample:
            out = self.text_decoder.generate(do_sample=True, top_p=top_p, num_return_sequences=1,
                                             repetition_penalty=1.1, **common)
        else:
            out = self.text_decoder.generate(num_beams=opts['num_beams'],
                                             repetition_penalty=opts['repetition_penalty'], **common)
        captions = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        prompt_text = self.tokenizer.decode(prompt[0], skip_special_tokens=True)
        return [c[len(prompt_text):].strip() if c.startswith(prompt_text) else c.strip()
                for c in captions]

    def predict(self, inputs: torch.Tensor, data_samples=None) -> list:
        """Generated captions as ``pred_caption`` of each data sample (for ``CaptionMetric``)."""
        images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        captions = self.generate(images)
        if data_samples is None:
            return [dict(pred_caption=c) for c in captions]
        for sample, caption in zip(data_samples, captions):
            sample.set_field(caption, 'pred_caption', field_type='metainfo')
        return list(data_samples)

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            images = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            return self.image_embeds(images)
        raise RuntimeError(f'invalid mode {mode!r}; expected loss, predict or tensor')

