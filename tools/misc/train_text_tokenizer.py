"""Train a small text tokenizer on the captions of annotation files (no download).

    python tools/misc/train_text_tokenizer.py data/demo_captions/annotations/captions_train.json \
        --out data/demo_captions/wordpiece --kind wordpiece
    python tools/misc/train_text_tokenizer.py data/demo_captions/annotations/captions_train.json \
        --out data/demo_captions/bpe --kind bpe

``wordpiece`` writes ``OUT/vocab.txt`` (lower-cased BERT style, for BLIP's
``build_bert_tokenizer``); ``bpe`` writes ``OUT/tokenizer.json`` (byte-level
BPE with Transfusion's special tokens, for ``build_bpe_tokenizer``). The
annotation files are COCO-captions or LAVIS JSON.
"""
import argparse
import os.path as osp

from mmmim.datasets import load_caption_annotations
from mmmim.models.tokenizers.text import train_text_tokenizer
from mmmim.utils import atomic_write


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_files', nargs='+', help='caption annotation JSON files')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--kind', choices=['wordpiece', 'bpe'], required=True)
    parser.add_argument('--vocab-size', type=int, default=1000,
                        help='largest vocabulary (a small corpus gives fewer)')
    parser.add_argument('--force', action='store_true', help='replace an existing vocabulary')
    args = parser.parse_args(argv)
    texts = [c for f in args.ann_files for e in load_caption_annotations(f) for c in e['captions']]
    tok = train_text_tokenizer(texts, args.kind, args.vocab_size)
    if args.kind == 'wordpiece':
        vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])  # by id: line i is id i
        dst = osp.join(args.out, 'vocab.txt')
        atomic_write(dst, lambda tmp: open(tmp, 'w', encoding='utf-8').write(
            ''.join(f'{token}\n' for token, _ in vocab)), args.force)
    else:
        dst = osp.join(args.out, 'tokenizer.json')
        atomic_write(dst, tok.save, args.force)
    print(f'wrote a {args.kind} vocabulary of {tok.get_vocab_size()} tokens from {len(texts)} '
          f'captions to {dst}')


if __name__ == '__main__':
    main()
