"""Train the tiny language model that the BLIP-2 / InstructBLIP demos keep frozen.

    python tools/misc/train_demo_llm.py data/demo_captions --tokenizer data/demo_captions/bpe \
        --out data/demo_captions/opt-demo [--iters 600] [--force]

A small ``OPTForCausalLM`` (width 128, 2 layers) learns, as text only, the demo
captions and the demo question-answer pairs (``annotations/vqa_train.json``,
see ``mmmim.datasets.make_demo_vqa``) each after the short caption of its
image ("a red ring in the upper left Question: What colour is the shape?
Short answer: red"), tokenised exactly as the demos feed it
(``FrozenLLM.lm_inputs``: prompt, then answer + newline). So it answers from
the text before the question, where the demos put the soft prompts. The
result is a HF folder (``config.json``, weights, tokenizer) for
``FrozenLLM(path=...)``; it has never seen an image.
"""
import argparse
import os
import os.path as osp
import random
import shutil
import sys

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmmim.datasets import load_caption_annotations, load_vqa_annotations  # noqa: E402
from mmmim.models.multimodal import FrozenLLM  # noqa: E402
from mmmim.utils import Progress  # noqa: E402

SPECIAL_TOKENS = dict(pad_token='<pad>', bos_token='<bos>', eos_token='<eos>')
VQA_PROMPT = 'Question: {} Short answer:'  # the prompt of the demo configs


def build(tokenizer: str, width: int, layers: int) -> FrozenLLM:
    from transformers import PreTrainedTokenizerFast
    vocab = len(PreTrainedTokenizerFast(tokenizer_file=osp.join(tokenizer, 'tokenizer.json')))
    cfg = dict(type='opt', vocab_size=vocab, hidden_size=width, num_hidden_layers=layers,
               ffn_dim=4 * width, num_attention_heads=4, max_position_embeddings=128,
               word_embed_proj_dim=width, dropout=0.0, pad_token_id=0)
    return FrozenLLM(config=cfg, tokenizer=tokenizer, special_tokens=SPECIAL_TOKENS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='captioned demo data (with annotations/vqa_train.json)')
    parser.add_argument('--tokenizer', required=True, help='folder with the BPE tokenizer.json')
    parser.add_argument('--out', required=True, help='output HF folder')
    parser.add_argument('--iters', type=int, default=600)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--width', type=int, default=128)
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true', help='replace an existing output folder')
    args = parser.parse_args(argv)
    if osp.exists(args.out) and not args.force:
        raise FileExistsError(f'{args.out} exists; pass --force to replace it')
    ann = osp.join(args.root, 'annotations')
    captions = load_caption_annotations(osp.join(ann, 'captions_train.json'))
    pairs = [('', c) for e in captions for c in e['captions']]
    vqa_file = osp.join(ann, 'vqa_train.json')
    if not osp.isfile(vqa_file):
        raise FileNotFoundError(f'{vqa_file} is missing: run tools/misc/make_demo_vqa.py first')
    # a question follows a caption of its image: the LLM learns to answer from the text before
    # the question, where the BLIP-2 demos put the soft prompts instead of a caption
    short = {f'train/{e["image"]}': e['captions'][-1] for e in captions}
    pairs += [(f'{short[q["image"]]} {VQA_PROMPT.format(q["question"])}', q['answers'][0])
              for q in load_vqa_annotations(vqa_file)]
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    llm = build(args.tokenizer, args.width, args.layers)
    model = llm.model.train().requires_grad_(True)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    with Progress(args.iters, 'training the demo LLM', 'iterations') as bar:
        for it in range(args.iters):
            batch = random.sample(pairs, args.batch_size)
            t = llm.lm_inputs([p for p, _ in batch], [a for _, a in batch], 64, 32)
            labels = t['input_ids'].masked_fill(t['attention_mask'] == 0, -100)  # all text
            loss = model(input_ids=t['input_ids'], attention_mask=t['attention_mask'],
                         labels=labels).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
            if (it + 1) % 100 == 0:
                print(f'iter {it + 1}: loss {loss.item():.3f}', flush=True)
    tmp = args.out + '.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    model.eval().save_pretrained(tmp)
    llm.tokenizer.save_pretrained(tmp)
    if osp.exists(args.out):
        shutil.rmtree(args.out)
    os.replace(tmp, args.out)
    print(f'wrote {args.out} (final loss {loss.item():.3f})')


if __name__ == '__main__':
    main()
