"""Transfusion (Zhou et al., 2024): next-token loss on text plus DDPM loss on image latents.

Each image-caption pair becomes one document, caption first with
probability ``caption_first_prob`` (0.8)::

    <bos> caption <boi> patches <eoi> <eos>      (generation order)
    <bos> <boi> patches <eoi> caption <eos>      (captioning order)

In generation order the caption is dropped with probability
``caption_drop_prob`` (classifier-free guidance). Each image gets one
timestep ``t`` and noise ``eps``; its patches enter as
``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``. In captioning order ``t`` is at
most ``noise_limit`` (500), so the caption conditions on a readable image.
A row holds one document, or with ``max_seq_len`` (the paper's 4096) the
documents of a batch packed into rows, each attending only within itself.

``L = L_LM + lambda * L_DDPM``: ``L_LM`` the mean cross-entropy over text
targets (positions whose input and next token are text, padding excluded),
``L_DDPM`` the per-image mean squared error of the predicted noise, averaged
over images.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmmim.registry import MODELS
from ..generators.transfusion import patchify, unpatchify
from ..layers import freeze


def pack_first_fit(lengths: Sequence[int], max_len: int) -> List[List[int]]:
    """Documents of ``lengths`` into rows of at most ``max_len`` positions: each document, in
    order, goes to the first row it fits in. Returns the document indices of each row."""
    rows, room = [], []
    for i, n in enumerate(lengths):
        if n > max_len:
            raise ValueError(f'a document of {n} positions does not fit max_seq_len={max_len}; '
                             'raise max_seq_len or lower max_caption_tokens')
        r = next((r for r, free in enumerate(room) if free >= n), None)
        if r is None:
            rows.append([])
            room.append(max_len)
            r = len(rows) - 1
        rows[r].append(i)
        room[r] -= n
    return rows


@MODELS.register_module()
class Transfusion(BaseModel):
    """A :class:`TransfusionTransformer` trained on image-caption pairs.

    Inputs: ``inputs`` images ``[B, 3, H, W]`` in [-1, 1] (the data
    preprocessor's mean / std 127.5), data samples with ``text`` (training) /
    ``texts`` and ``image_id`` (captioning evaluation).

    Args:
        generator: ``TransfusionTransformer`` config (``vocab_size`` defaults
            to the tokenizer's length, ``patch_dim`` to channels x patch^2).
        tokenizer: Path of the text tokenizer (``tokenizer.json`` /
            ``tokenizer.model`` or a folder, e.g. Llama-2's), read by
            :func:`build_bpe_tokenizer` (BOI / EOI / pad / image added).
        vae: ``VAE`` config (frozen ``AutoencoderKL``), or None: the patches are
            then of the pixels themselves (in [-1, 1]).
        patch_size: k of the k x k patches of the latent (2).
        lambda_ddpm: lambda, the weight of the diffusion loss (5).
        caption_first_prob: Probability of generation order (0.8).
        caption_drop_prob: Caption dropout of generation-order samples (CFG).
        noise_limit: Largest timestep of captioning-order images (500).
        max_caption_tokens: Captions are cut to this many tokens.
        max_seq_len: Pack the pairs of a batch into rows of this many positions
            (the paper's 4096), attention and RoPE positions per document;
            None: one pair a row.
        diffusion: ``DDPMScheduler`` options (1000 steps, cosine schedule =
            ``squaredcos_cap_v2``, epsilon prediction); the DDIM sampler reuses them.
        sampling: Defaults of :meth:`text_to_image` / :meth:`image_to_text`:
            ``num_inference_steps``, ``guidance_scale``, ``temperature``,
            ``max_new_tokens``.
    """

    def __init__(self,
                 generator: dict,
                 tokenizer: str,
                 vae: Optional[dict] = None,
                 image_channels: int = 3,
                 patch_size: int = 2,
                 lambda_ddpm: float = 5.0,
                 caption_first_prob: float = 0.8,
                 caption_drop_prob: float = 0.2,
                 noise_limit: int = 500,
                 max_caption_tokens: int = 64,
                 max_seq_len: Optional[int] = None,
                 diffusion: Optional[dict] = None,
                 sampling: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from diffusers import DDPMScheduler

        from ..tokenizers.text import build_bpe_tokenizer
        self.tokenizer = build_bpe_tokenizer(tokenizer)
        self.special_ids = {k: self.tokenizer.convert_tokens_to_ids(f'<{k}>')
                            for k in ('pad', 'boi', 'eoi', 'image', 'bos', 'eos')}
        self.vae = freeze(MODELS.build(vae)) if vae is not None else None
        self.channels = self.vae.latent_channels if self.vae is not None else image_channels
        self.patch_size = patch_size
        generator = dict(generator)
        generator.setdefault('vocab_size', len(self.tokenizer))
        generator.setdefault('patch_dim', self.channels * patch_size**2)
        if generator['vocab_size'] < len(self.tokenizer):
            raise ValueError(f'generator.vocab_size {generator["vocab_size"]} is smaller than the '
                             f'tokenizer {tokenizer} ({len(self.tokenizer)} ids)')
        if generator['patch_dim'] != self.channels * patch_size**2:
            raise ValueError(f'generator.patch_dim {generator["patch_dim"]} != channels '
                             f'{self.channels} x patch_size^2 {patch_size**2}')
        self.generator = MODELS.build(generator)
        self.lambda_ddpm = lambda_ddpm
        self.caption_first_prob = caption_first_prob
        self.caption_drop_prob = caption_drop_prob
        self.noise_limit = noise_limit
        self.max_caption_tokens = max_caption_tokens
        self.max_seq_len = max_seq_len
        self.diffusion_cfg = dict(num_train_timesteps=1000, beta_schedule='squaredcos_cap_v2',
                                  prediction_type='epsilon', clip_sample=False)
        self.diffusion_cfg.update(diffusion or {})
        self.scheduler = DDPMScheduler(**self.diffusion_cfg)
        self.sampling = dict(num_inference_steps=250, guidance_scale=5.0, temperature=1.0,
                             max_new_tokens=32)
        self.sampling.update(sampling or {})

    def train(self, mode: bool = True):
        super().train(mode)
        if self.vae is not None:
            self.vae.eval()
        return self

    # -- data -----------------------------------------------------------------------------
    def to_patches(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [-1, 1] -> clean latent patches ``[B, n, P]``."""
        latents = self.vae.encode(images) if self.vae is not None else images.float()
        return patchify(latents, self.patch_size)

    def to_images(self, patches: torch.Tensor) -> torch.Tensor:
        """Latent patches ``[B, n, P]`` -> images ``[B, 3, H, W]`` in [0, 1]."""
        latents = unpatchify(patches.float(), self.patch_size, self.channels)
        images = self.vae.decode(latents) if self.vae is not None else latents
        return ((images + 1) / 2).clamp(0, 1)

    def encode_text(self, texts: Sequence[str]) -> List[List[int]]:
        ids = self.tokenizer(list(texts), add_special_tokens=False)['input_ids']
        return [t[:self.max_caption_tokens] for t in ids]

    def build_sequences(self, captions: List[List[int]], num_patches: int,
                        caption_first: torch.Tensor) -> Dict[str, torch.Tensor]:
        """One document of one image per caption, as right-padded rows: ``input_ids``,
        ``image_ids``, ``valid``, ``doc_ids`` and the LM ``labels`` (-100 where no text target)
        ``[R, L]``, and ``order`` ``[N]``, the caption of each image in the rows' image order.

        Without ``max_seq_len`` a row holds one document; with it, documents are packed
        first-fit into rows of ``max_seq_len`` positions."""
        s = self.special_ids
        docs, starts = [], []
        for i, cap in enumerate(captions):
            img = [s['image']] * num_patches
            if caption_first[i]:
                docs.append([s['bos']] + cap + [s['boi']] + img + [s['eoi'], s['eos']])
                starts.append(len(cap) + 2)
            else:
                docs.append([s['bos'], s['boi']] + img + [s['eoi']] + cap + [s['eos']])
                starts.append(2)
        if self.max_seq_len is None:
            rows = [[i] for i in range(len(docs))]
            L = max(len(d) for d in docs)
        else:
            rows = pack_first_fit([len(d) for d in docs], self.max_seq_len)
            L = self.max_seq_len
        R = len(rows)
        input_ids = torch.full((R, L), s['pad'], dtype=torch.long)
        image_ids = torch.full((R, L), -1, dtype=torch.long)
        doc_ids = torch.full((R, L), -1, dtype=torch.long)
        order = [i for row in rows for i in row]  # images numbered in row-major order
        image_number = {i: k for k, i in enumerate(order)}
        for r, row in enumerate(rows):
            pos = 0
            for i in row:
                n = len(docs[i])
                input_ids[r, pos:pos + n] = torch.tensor(docs[i])
                doc_ids[r, pos:pos + n] = i
                a = pos + starts[i]
                image_ids[r, a:a + num_patches] = image_number[i]
                pos += n
        valid = doc_ids >= 0
        text = (image_ids < 0) & valid  # [R, L]
        labels = torch.full_like(input_ids, -100)
        # input and next position are both text of the same document
        has_target = text[:, :-1] & text[:, 1:] & (doc_ids[:, :-1] == doc_ids[:, 1:])
        labels[:, :-1] = torch.where(has_target, input_ids[:, 1:], -100)
        out = dict(input_ids=input_ids, image_ids=image_ids, valid=valid, doc_ids=doc_ids,
                   labels=labels, order=torch.tensor(order))
        return {k: v.to(caption_first.device) for k, v in out.items()}

    # -- the loss -------------------------------------------------------------------------
    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        texts = [self._field(s, 'text') for s in data_samples]
        x0 = self.to_patches(inputs)  # [B, n, P]
        B, device = x0.shape[0], x0.device
        caption_first = torch.rand(B, device=device) < self.caption_first_prob
        drop = caption_first & (torch.rand(B, device=device) < self.caption_drop_prob)
        T = self.scheduler.config.num_train_timesteps
        limit = min(self.noise_limit, T - 1) + 1
        t_max = torch.where(caption_first, T, limit)
        timesteps = (torch.rand(B, device=device) * t_max).long()  # t ~ U{0, ..., t_max - 1}
        noise = torch.randn_like(x0)
        return self.loss_of(texts, x0, caption_first, drop, timesteps, noise)

    def loss_of(self, texts: Sequence[str], x0: torch.Tensor, caption_first: torch.Tensor,
                drop: torch.Tensor, timesteps: torch.Tensor,
                noise: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The loss for given draws: orders, caption drops ``[B]`` bool, timesteps ``[B]``,
        noise like the clean patches ``x0`` ``[B, n, P]``."""
        captions = [[] if d else c for c, d in zip(self.encode_text(texts), drop.tolist())]
        seq = self.build_sequences(captions, x0.shape[1], caption_first)
        order = seq['order']
        x0, noise, timesteps = x0[order], noise[order], timesteps[order]
        xt = self.scheduler.add_noise(x0, noise, timesteps)
        logits, eps = self.generator(seq['input_ids'], seq['image_ids'], xt, timesteps,
                                     seq['valid'], seq['doc_ids'])
        labels = seq['labels']
        logits = logits.float()
        loss_lm = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
        ddpm = (eps.float() - noise).pow(2).mean(dim=(1, 2)).mean()  # per image, then over images
        targets = labels != -100
        acc = (logits.argmax(-1)[targets] == labels[targets]).float().mean()
        return dict(loss_lm=loss_lm, loss_ddpm=self.lambda_ddpm * ddpm, ddpm_mse=ddpm.detach(),
                    text_acc=acc)

    @staticmethod
    def _field(sample, key):
        value = sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)
        if value is None:
            raise KeyError(f'Transfusion needs "{key}" in each data sample (CaptionDataset and '
                           f"PackInputs(algorithm_keys=['{key}']))")
        return value

    # -- sampling -------------------------------------------------------------------------
    def _options(self, **overrides) -> dict:
        unknown = set(overrides) - set(self.sampling)
        if unknown:
            raise KeyError(f'unknown sampling options {sorted(unknown)}; use '
                           f'{sorted(self.sampling)}')
        return dict(self.sampling, **{k: v for k, v in overrides.items() if v is not None})

    def ddim(self, num_inference_steps: int):
        """A DDIM sampler on the training schedule, with ``num_inference_steps`` steps."""
        from diffusers import DDIMScheduler
        sched = DDIMScheduler(**{k: v for k, v in self.diffusion_cfg.items()
                                 if k != 'variance_type'})
        sched.set_timesteps(num_inference_steps)
        return sched

    def _prompts(self, texts: Sequence[str], end: List[int], device) -> Dict[str, torch.Tensor]:
        """Left-padded ``<bos> text end`` prompts."""
        s = self.special_ids
        rows = [[s['bos']] + c + end for c in self.encode_text(texts)]
        L = max(len(r) for r in rows)
        ids = torch.full((len(rows), L), s['pad'], dtype=torch.long)
        valid = torch.zeros(len(rows), L, dtype=torch.bool)
        for i, r in enumerate(rows):
            ids[i, L - len(r):] = torch.tensor(r)
            valid[i, L - len(r):] = True
        return dict(input_ids=ids.to(device), valid=valid.to(device))

    @torch.no_grad()
    def text_to_image(self, captions: Sequence[str], num_patches: int,
                      generator: Optional[torch.Generator] = None, use_cache: bool = True,
                      **sampling) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] for ``captions``: the prompt ``<bos> caption <boi>``,
        then the image denoised in place (DDIM, classifier-free guidance)."""
        opts = self._options(**sampling)
        device = self.generator.lm_head.weight.device
        prompt = self._prompts(captions, [self.special_ids['boi']], device)
        _, images = self.generator.generate(
            prompt['input_ids'], self.special_ids, num_patches,
            self.ddim(opts['num_inference_steps']), valid=prompt['valid'], max_new_tokens=0,
            guidance_scale=opts['guidance_scale'], use_cache=use_cache, generator=generator)
        return self.to_images(torch.stack([imgs[0] for imgs in images]))

    @torch.no_grad()
    def image_to_text(self, images: torch.Tensor, generator: Optional[torch.Generator] = None,
                      use_cache: bool = True, **sampling) -> List[str]:
        """Captions of images ``[B, 3, H, W]`` in [-1, 1]: the prompt ``<bos> <boi> image <eoi>``
        (the clean image, t = 0), then text until ``<eos>``."""
        opts = self._options(**sampling)
        s = self.special_ids
        x0 = self.to_patches(images)
        B, n, _ = x0.shape
        ids = torch.tensor([s['bos'], s['boi']] + [s['image']] * n + [s['eoi']],
                           device=x0.device).repeat(B, 1)
        image_ids = torch.full_like(ids, -1)
        image_ids[:, 2:2 + n] = torch.arange(B, device=x0.device)[:, None]
        tokens, _ = self.generator.generate(
            ids, s, n, self.ddim(opts['num_inference_steps']), image_ids=image_ids, patches=x0,
            max_new_tokens=opts['max_new_tokens'], max_images=0,
            temperature=opts['temperature'], use_cache=use_cache, generator=generator)
        return self.decode_text(tokens)

    def decode_text(self, tokens: torch.Tensor) -> List[str]:
        """Sampled ids ``[B, m]`` -> strings, cut at ``<eos>``, special tokens dropped."""
        out = []
        for row in tokens.tolist():
            if self.special_ids['eos'] in row:
                row = row[:row.index(self.special_ids['eos'])]
            out.append(self.tokenizer.decode(row, skip_special_tokens=True).strip())
        return out

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """``'loss'`` (training) or ``'predict'`` (captions: ``pred_caption`` set on each data
        sample, for ``CaptionMetric``)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            captions = self.image_to_text(inputs)
            for sample, caption in zip(data_samples, captions):
                sample.set_field(caption, 'pred_caption')
            return data_samples
        raise ValueError(f"Transfusion supports mode 'loss' or 'predict', got {mode!r}")
