import os.path as osp
import subprocess
import sys

import pytest

from mmmim.models.tokenizers.text import (TRANSFUSION_SPECIAL_TOKENS, build_bert_tokenizer,
                                          build_bpe_tokenizer)


def test_bert_tokenizer_has_blip_additions(demo_wordpiece_vocab):
    vocab = open(osp.join(demo_wordpiece_vocab, 'vocab.txt')).read().split('\n')[:-1]
    tok = build_bert_tokenizer(demo_wordpiece_vocab)
    # BLIP's layout: the vocabulary, then [DEC] (bos) and [ENC]
    assert len(tok) == len(vocab) + 2
    assert tok.bos_token == '[DEC]' and tok.bos_token_id == len(vocab)
    assert tok.convert_ids_to_tokens(tok.enc_token_id) == '[ENC]' and tok.enc_token_id == len(vocab) + 1
    ids = tok('A Red Ring, upper left').input_ids
    assert ids[0] == vocab.index('[CLS]') and ids[-1] == vocab.index('[SEP]')
    assert tok.decode(ids, skip_special_tokens=True) == 'a red ring, upper left'
    assert tok.pad_token_id == vocab.index('[PAD]')


def test_bpe_tokenizer_round_trip_and_specials(demo_bpe_tokenizer):
    tok = build_bpe_tokenizer(demo_bpe_tokenizer)
    text = 'a yellow checkered square in the lower right'
    assert tok.decode(tok(text).input_ids) == text
    ids = tok.convert_tokens_to_ids(list(TRANSFUSION_SPECIAL_TOKENS))
    assert len(set(ids)) == len(ids) and tok.unk_token_id not in ids
    assert tok.pad_token_id == ids[0] and tok.bos_token == '<bos>' and tok.eos_token == '<eos>'
    # specials are single tokens inside text
    assert tok('<boi><image><eoi>').input_ids == ids[1:4][:1] + [ids[3], ids[2]]


def test_sentencepiece_model_gets_the_special_tokens(tmp_path, demo_captions):
    """A Llama-style SentencePiece ``tokenizer.model`` (BPE, byte fallback), as Llama-2 ships."""
    spm = pytest.importorskip('sentencepiece', reason='reading tokenizer.model needs sentencepiece')
    import json
    ann = json.load(open(osp.join(demo_captions, 'annotations', 'captions_train.json')))
    (tmp_path / 'text.txt').write_text('\n'.join(a['caption'] for a in ann['annotations']))
    spm.SentencePieceTrainer.train(input=str(tmp_path / 'text.txt'), model_prefix=str(tmp_path / 'tokenizer'),
                                   vocab_size=400, model_type='bpe', byte_fallback=True,
                                   bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2)
    tok = build_bpe_tokenizer(str(tmp_path))
    assert tok.bos_token == '<s>' and tok.eos_token == '</s>'  # the file's own, as Llama-2's
    text = 'a red ring in the upper left'
    assert tok.decode(tok(text, add_special_tokens=False).input_ids) == text
    boi = tok.convert_tokens_to_ids('<boi>')
    assert boi >= 400 and tok.pad_token == '<pad>'


def test_missing_vocabulary_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='holds none of vocab.txt'):
        build_bert_tokenizer(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='nowhere.json does not exist'):
        build_bpe_tokenizer(str(tmp_path / 'nowhere.json'))


def test_tool_refuses_to_overwrite(demo_wordpiece_vocab, demo_captions):
    ann = osp.join(demo_captions, 'annotations', 'captions_train.json')
    args = [sys.executable, 'tools/misc/train_text_tokenizer.py', ann, '--out', demo_wordpiece_vocab,
            '--kind', 'wordpiece']
    proc = subprocess.run(args, capture_output=True, text=True)
    assert proc.returncode != 0 and 'pass --force' in proc.stderr
