"""Text tokenizers: HF ``transformers`` tokenizers read from files the user names.

Nothing downloads: each builder takes a vocabulary file or a folder holding
one, and fails naming the path when it is not there.
"""
import os.path as osp
from typing import Sequence

# Transfusion's additions to a text tokenizer: padding, the image brackets and
# the placeholder an image's patches stand in for, and sequence brackets.
TRANSFUSION_SPECIAL_TOKENS = ('<pad>', '<boi>', '<eoi>', '<image>', '<bos>', '<eos>')


def _find(path: str, names: Sequence[str], what: str) -> str:
    """``path`` if it is a file, else the first of ``names`` inside the folder ``path``."""
    if osp.isfile(path):
        return path
    if osp.isdir(path):
        for name in names:
            if osp.isfile(osp.join(path, name)):
                return osp.join(path, name)
        raise FileNotFoundError(f'{what}: the folder {path} holds none of {", ".join(names)}')
    raise FileNotFoundError(f'{what}: {path} does not exist')


def build_bert_tokenizer(path: str):
    """BLIP's tokenizer: bert-base-uncased WordPiece plus ``[DEC]`` and ``[ENC]``.

    ``path`` is a ``vocab.txt`` or a folder with one (e.g. a local copy of
    bert-base-uncased). As the official ``init_tokenizer``, ``[DEC]`` is added
    as the bos token and ``[ENC]`` as an additional special token, whose id
    is kept as ``tokenizer.enc_token_id`` (30,522 + 2 = 30,524 ids for
    bert-base-uncased).
    """
    from transformers import BertTokenizerFast
    vocab = _find(path, ('vocab.txt', ), 'BERT vocabulary')
    tokenizer = BertTokenizerFast(vocab_file=vocab, do_lower_case=True)
    tokenizer.add_special_tokens({'bos_token': '[DEC]'})
    tokenizer.add_special_tokens({'additional_special_tokens': ['[ENC]']})
    tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
    return tokenizer


def build_bpe_tokenizer(path: str, special_tokens: Sequence[str] = TRANSFUSION_SPECIAL_TOKENS):
    """A BPE tokenizer (e.g. Llama-2's) with ``special_tokens`` added where absent.

    ``path`` is a ``tokenizer.json`` (HF ``tokenizers`` format), a
    SentencePiece ``tokenizer.model`` (Llama-2's own file; needs
    ``sentencepiece``), or a folder holding either. The ids of the special
    tokens are ``tokenizer.convert_tokens_to_ids(name)``; ``<pad>`` becomes
    the pad token, ``<bos>`` / ``<eos>`` the bos / eos tokens unless the file
    has its own.
    """
    file = _find(path, ('tokenizer.json', 'tokenizer.model'), 'BPE tokenizer')
    if file.endswith('.model'):
        from transformers import LlamaTokenizer
        # legacy: SentencePiece as it is, as Meta's own Llama code calls it (no protobuf needed)
        tokenizer = LlamaTokenizer(vocab_file=file, legacy=True)
    else:
        from transformers import PreTrainedTokenizerFast
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=file)
    missing = [t for t in special_tokens if t not in tokenizer.get_vocab()]
    tokenizer.add_special_tokens({'additional_special_tokens': missing}, replace_additional_special_tokens=False)
    for role, token in (('pad_token', '<pad>'), ('bos_token', '<bos>'), ('eos_token', '<eos>')):
        if token in special_tokens and getattr(tokenizer, role) is None:
            setattr(tokenizer, role, token)
    return tokenizer


def train_text_tokenizer(texts: Sequence[str], kind: str, vocab_size: int = 1000):
    """Train a small tokenizer on ``texts`` with HF ``tokenizers``.

    ``kind='wordpiece'``: lower-cased BERT-style WordPiece with ``[PAD]``
    ``[UNK]`` ``[CLS]`` ``[SEP]`` ``[MASK]`` (what :func:`build_bert_tokenizer`
    reads, saved as ``vocab.txt``). ``kind='bpe'``: byte-level BPE with the
    Transfusion special tokens (saved as ``tokenizer.json``). Returns the
    ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    if kind == 'wordpiece':
        specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
        tok = Tokenizer(models.WordPiece(unk_token='[UNK]'))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials,
                                             show_progress=False)
    elif kind == 'bpe':
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(TRANSFUSION_SPECIAL_TOKENS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                      show_progress=False)
    else:
        raise ValueError(f'unknown tokenizer kind {kind!r}; expected "wordpiece" or "bpe"')
    tok.train_from_iterator(texts, trainer=trainer)
    return tok
