"""A frozen HF ``transformers`` language model that reads soft prompts (BLIP-2 stage 2).

Decoder-only models (``OPTForCausalLM``, ``LlamaForCausalLM`` for Vicuna) get
``[soft prompts; input text; output text]`` and the loss on the output text;
encoder-decoder models (``T5ForConditionalGeneration``) get
``[soft prompts; input text]`` in the encoder and the output text as the
decoder's target. The model and its tokenizer come from a folder the user
names, or, for tests and demos, from a config dict of the same classes with
a tokenizer file.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule

from mmmim.registry import MODELS
from ..layers import freeze

DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
# config dict ``type`` -> (transformers config class, model class)
ARCHS = {'opt': ('OPTConfig', 'OPTForCausalLM'),
         'llama': ('LlamaConfig', 'LlamaForCausalLM'),
         't5': ('T5Config', 'T5ForConditionalGeneration')}


def _build_tokenizer(path: str):
    """A tokenizer from a HF folder (AutoTokenizer, offline), or a ``tokenizer.json`` file
    (or a folder with only that)."""
    import transformers
    if osp.isdir(path) and osp.isfile(osp.join(path, 'tokenizer_config.json')):
        return transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if osp.isdir(path) and osp.isfile(osp.join(path, 'tokenizer.json')):
        path = osp.join(path, 'tokenizer.json')
    if osp.isfile(path) and path.endswith('.json'):
        return transformers.PreTrainedTokenizerFast(tokenizer_file=path)
    raise FileNotFoundError(f'LLM tokenizer: {path} is neither a HF tokenizer folder nor a '
                            'tokenizer.json file')


@MODELS.register_module()
class FrozenLLM(BaseModule):
    """A frozen causal or sequence-to-sequence LM, in eval mode whatever its parent's mode.

    Args:
        path: HF model folder (``config.json`` and weights, e.g. a local
            facebook/opt-2.7b or google/flan-t5-xl); its tokenizer is read
            from the same folder unless ``tokenizer`` is given.
        config: Instead of ``path``: ``dict(type='opt' | 'llama' | 't5', **fields)``
            of a randomly initialised model (tests, demos).
        tokenizer: Tokenizer folder or ``tokenizer.json``.
        special_tokens: Tokens to set on the tokenizer (``pad_token``,
            ``bos_token``, ``eos_token``, ...; Vicuna: ``pad_token='[PAD]'``
            and ``'</s>'`` for the rest, as LAVIS), the embeddings resized to fit.
        dtype: ``'fp32' | 'fp16' | 'bf16'`` of the frozen weights (LAVIS:
            fp16 OPT / Vicuna, bf16 T5).
        output_end: Appended to each output text of a decoder-only model
            (OPT: ``'\\n'``; Vicuna: the eos token, ``'</s>'``).
        t5_dense_act_fn: LAVIS sets FlanT5's ``dense_act_fn`` to ``'gelu'``
            (None keeps the folder's).
    """

    def __init__(self,
                 path: Optional[str] = None,
                 config: Optional[dict] = None,
                 tokenizer: Optional[str] = None,
                 special_tokens: Optional[dict] = None,
                 dtype: str = 'fp32',
                 output_end: str = '\n',
                 t5_dense_act_fn: Optional[str] = 'gelu',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        import transformers
        if (path is None) == (config is None):
            raise ValueError('FrozenLLM needs exactly one of path (a HF folder) or config')
        if dtype not in DTYPES:
            raise ValueError(f'dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
        if path is not None:
            if not osp.isfile(osp.join(path, 'config.json')):
                raise FileNotFoundError(f'LLM folder {path} has no config.json')
            cfg = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
            if cfg.model_type == 't5' and t5_dense_act_fn:
                cfg.dense_act_fn = t5_dense_act_fn
            auto = transformers.AutoModelForSeq2SeqLM if cfg.is_encoder_decoder \
                else transformers.AutoModelForCausalLM
            self.model = auto.from_pretrained(path, config=cfg, torch_dtype=DTYPES[dtype],
                                              local_files_only=True)
        else:
            config = dict(config)
            kind = config.pop('type', None)
            if kind not in ARCHS:
                raise KeyError(f'LLM config type must be one of {sorted(ARCHS)}, got {kind!r}')
            cfg_cls, model_cls = (getattr(transformers, n) for n in ARCHS[kind])
            self.model = model_cls(cfg_cls(**config)).to(DTYPES[dtype])
        if tokenizer is None and path is None:
            raise ValueError('a FrozenLLM built from a config needs a tokenizer file or folder')
        self.tokenizer = _build_tokenizer(tokenizer or path)
        if special_tokens:
            self.tokenizer.add_special_tokens(dict(special_tokens))
        if len(self.tokenizer) > self.model.get_input_embeddings().num_embeddings:
            self.model.resize_token_embeddings(len(self.tokenizer))
        if self.tokenizer.pad_token is None:
            raise ValueError('the LLM tokenizer has no pad token: set special_tokens=dict('
                             'pad_token=...)')
        self.decoder_only = not self.model.config.is_encoder_decoder
        self.output_end = output_end if self.decoder_only else ''
        freeze(self.model)

    @property
    def width(self) -> int:
        """Width of the input embeddings (what ``llm_proj`` maps to)."""
        return self.model.get_input_embeddings().embedding_dim

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.eval()
        return self

    def init_weights(self):
        """Nothing to initialise: the weights come from the folder (or stay random)."""

    # ------------------------------------------------------------ tokenizing
    def tokenize(self, texts: Sequence[str], max_length: int, special: bool = True,
                 truncation_side: str = 'right',
                 padding_side: str = 'right') -> Tuple[torch.Tensor, torch.Tensor]:
        """Padded ids and mask ``[B, T]`` (T <= max_length)."""
        tok = self.tokenizer
        tok.padding_side, tok.truncation_side = padding_side, truncation_side
        enc = tok(list(texts), padding='longest', truncation=True, max_length=max_length,
                  add_special_tokens=special, return_tensors='pt')
        return enc.input_ids.long(), enc.attention_mask.long()  # empty texts come back as float

    def lm_inputs(self, inputs: Optional[Sequence[str]], outputs: Sequence[str],
                  max_input_len: int, max_output_len: int) -> dict:
        """Token ids, masks and targets of ``inputs`` (prompts) and ``outputs`` (targets).

        Decoder-only: per sample ``[input tokens (with bos); output tokens +
        output_end]``, right-padded, targets only on the output tokens (the
        ``concat_text_input_output`` of LAVIS). Encoder-decoder: encoder
        tokens of ``inputs`` and decoder targets of ``outputs`` (pad -> -100).
        """
        B = len(outputs)
        inputs = list(inputs) if inputs is not None else [''] * B
        if len(inputs) != B:
            raise ValueError(f'{len(inputs)} input texts for {B} output texts')
        in_ids, in_mask = self.tokenize(inputs, max_input_len, truncation_side='left')
        if not self.decoder_only:
            out_ids, out_mask = self.tokenize(outputs, max_output_len)
            targets = out_ids.masked_fill(out_mask == 0, -100)
            return dict(input_ids=in_ids, attention_mask=in_mask, targets=targets,
                        decoder_attention_mask=out_mask)
        out_ids, out_mask = self.tokenize([t + self.output_end for t in outputs], max_output_len,
                                          special=False)
        pad = self.tokenizer.pad_token_id
        rows, masks, targets = [], [], []
        for i in range(B):
            a, b = in_ids[i][in_mask[i].bool()], out_ids[i][out_mask[i].bool()]
            rows.append(torch.cat([a, b]))
            targets.append(torch.cat([torch.full_like(a, -100), b]))
        T = max(len(r) for r in rows)
        ids = torch.full((B, T), pad, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        tgt = torch.full((B, T), -100, dtype=torch.long)
        for i, (r, t) in enumerate(zip(rows, targets)):
            ids[i, :len(r)], mask[i, :len(r)], tgt[i, :len(r)] = r, 1, t
        return dict(input_ids=ids, attention_mask=mask, targets=tgt)

    # --------------------------------------------------------------- forward
    def forward(self, prompts: torch.Tensor, input_ids: torch.Tensor,
                attention_mask: torch.Tensor, decoder_input_ids: Optional[torch.Tensor] = None,
                decoder_attention_mask: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None):
        """Run the LM on ``[prompts; embed(input_ids)]``; returns the HF output.

        Args:
            prompts: Soft prompts ``[B, Q, D]`` (the projected query outputs).
            input_ids / attention_mask: ``[B, T]`` text after the prompts
                (decoder-only) or in the encoder (encoder-decoder).
            decoder_input_ids / decoder_attention_mask: Encoder-decoder only.
            labels: Decoder-only: ``[B, T]`` targets of the text positions
                (-100 = no loss); the prompt positions get -100 here.
                Encoder-decoder: decoder targets.
        """
        B, Q = prompts.shape[:2]
        dev = prompts.device
        embeds = self.model.get_input_embeddings()(input_ids.to(dev))  # [B, T, D]
        embeds = torch.cat([prompts.to(embeds.dtype), embeds], dim=1)  # [B, Q + T, D]
        mask = torch.cat([torch.ones(B, Q, dtype=attention_mask.dtype, device=dev),
                          attention_mask.to(dev)], dim=1)
        if self.decoder_only:
            if labels is not None:
                labels = torch.cat([torch.full((B, Q), -100, dtype=labels.dtype, device=dev),
                                    labels.to(dev)], dim=1)
            return self.model(inputs_embeds=embeds, attention_mask=mask, labels=labels,
                              return_dict=True)
        return self.model(inputs_embeds=embeds, attention_mask=mask,
                          decoder_input_ids=decoder_input_ids,
                          decoder_attention_mask=decoder_attention_mask, labels=labels,
                          return_dict=True)

    def loss(self, prompts: torch.Tensor, inputs: Optional[Sequence[str]], outputs: Sequence[str],
             max_input_len: int, max_output_len: int) -> torch.Tensor:
        """Mean token cross-entropy of ``outputs`` given the soft prompts and ``inputs``."""
        t = self.lm_inputs(inputs, outputs, max_input_len, max_output_len)
        dev = prompts.device
        if self.decoder_only:
            out = self(prompts, t['input_ids'], t['attention_mask'], labels=t['targets'].to(dev))
        else:
            out = self(prompts, t['input_ids'], t['attention_mask'],
                       decoder_attention_mask=t['decoder_attention_mask'].to(dev),
                       labels=t['targets'].to(dev))
        return out.loss

    @torch.no_grad()
    def generate(self, prompts: torch.Tensor, inputs: Optional[Sequence[str]], max_input_len: int,
                 **generate_kwargs) -> List[str]:
        """Texts generated after the soft prompts and ``inputs`` (HF ``generate`` options).

        A decoder-only model reads ``[prompts; left-padded inputs]`` (the
        padding between them is masked, as LAVIS does) and stops at
        ``output_end`` when it is one token.
        """
        B = prompts.shape[0]
        ids, mask = self.tokenize(list(inputs) if inputs is not None else [''] * B,
                                  max_input_len, truncation_side='left',
                                  padding_side='left' if self.decoder_only else 'right')
        dev = prompts.device
        embeds = self.model.get_input_embeddings()(ids.to(dev))  # [B, T, D]
        embeds = torch.cat([prompts.to(embeds.dtype), embeds], dim=1)  # [B, Q + T, D]
        mask = torch.cat([torch.ones(B, prompts.shape[1], dtype=mask.dtype), mask], 1).to(dev)
        if self.decoder_only and self.output_end:
            end = self.tokenizer(self.output_end, add_special_tokens=False).input_ids
            if len(end) == 1:
                generate_kwargs.setdefault('eos_token_id', end[0])
        generate_kwargs.setdefault('pad_token_id', self.tokenizer.pad_token_id)
        out = self.model.generate(inputs_embeds=embeds, attention_mask=mask, **generate_kwargs)
        return [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
