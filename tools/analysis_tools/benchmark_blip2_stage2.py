"""Time a BLIP-2 stage-2 train step (frozen image tower and LLM, trained Q-Former), plain or FSDP.

    # one GPU, no sharding
    python tools/analysis_tools/benchmark_blip2_stage2.py --size opt-2.7b --batch-size 8
    # FSDP over N GPUs (one unit per transformer block, bf16 mixed precision)
    torchrun --nproc_per_node N tools/analysis_tools/benchmark_blip2_stage2.py --size opt-2.7b --fsdp

Random weights of the official sizes (EVA ViT-g/14 at 224 px, BERT-base Q-Former with 32
queries, OPT-2.7B: width 2560, 32 layers, 32 heads, FFN 10240, vocabulary 50272); the frozen
parts in bf16, the Q-Former under bf16 autocast as LAVIS's amp. ``--size tiny`` runs the same
code on a toy model (CPU check). Prints the mean step time after warm-up, images/s and the peak
memory (CUDA: ``max_memory_allocated``).
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import os.path as osp

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmmim.models import BLIP2  # noqa: E402

SIZES = {
    'opt-2.7b': dict(vit=dict(arch='eva-g', img_size=224, patch_size=14), qformer={},
                     opt=dict(hidden_size=2560, num_hidden_layers=32, num_attention_heads=32,
                              ffn_dim=10240, vocab_size=50272, max_position_embeddings=2048,
                              word_embed_proj_dim=2560), img=224),
    'tiny': dict(vit=dict(arch=dict(embed_dim=64, depth=2, num_heads=2), img_size=32,
                          patch_size=8),
                 qformer=dict(num_query_tokens=8, bert=dict(
                     hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128)),
                 opt=dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, ffn_dim=128,
                          vocab_size=512, max_position_embeddings=128, word_embed_proj_dim=64),
                 img=32),
}
WORDS = ['<pad>', '<s>', '</s>'] + [f'w{i}' for i in range(61)]


def tokenizer_file(folder: str) -> str:
    """A word-level tokenizer over WORDS: captions of random words (ids below every vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token='<pad>'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path = osp.join(folder, 'tokenizer.json')
    tok.save(path)
    return path


def build(size: str, device: torch.device, dtype: str) -> BLIP2:
    s = SIZES[size]
    with tempfile.TemporaryDirectory() as d:
        model = BLIP2(
            visual_encoder=dict(type='ViT', qkv_bias=False, qv_bias=True, final_norm=False,
                                out_type='raw', **s['vit']),
            qformer=s['qformer'],
            llm=dict(config=dict(type='opt', dropout=0.0, **s['opt']), tokenizer=tokenizer_file(d),
                     special_tokens=dict(pad_token='<pad>'), dtype=dtype),
            vit_precision=dtype)
    model.visual_encoder.to(model.vit_dtype)
    return model.to(device).train()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='opt-2.7b')
    parser.add_argument('--batch-size', type=int, default=8, help='images per GPU')
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--fsdp', action='store_true', help='shard with torch FSDP (torchrun)')
    parser.add_argument('--dtype', choices=['bf16', 'fp32'], default='bf16')
    parser.add_argument('--json', help='also write the result to this file')
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    rank, world = 0, 1
    if args.fsdp:
        import torch.distributed as dist
        dist.init_process_group('nccl' if cuda else 'gloo')
        rank, world = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get('LOCAL_RANK', 0))
    device = torch.device('cuda', local) if cuda else torch.device('cpu')
    if cuda:
        torch.cuda.set_device(device)
    torch.manual_seed(0)
    model = build(args.size, device, args.dtype)
    if args.fsdp:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import MixedPrecision

        from mmmim.engine.fsdp import transformer_block_wrap_policy
        mp = MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16,
                            buffer_dtype=torch.bfloat16) if args.dtype == 'bf16' else None
        model = FSDP(model, auto_wrap_policy=transformer_block_wrap_policy, mixed_precision=mp,
                     use_orig_params=True, device_id=device if cuda else None)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    img = SIZES[args.size]['img']
    images = torch.randn(args.batch_size, 3, img, img, device=device)
    samples = [dict(text=' '.join(f'w{(i * 7 + j) % 61}' for j in range(20)))
               for i in range(args.batch_size)]
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.dtype == 'bf16' \
        else contextlib.nullcontext()
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        with amp:
            loss = model(images, samples, mode='loss')['loss_lm']
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    step_time = sum(times) / len(times)
    result = dict(size=args.size, mode='fsdp' if args.fsdp else 'plain', world_size=world,
                  batch_per_gpu=args.batch_size, dtype=args.dtype, step_s=round(step_time, 4),
                  images_per_s=round(args.batch_size * world / step_time, 2),
                  trainable_params=sum(p.numel() for p in params),
                  peak_mem_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                  if cuda else None, device=torch.cuda.get_device_name(device) if cuda else 'cpu',
                  loss=round(loss.item(), 4))
    if rank == 0:
        print(json.dumps(result))
        if args.json:
            with open(args.json, 'w') as f:
                json.dump(result, f)
    if args.fsdp:
        torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
