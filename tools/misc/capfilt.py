"""CapFilt (BLIP's bootstrapping): caption web images, filter web and synthetic captions by ITM.

    python tools/misc/capfilt.py ANN_JSON --image-root DIR
        --captioner CONFIG CKPT --filter CONFIG CKPT --out OUT_JSON
        [--threshold 0.5] [--num-captions 1] [--top-p 0.9] [--max-length 30]
        [--min-length 10] [--batch-size 32] [--device cpu] [--seed 0]
        [--scores SCORES_JSON] [--noisy NOISY_JSON] [--force]

The captioner (a ``BLIP`` with ``task='caption'``, fine-tuned) writes
``--num-captions`` synthetic captions per image by nucleus sampling (top-p
0.9, repetition penalty 1.1, 10 to 30 tokens: the official
``BLIP_Decoder.generate(sample=True)`` limits). The filter (a ``BLIP`` with
an ITM head, fine-tuned for retrieval) scores every web and synthetic
caption with its image; a caption is kept when its match probability
(softmax of the ITM logits) exceeds ``--threshold`` (0.5: the ITM head
predicts "matched"). OUT_JSON is the LAVIS / BLIP annotation list
(``image``, ``caption``, ``image_id``) of the kept captions, written
atomically; an existing file is replaced only with ``--force``. Images that
cannot be read are skipped and counted.

``--scores`` also writes every caption with its score and decision;
``--noisy`` names a JSON list of ``[image_id, caption]`` pairs known to be
wrong (e.g. from a deliberate corruption) and reports how many of them, and
of the others, the filter dropped.
"""
import argparse
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DefaultScope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmmim.checkpoint.blip import load_blip  # noqa: E402
from mmmim.datasets.captions import load_caption_annotations  # noqa: E402
from mmmim.registry import MODELS  # noqa: E402
from mmmim.utils import Progress, atomic_write  # noqa: E402


def build_blip(config: str, checkpoint: str, device: str, need: str):
    """A BLIP of ``config`` with ``checkpoint`` loaded strictly, in eval mode."""
    import mmmim  # noqa: F401  (registers the modules)
    cfg = Config.fromfile(config)
    cfg.model.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmmim')):
        model = MODELS.build(cfg.model)
    load_blip(model, checkpoint)
    if need == 'decoder' and model.text_decoder is None:
        raise SystemExit(f'{config}: the captioner needs a decoder (task caption or pretrain)')
    if need == 'itm' and model.text_encoder is None:
        raise SystemExit(f'{config}: the filter needs an ITM head (task retrieval or pretrain)')
    pipeline = cfg.get('test_dataloader', cfg.get('val_dataloader'))
    if pipeline is None:
        raise SystemExit(f'{config} has no test_dataloader / val_dataloader to take the image '
                         'pipeline from')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmmim')):
        return model.to(device).eval(), Compose(pipeline.dataset.pipeline)


def load_images(entries, image_root, pipeline):
    """``(entry, inputs)`` of each readable image; the others are counted as skipped."""
    for e in entries:
        item = pipeline(dict(img_path=osp.join(image_root, e['image']), image_id=e['image_id'],
                             texts=list(e['captions'])))
        yield e, None if item is None else item['inputs']


@torch.no_grad()
def match_probability(model, images, captions):
    """ITM match probability of each (image, caption) pair, ``[N]``."""
    text = model.tokenize(captions)
    logits = model.itm_logits(model.image_embeds(images), text['input_ids'], text['attention_mask'])
    return logits.float().softmax(dim=-1)[:, 1].cpu()


def preprocess(model, inputs, device):
    data = model.data_preprocessor(dict(inputs=torch.stack(inputs), data_samples=None), False)
    images = data['inputs']
    return (images[0] if isinstance(images, (list, tuple)) else images).to(device)


def run(args):
    for out in (args.out, args.scores):  # before the long part
        if out and osp.exists(out) and not args.force:
            raise SystemExit(f'{out} exists; pass --force to overwrite it')
    torch.manual_seed(args.seed)
    entries = load_caption_annotations(args.ann)
    captioner, pipeline = build_blip(args.captioner[0], args.captioner[1], args.device, 'decoder')
    filt, filt_pipeline = build_blip(args.filter[0], args.filter[1], args.device, 'itm')
    kept, scores, skipped = [], [], 0
    counts = dict(web_kept=0, web_dropped=0, synthetic_kept=0, synthetic_dropped=0)
    progress = Progress(len(entries), 'capfilt', 'images')
    batch = []

    def flush():
        if not batch:
            return
        cap_images = preprocess(captioner, [b[1] for b in batch], args.device)
        synthetic = [[] for _ in batch]
        for _ in range(args.num_captions):
            caps = captioner.generate(cap_images, sample=True, top_p=args.top_p,
                                      max_length=args.max_length, min_length=args.min_length)
            for s, c in zip(synthetic, caps):
                s.append(c)
        filt_images = preprocess(filt, [b[2] for b in batch], args.device)
        pairs = [(i, c, 'web') for i, (e, _, _) in enumerate(batch) for c in e['captions']]
        pairs += [(i, c, 'synthetic') for i, s in enumerate(synthetic) for c in s]
        probs = match_probability(filt, filt_images[[p[0] for p in pairs]], [p[1] for p in pairs])
        for (i, caption, source), p in zip(pairs, probs.tolist()):
            e = batch[i][0]
            keep = p > args.threshold
            counts[f'{source}_{"kept" if keep else "dropped"}'] += 1
            scores.append(dict(image=e['image'], image_id=e['image_id'], caption=caption,
                               source=source, itm_score=p, kept=keep))
            if keep:
                kept.append(dict(image=e['image'], caption=caption, image_id=e['image_id']))
        progress.update(len(batch))
        batch.clear()

    for e, inputs in load_images(entries, args.image_root, pipeline):
        if inputs is None:
            skipped += 1
            progress.update()
            continue
        filt_item = filt_pipeline(dict(img_path=osp.join(args.image_root, e['image']),
                                       image_id=e['image_id'], texts=list(e['captions'])))
        if filt_item is None:
            skipped += 1
            progress.update()
            continue
        batch.append((e, inputs, filt_item['inputs']))
        if len(batch) == args.batch_size:
            flush()
    flush()
    progress.close()

    def dump(obj):
        def write(path):
            with open(path, 'w') as f:
                json.dump(obj, f, indent=1)
        return write

    atomic_write(args.out, dump(kept), force=args.force)
    if args.scores:
        atomic_write(args.scores, dump(scores), force=args.force)
    web = counts['web_kept'] + counts['web_dropped']
    syn = counts['synthetic_kept'] + counts['synthetic_dropped']
    print(f'web captions: kept {counts["web_kept"]} / {web}, dropped {counts["web_dropped"]}')
    print(f'synthetic captions: kept {counts["synthetic_kept"]} / {syn}, dropped '
          f'{counts["synthetic_dropped"]}')
    print(f'images: {len(entries) - skipped} captioned, {skipped} skipped (unreadable)')
    if args.noisy:
        noisy = {(i, c) for i, c in json.load(open(args.noisy))}
        web_scores = [s for s in scores if s['source'] == 'web']
        bad = [s for s in web_scores if (s['image_id'], s['caption']) in noisy]
        good = [s for s in web_scores if (s['image_id'], s['caption']) not in noisy]
        print(f'noisy web captions dropped: {sum(not s["kept"] for s in bad)} / {len(bad)}; '
              f'clean web captions dropped: {sum(not s["kept"] for s in good)} / {len(good)}')
    print(f'wrote {len(kept)} captions to {args.out}')
    return counts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='BLIP CapFilt: caption and filter a caption set')
    parser.add_argument('ann', help='caption annotations (COCO captions or LAVIS / BLIP JSON)')
    parser.add_argument('--image-root', required=True, help='folder the image paths start from')
    parser.add_argument('--captioner', nargs=2, required=True, metavar=('CONFIG', 'CKPT'))
    parser.add_argument('--filter', nargs=2, required=True, metavar=('CONFIG', 'CKPT'))
    parser.add_argument('--out', required=True, help='annotation JSON to write (LAVIS layout)')
    parser.add_argument('--threshold', type=float, default=0.5,
                        help='keep captions whose ITM match probability exceeds this')
    parser.add_argument('--num-captions', type=int, default=1, help='synthetic captions per image')
    parser.add_argument('--top-p', type=float, default=0.9)
    parser.add_argument('--max-length', type=int, default=30)
    parser.add_argument('--min-length', type=int, default=10)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scores', help='also write every caption with its ITM score')
    parser.add_argument('--noisy', help='JSON list of [image_id, caption] known to be wrong')
    parser.add_argument('--force', action='store_true', help='overwrite OUT (and SCORES)')
    args = parser.parse_args(argv)
    if not 0.0 <= args.threshold < 1.0:
        parser.error('--threshold must be in [0, 1)')
    if args.num_captions < 0:
        parser.error('--num-captions must be >= 0')
    return args


if __name__ == '__main__':
    run(parse_args())
