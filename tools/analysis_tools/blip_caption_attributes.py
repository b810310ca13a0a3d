"""Caption attribute accuracy of a BLIP captioner on the captioned demo data.

    python tools/analysis_tools/blip_caption_attributes.py CONFIG CKPT
        [--data-root data/demo_captions] [--split val] [--device cpu] [--show 5]

Captions every image of the split with the config's generation settings
(beam search) and checks, against the image's attributes, whether the
caption names the right shape (``disc``, ``ring``, ``striped square``,
``checkered square``), colour and quadrant (the first named, as
:func:`mmmim.evaluation.demo_attributes.caption_attributes` reads them). Chance is 25% for each (four
values, uniformly drawn); ``all`` needs the three at once (chance 1.6%).
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmmim.checkpoint.blip import load_blip  # noqa: E402
from mmmim.datasets.captions import load_caption_annotations  # noqa: E402
from mmmim.evaluation.demo_attributes import attribute_accuracy, caption_attributes  # noqa: E402
from mmmim.registry import MODELS  # noqa: E402


@torch.no_grad()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data-root', default='data/demo_captions')
    parser.add_argument('--split', default='val')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--show', type=int, default=5, help='example captions to print')
    args = parser.parse_args(argv)
    import mmmim  # noqa: F401
    from mmengine.dataset import Compose
    cfg = Config.fromfile(args.config)
    cfg.model.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmmim')):
        model = MODELS.build(cfg.model)
        pipeline = Compose(cfg.val_dataloader.dataset.pipeline)
    load_blip(model, args.checkpoint)
    model = model.to(args.device).eval()
    entries = load_caption_annotations(
        osp.join(args.data_root, 'annotations', f'captions_{args.split}.json'))
    predicted, truth, shown = [], [], 0
    for start in range(0, len(entries), args.batch_size):
        batch = entries[start:start + args.batch_size]
        items = [pipeline(dict(img_path=osp.join(args.data_root, 'images', args.split, e['image']),
                               image_id=e['image_id'], texts=e['captions'])) for e in batch]
        data = model.data_preprocessor(
            dict(inputs=torch.stack([i['inputs'] for i in items]), data_samples=None), False)
        images = data['inputs'][0] if isinstance(data['inputs'], list) else data['inputs']
        for e, caption in zip(batch, model.generate(images.to(args.device))):
            predicted.append(caption_attributes(caption))
            truth.append(e['attributes'])
            if shown < args.show:
                print(f'{e["image"]}: "{caption}"  (reference: "{e["captions"][0]}")')
                shown += 1
    acc = attribute_accuracy(predicted, truth)
    for key in ('shape', 'color', 'position'):
        print(f'{key} accuracy: {100.0 * acc[key]:.1f}% (chance 25.0%)')
    every = sum(all(p[k] == t[k] for k in ('shape', 'color', 'position'))
                for p, t in zip(predicted, truth))
    print(f'all three: {100.0 * every / len(truth):.1f}% (chance 1.6%) over {len(truth)} images')


if __name__ == '__main__':
    main()
