"""The Querying Transformer (Q-Former) of BLIP-2 (Li et al., 2023) on HF ``transformers``.

A BERT whose every ``cross_attention_freq``-th layer cross-attends from the
learnable query tokens to the frozen image features, with a separate
feed-forward network for the query positions (``intermediate_query`` /
``output_query``). The layers are transformers' ``Blip2QFormerModel``; the
word and position embeddings are its ``Blip2TextEmbeddings``, and the ITG
head is BERT's ``BertOnlyMLMHead`` (tied to the word embeddings). One
sequence ``[queries; text]`` goes through the layers with one of the three
self-attention masks of stage 1 (:func:`qformer_attention_mask`).
"""
import os.path as osp
from typing import Dict, Optional

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS

MASK_MODES = ('unimodal', 'bidirectional', 'causal')

# BERT-base (bert-base-uncased) sizes; the vocabulary grows by [DEC] to 30,523.
BERT_BASE = dict(vocab_size=30523, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act='gelu', hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                 initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)


def qformer_attention_mask(num_queries: int, text_mask: Optional[torch.Tensor], mode: str,
                           batch_size: Optional[int] = None) -> torch.Tensor:
    """Self-attention mask over ``[queries; text]``, 1 where a row may attend to a column.

    Args:
        num_queries: Q, the number of query tokens (all valid).
        text_mask: ``[B, T]`` text padding mask (1 = token), or None for queries only.
        mode: ``'unimodal'`` (ITC: queries and text do not see each other),
            ``'bidirectional'`` (ITM, InstructBLIP: everything sees everything
            valid) or ``'causal'`` (ITG: queries see queries; text sees all
            queries and the text up to itself).
        batch_size: B when ``text_mask`` is None.

    Returns:
        ``[B, Q + T, Q + T]`` float mask (1 attend, 0 masked).
    """
    if mode not in MASK_MODES:
        raise ValueError(f'Q-Former mask mode must be one of {MASK_MODES}, got {mode!r}')
    if text_mask is None:
        return torch.ones(batch_size, num_queries, num_queries)
    B, T = text_mask.shape
    Q = num_queries
    keys = torch.cat([text_mask.new_ones(B, Q), text_mask], dim=1).float()  # [B, Q + T]
    allowed = torch.ones(Q + T, Q + T, device=text_mask.device)
    if mode in ('unimodal', 'causal'):
        allowed[:Q, Q:] = 0  # queries do not see the text
    if mode == 'unimodal':
        allowed[Q:, :Q] = 0  # the text does not see the queries
    if mode == 'causal':
        allowed[Q:, Q:] = torch.tril(torch.ones(T, T, device=text_mask.device))
    return allowed[None] * keys[:, None, :]  # [B, Q + T, Q + T]


@MODELS.register_module()
class QFormer(BaseModule):
    """Learnable queries and the BERT that turns image features into ``num_query_tokens`` outputs.

    Args:
        num_query_tokens: Number of queries (32), ``[1, Q, C]`` initialised
            normal(0, ``initializer_range``).
        vision_width: Width of the image features the cross-attention reads
            (``encoder_width``; 1408 for EVA ViT-g).
        cross_attention_freq: A cross-attention every this many layers (2).
        text_input: Build the text side (word / position embeddings and the
            text feed-forward networks): stage 1 and InstructBLIP. Stage 2 of
            BLIP-2 drops it, as the official code does.
        lm_head: Build the ITG head ``cls`` (stage 1).
        bert: ``Blip2QFormerConfig`` fields (BERT-base by default).
        pretrained: A folder with a HF BERT checkpoint (``config.json`` and
            weights, e.g. a local bert-base-uncased) that initialises
            the embeddings, the self-attention and both feed-forward networks
            (the query FFN copies the text FFN) and the ITG head, as the
            official ``init_Qformer``. The cross-attention stays random.
    """

    def __init__(self,
                 num_query_tokens: int = 32,
                 vision_width: int = 1408,
                 cross_attention_freq: int = 2,
                 text_input: bool = True,
                 lm_head: bool = False,
                 bert: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        from transformers import Blip2QFormerConfig, Blip2QFormerModel
        from transformers.models.blip_2.modeling_blip_2 import Blip2TextEmbeddings
        if lm_head and not text_input:
            raise ValueError('the ITG head (lm_head=True) needs the text side (text_input=True)')
        self.config = Blip2QFormerConfig(**dict(BERT_BASE, **(bert or {})),
                                         cross_attention_frequency=cross_attention_freq,
                                         encoder_hidden_size=vision_width,
                                         use_qformer_text_input=text_input)
        C = self.config.hidden_size
        self.num_query_tokens = num_query_tokens
        self.query_tokens = nn.Parameter(torch.zeros(1, num_query_tokens, C))
        nn.init.normal_(self.query_tokens, std=self.config.initializer_range)
        self.embeddings = Blip2TextEmbeddings(self.config) if text_input else None
        if self.embeddings is not None:
            self.embeddings.word_embeddings.weight.data.normal_(std=self.config.initializer_range)
            self.embeddings.position_embeddings.weight.data.normal_(
                std=self.config.initializer_range)
        self.bert = Blip2QFormerModel(self.config)
        self.cls = None
        if lm_head:
            from transformers import BertConfig
            from transformers.models.bert.modeling_bert import BertOnlyMLMHead
            c = self.config
            self.cls = BertOnlyMLMHead(BertConfig(vocab_size=c.vocab_size, hidden_size=C,
                                                  hidden_act=c.hidden_act,
                                                  layer_norm_eps=c.layer_norm_eps))
            self.cls.predictions.decoder.weight.data.normal_(std=self.config.initializer_range)
            self.cls.predictions.decoder.weight = self.embeddings.word_embeddings.weight  # tied
        self.pretrained = pretrained

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    def init_weights(self):
        super().init_weights()
        if self.pretrained is not None:
            self.load_bert(self.pretrained)

    # ----------------------------------------------------------------- forward
    def forward(self,
                image_embeds: Optional[torch.Tensor],
                input_ids: Optional[torch.Tensor] = None,
                text_mask: Optional[torch.Tensor] = None,
                mode: str = 'bidirectional',
                with_queries: bool = True) -> torch.Tensor:
        """Hidden states of ``[queries; text]``, ``[B, Q + T, C]``.

        Args:
            image_embeds: ``[B, N, D]`` image features (None for text only).
            input_ids: ``[B, T]`` BERT token ids, or None (queries only).
            text_mask: ``[B, T]`` padding mask of ``input_ids``.
            mode: Self-attention mask, see :func:`qformer_attention_mask`.
            with_queries: False runs the text alone (no queries, no
                cross-attention): the ITC text encoder.
        """
        B = (input_ids if input_ids is not None else image_embeds).shape[0]
        queries = self.query_tokens.expand(B, -1, -1) if with_queries else None
        if not with_queries and input_ids is None:
            raise ValueError('the Q-Former needs queries or text')
        if input_ids is not None:
            if self.embeddings is None:
                raise ValueError('this Q-Former has no text side (text_input=False)')
            if text_mask is None:
                text_mask = torch.ones_like(input_ids)
            x = self.embeddings(input_ids, query_embeds=queries)  # [B, Q + T, C]
        else:
            x = queries  # [B, Q, C]
        Q = self.num_query_tokens if with_queries else 0
        if not with_queries:
            mask = text_mask.float()  # [B, T] padding only
        else:
            mask = qformer_attention_mask(Q, text_mask, mode, B).to(x.device)
        out = self.bert(query_embeds=x, query_length=Q, attention_mask=mask,
                        encoder_hidden_states=image_embeds if with_queries else None,
                        return_dict=True)
        return out.last_hidden_state

    def lm_logits(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """ITG head on the text positions ``[B, T, C]`` -> ``[B, T, vocab]``."""
        if self.cls is None:
            raise RuntimeError('this Q-Former has no ITG head (lm_head=False)')
        return self.cls(text_hidden)

    # ------------------------------------------------------------ BERT init
    def load_bert(self, folder: str) -> Dict[str, list]:
        """Initialise from a HF BERT folder as the official ``init_Qformer`` (see class doc)."""
        from transformers import BertForMaskedLM, BertModel
        if not osp.isdir(folder) or not osp.isfile(osp.join(folder, 'config.json')):
            raise FileNotFoundError(f'Q-Former BERT init: {folder} is not a HF BERT folder '
                                    '(config.json and weights)')
        cls = BertForMaskedLM if self.cls is not None else BertModel
        sd = cls.from_pretrained(folder, local_files_only=True).state_dict()
        sd = {k[len('bert.'):] if k.startswith('bert.') else k: v for k, v in sd.items()}
        return self.load_bert_state_dict(sd, folder)

    def load_bert_state_dict(self, sd: Dict[str, torch.Tensor], src: str = 'BERT') -> Dict[str, list]:
        """Copy BERT tensors (HF ``BertModel`` names) into the matching Q-Former parameters.

        The word embeddings are copied row by row up to the smaller vocabulary
        (added tokens such as ``[DEC]`` keep their random init, as
        ``resize_token_embeddings``); each text FFN also fills the query FFN.
        Returns and logs what was loaded and what stayed random.
        """
        own = self.state_dict()
        new = {}
        for k, v in sd.items():
            if k.startswith('embeddings.LayerNorm.'):
                new['bert.layernorm.' + k.rsplit('.', 1)[1]] = v
            elif k.startswith('embeddings.') and 'position_ids' not in k \
                    and 'token_type' not in k:
                new[k] = v
            elif k.startswith('encoder.layer.'):
                k = 'bert.' + k.replace('.attention.self.', '.attention.attention.')
                for name in ('.intermediate.', '.output.'):
                    if name in k and '.attention.' not in k:
                        if self.embeddings is not None:
                            new[k] = v
                        new[k.replace(name, name[:-1] + '_query.')] = v
                        break
                else:
                    new[k] = v
            elif k.startswith('cls.predictions.') and self.cls is not None:
                new[k] = v
        skipped = sorted(k for k in new if k not in own)
        if skipped:
            raise KeyError(f'{src}: BERT keys with no place in the Q-Former: {skipped[:6]} '
                           '(does num_hidden_layers match?)')
        for k, v in new.items():
            if k.endswith('word_embeddings.weight') or k.endswith('predictions.bias') \
                    or k.endswith('decoder.weight') or k.endswith('decoder.bias'):
                n = min(v.shape[0], own[k].shape[0])
                own[k][:n].copy_(v[:n])
            elif v.shape != own[k].shape:
                raise ValueError(f'{src}: {k} has shape {tuple(v.shape)}, the Q-Former '
                                 f'{tuple(own[k].shape)}')
            else:
                own[k].copy_(v)
        random = sorted({k.split('.attention.')[0] + '.*' if '.crossattention.' in k else k
                         for k in own if k not in new and k != 'query_tokens'})
        print_log(f'initialised the Q-Former from {src}: {len(new)} tensors; random: '
                  f'query_tokens, {", ".join(random) or "nothing else"}', logger='current')
        return dict(loaded=sorted(new), random=random)
