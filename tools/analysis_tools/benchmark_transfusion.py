"""Train-step tokens/s of the Transfusion transformer: FlexAttention block mask vs SDPA dense mask.

    python tools/analysis_tools/benchmark_transfusion.py \
        configs/transfusion/transfusion-0.16b-p2_64xb112-bf16-250ki_captions-256.py \
        [--seq-len 4096] [--batch-size 2] [--attn flex sdpa] [--amp bf16] [--iters 10]
        [--warmup 3] [--arch W,D,H] [--device cuda]

Synthetic packed rows as the paper trains on: each ``--seq-len`` row holds
image-caption pairs (``<bos>``, ``--caption-len`` text tokens, BOI,
``--patches`` patches, EOI, ``<eos>``) until full, each attending within
itself, so a 4096 row holds 14 images of 256 patches.
A step is forward (LM cross-entropy on text, MSE on patches) + backward +
AdamW (fused on CUDA), on the generator alone (the VAE and tokenizer are
not part of the step). FlexAttention runs compiled on CUDA; on the CPU it
has no backward, so there it is timed forward-only. Prints one line per
attention implementation: tokens/s, step time, peak memory.
"""
import argparse
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from mmengine.config import Config

from mmmim.utils.timing import time_steps


def packed_batch(batch_size, seq_len, caption_len, patches, patch_dim, vocab, device):
    """``input_ids``, ``image_ids``, ``doc_ids`` ``[B, L]``, patches ``[N, n, P]``,
    timesteps ``[N]``: rows packed with pairs as ``Transfusion(max_seq_len=L)`` builds them."""
    ids = torch.randint(0, vocab, (batch_size, seq_len), device=device)
    image_ids = torch.full((batch_size, seq_len), -1, dtype=torch.long, device=device)
    doc_ids = torch.full((batch_size, seq_len), -1, dtype=torch.long, device=device)
    n = 0
    pair = caption_len + patches + 4  # <bos> caption <boi> patches <eoi> <eos>
    for b in range(batch_size):
        pos = 0
        while pos + pair <= seq_len:
            start = pos + caption_len + 2
            image_ids[b, start:start + patches] = n
            doc_ids[b, pos:pos + pair] = n
            n += 1
            pos += pair
    x = torch.randn(n, patches, patch_dim, device=device)
    t = torch.randint(0, 1000, (n, ), device=device)
    return ids, image_ids, doc_ids, x, t


def main(argv=None):
    p = argparse.ArgumentParser(description='Transfusion train-step benchmark')
    p.add_argument('config')
    p.add_argument('--seq-len', type=int, default=4096)
    p.add_argument('--batch-size', type=int, default=2)
    p.add_argument('--caption-len', type=int, default=24)
    p.add_argument('--patches', type=int, default=256)
    p.add_argument('--attn', nargs='+', choices=['flex', 'sdpa'], default=['flex', 'sdpa'])
    p.add_argument('--amp', choices=['none', 'bf16'], default='bf16')
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    p.add_argument('--arch', help='W,D,H instead of the config arch (e.g. a tiny CPU check)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = p.parse_args(argv)

    import mmmim  # noqa: F401
    from mmmim.models.generators.transfusion import TransfusionTransformer
    cfg = Config.fromfile(args.config)
    gen_cfg = {k: v for k, v in cfg.model.generator.items() if k not in ('type', 'attn_impl')}
    if args.arch:
        w, d, h = (int(v) for v in args.arch.split(','))
        gen_cfg['arch'] = dict(embed_dim=w, depth=d, num_heads=h)
    gen_cfg.setdefault('vocab_size', 32000 + 6)  # Llama-2 + Transfusion's special tokens
    gen_cfg.setdefault('patch_dim', 8 * cfg.model.get('patch_size', 2)**2)
    cuda = args.device.startswith('cuda')
    dtype = torch.bfloat16 if args.amp == 'bf16' else None
    batch = packed_batch(args.batch_size, args.seq_len, args.caption_len, args.patches,
                         gen_cfg['patch_dim'], gen_cfg['vocab_size'], args.device)
    num_images = batch[3].shape[0]
    tokens = args.batch_size * args.seq_len
    for impl in args.attn:
        torch.manual_seed(0)
        model = TransfusionTransformer(**gen_cfg, attn_impl=impl).to(args.device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), fused=cuda)
        backward = cuda or impl == 'sdpa'
        autocast = torch.autocast(args.device.split(':')[0], dtype=dtype) if dtype \
            else nullcontext()
        ids, image_ids, doc_ids, x, t = batch
        valid = doc_ids >= 0
        text = (image_ids < 0) & valid

        def step():
            with autocast:
                logits, eps = model(ids, image_ids, x, t, valid, doc_ids)
                loss = F.cross_entropy(logits[:, :-1][text[:, 1:] & text[:, :-1]].float(),
                                       ids[:, 1:][text[:, 1:] & text[:, :-1]])
                loss = loss + 5 * F.mse_loss(eps.float(), x)
            if backward:
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            return loss

        grad = nullcontext() if backward else torch.no_grad()
        with grad:
            dt, mem = time_steps(step, args.warmup, args.iters, cuda)
        params = sum(q.numel() for q in model.parameters()) / 1e6
        print(f'{impl}: {tokens / dt:.0f} tokens/s, {dt * 1000:.1f} ms/step '
              f'({"train step" if backward else "forward only"}), {params:.1f}M parameters, '
              f'{args.batch_size} x {args.seq_len} tokens, {num_images} images, '
              f'{args.amp}, peak memory {mem}, {args.device}')
        del model, opt


if __name__ == '__main__':
    main()
