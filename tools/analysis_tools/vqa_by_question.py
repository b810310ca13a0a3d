"""VQA accuracy of a BLIP-2 / InstructBLIP checkpoint per question on a VQA validation set.

    python tools/analysis_tools/vqa_by_question.py CONFIG CHECKPOINT

Runs the config's ``val_dataloader`` through the model's ``predict`` and prints the official
accuracy (``mmmim.evaluation.vqa_accuracy``) for each distinct question text and overall.
"""
import argparse
import os.path as osp
import sys
from collections import defaultdict

import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.registry import init_default_scope

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmmim.apis import init_model  # noqa: E402
from mmmim.evaluation import vqa_accuracy  # noqa: E402
from mmmim.registry import DATASETS  # noqa: E402
from mmmim.utils import Progress  # noqa: E402


@torch.no_grad()
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--batch-size', type=int, default=32)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    init_default_scope('mmmim')
    model = init_model(cfg, args.checkpoint)
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    scores = defaultdict(list)
    with Progress(len(ds), 'answering', 'questions') as bar:
        for start in range(0, len(ds), args.batch_size):
            batch = default_collate([ds[i] for i in range(start, min(len(ds), start + args.batch_size))])
            for s in model.predict(**model.data_preprocessor(batch, False)):
                scores[s.question].append(vqa_accuracy(s.pred_answer, s.gt_answers_all))
            bar.update(len(batch['data_samples']))
    for question, acc in sorted(scores.items()):
        print(f'{question:40s} {100 * sum(acc) / len(acc):5.1f} % of {len(acc)}')
    total = [a for acc in scores.values() for a in acc]
    print(f'{"overall":40s} {100 * sum(total) / len(total):5.1f} % of {len(total)}')


if __name__ == '__main__':
    main()
