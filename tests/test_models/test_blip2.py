"""BLIP-2 / InstructBLIP against HF transformers' classes with tiny configs, and the stage-1 masks
against a brute-force construction."""
import itertools

import pytest
import torch
import torch.nn.functional as F

from mmmim.checkpoint.blip2 import from_hf, to_hf
from mmmim.models import BLIP2, InstructBLIP, qformer_attention_mask

C, Q, IMG = 32, 4, 28
WORDS = ['<pad>', '<s>', '</s>', 'a', 'red', 'ring', 'disc', 'blue', 'question', 'answer']
VIS = dict(hidden_size=C, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
           image_size=IMG, patch_size=14, qkv_bias=True, layer_norm_eps=1e-6)
QF = dict(vocab_size=40, hidden_size=C, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=37, encoder_hidden_size=C, cross_attention_frequency=2,
          max_position_embeddings=64)
OPT = dict(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=2, ffn_dim=32,
           num_attention_heads=2, max_position_embeddings=64, word_embed_proj_dim=16,
           pad_token_id=0, bos_token_id=1, eos_token_id=2)
LLAMA = dict(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
             num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
             pad_token_id=0, bos_token_id=1, eos_token_id=2)  # Vicuna's class, tiny
T5 = dict(vocab_size=len(WORDS), d_model=16, d_kv=8, d_ff=32, num_layers=2, num_decoder_layers=2,
          num_heads=2, pad_token_id=0, eos_token_id=2, decoder_start_token_id=0,
          feed_forward_proj='gated-gelu', dense_act_fn='gelu')


@pytest.fixture(scope='module')
def llm_tokenizer(tmp_path_factory):
    """A word-level tokenizer.json over WORDS (the LLM side needs no real vocabulary)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    d = tmp_path_factory.mktemp('llm_tok')
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token='a'))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(d / 'tokenizer.json'))
    return str(d)


@pytest.fixture(scope='module')
def bert_vocab(tmp_path_factory):
    d = tmp_path_factory.mktemp('bert_vocab')
    words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'red', 'ring', 'what', 'shape',
             'is', 'in', 'the', 'image', '?', 'blue', 'disc']
    (d / 'vocab.txt').write_text('\n'.join(words) + '\n')
    return str(d)


def vit_cfg():
    return dict(type='ViT', arch=dict(embed_dim=C, depth=2, num_heads=4, mlp_ratio=2.0),
                img_size=IMG, patch_size=14, qkv_bias=False, qv_bias=True, final_norm=False,
                out_type='raw')


def qformer_cfg(vocab=None):
    bert = dict(hidden_size=C, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                max_position_embeddings=64)
    if vocab:
        bert['vocab_size'] = vocab
    return dict(num_query_tokens=Q, bert=bert)


def randomize(model):
    """Random weights everywhere (no zero biases / unit norms hiding a wrong mapping)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1 + (1.0 if name.endswith(
                ('layernorm.weight', 'LayerNorm.weight', 'layer_norm1.weight',
                 'layer_norm2.weight', 'post_layernorm.weight')) else 0.0))
    for layer in model.vision_model.encoder.layers:  # HF's fused bias: the key part stays 0
        layer.self_attn.qkv.bias.data[C:2 * C] = 0
    return model.eval()


def ours(kind, llm_tokenizer, cls=BLIP2, **kw):
    llm = dict(config=dict(type=kind, **dict(opt=OPT, llama=LLAMA, t5=T5)[kind]),
               tokenizer=llm_tokenizer,
               special_tokens=dict(pad_token='<pad>'), t5_dense_act_fn=None)
    return cls(visual_encoder=vit_cfg(), qformer=qformer_cfg(kw.pop('vocab', None)), llm=llm,
               vit_precision='fp32', ln_vision_eps=1e-6, **kw).eval()


def brute_force_mask(Q, text_mask, mode):
    B, T = text_mask.shape
    out = torch.zeros(B, Q + T, Q + T)
    for b, i, j in itertools.product(range(B), range(Q + T), range(Q + T)):
        key_ok = j < Q or bool(text_mask[b, j - Q])
        qi, qj = i < Q, j < Q
        if mode == 'unimodal':
            allowed = qi == qj
        elif mode == 'bidirectional':
            allowed = True
        else:  # causal: queries see queries; text sees all queries and earlier-or-same text
            allowed = qj if qi else (qj or j <= i)
        out[b, i, j] = float(allowed and key_ok)
    return out


@pytest.mark.parametrize('mode', ['unimodal', 'bidirectional', 'causal'])
def test_masks_match_brute_force(mode):
    text_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    assert torch.equal(qformer_attention_mask(3, text_mask, mode), brute_force_mask(3, text_mask, mode))
    with pytest.raises(ValueError, match='mask mode'):
        qformer_attention_mask(3, text_mask, 'full')


def test_stage2_opt_matches_hf(llm_tokenizer):
    from transformers import Blip2Config, Blip2ForConditionalGeneration
    hf = randomize(Blip2ForConditionalGeneration(Blip2Config(
        vision_config=VIS, qformer_config=QF, text_config=dict(model_type='opt', **OPT),
        num_query_tokens=Q)))
    m = ours('opt', llm_tokenizer)
    sd, _ = from_hf(hf.state_dict())
    m.load_state_dict(sd, strict=True)
    x = torch.randn(2, 3, IMG, IMG)
    ids, mask = torch.tensor([[1, 3, 4, 5], [1, 6, 7, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        ref = hf(pixel_values=x, input_ids=ids, attention_mask=mask)
        q = m(x)  # [B, Q, C]
        logits = m.llm(m.llm_proj(q), ids, mask).logits
    assert (q - ref.qformer_outputs.last_hidden_state).abs().max() <= 1e-5
    assert (logits - ref.logits).abs().max() <= 1e-5
    back = to_hf(m.state_dict())
    assert set(back) == set(hf.state_dict())
    assert all(torch.equal(back[k], v) for k, v in hf.state_dict().items())


def test_stage2_t5_matches_hf(llm_tokenizer):
    from transformers import Blip2Config, Blip2ForConditionalGeneration
    hf = randomize(Blip2ForConditionalGeneration(Blip2Config(
        vision_config=VIS, qformer_config=QF, text_config=dict(model_type='t5', **T5),
        num_query_tokens=Q)))
    m = ours('t5', llm_tokenizer)
    m.load_state_dict(from_hf(hf.state_dict())[0], strict=True)
    x = torch.randn(2, 3, IMG, IMG)
    ids, mask = torch.tensor([[8, 4, 5, 2], [8, 6, 2, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    dec = torch.tensor([[0, 9, 4], [0, 9, 7]])
    with torch.no_grad():
        ref = hf(pixel_values=x, input_ids=ids, attention_mask=mask, decoder_input_ids=dec)
        logits = m.llm(m.llm_proj(m(x)), ids, mask, decoder_input_ids=dec).logits
    assert (logits - ref.logits).abs().max() <= 1e-5


def test_instructblip_matches_hf(llm_tokenizer, bert_vocab):
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration
    m = ours('opt', llm_tokenizer, cls=InstructBLIP, tokenizer=bert_vocab)
    qf = dict(QF, vocab_size=m.qformer.config.vocab_size)
    hf = randomize(InstructBlipForConditionalGeneration(InstructBlipConfig(
        vision_config=VIS, qformer_config=qf, text_config=dict(model_type='opt', **OPT),
        num_query_tokens=Q)))
    m.load_state_dict(from_hf(hf.state_dict())[0], strict=True)
    x = torch.randn(2, 3, IMG, IMG)
    instructions = ['what shape is in the image ?', 'what is red ?']
    qtext = m.tokenize(instructions, 128, padding='longest', truncation_side='left')
    ids, mask = torch.tensor([[1, 8, 4, 5], [1, 8, 6, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        ref = hf(pixel_values=x, qformer_input_ids=qtext['input_ids'],
                 qformer_attention_mask=qtext['attention_mask'], input_ids=ids, attention_mask=mask)
        q = m.query_outputs(m.image_embeds(x), instructions)
        logits = m.llm(m.llm_proj(q), ids, mask).logits
    assert q.shape == (2, Q, C)  # only the query outputs reach the LLM
    assert (q - ref.qformer_outputs.last_hidden_state[:, :Q]).abs().max() <= 1e-5
    assert (logits - ref.logits).abs().max() <= 1e-5
    back = to_hf(m.state_dict(), instruct=True)
    assert set(back) == set(hf.state_dict())


def test_instructblip_vicuna_matches_hf(llm_tokenizer, bert_vocab):
    """InstructBLIP on a Llama (Vicuna's class) LLM against HF's, with a tiny LlamaConfig."""
    from transformers import InstructBlipConfig, InstructBlipForConditionalGeneration
    m = ours('llama', llm_tokenizer, cls=InstructBLIP, tokenizer=bert_vocab)
    qf = dict(QF, vocab_size=m.qformer.config.vocab_size)
    hf = randomize(InstructBlipForConditionalGeneration(InstructBlipConfig(
        vision_config=VIS, qformer_config=qf, text_config=dict(model_type='llama', **LLAMA),
        num_query_tokens=Q)))
    assert type(hf.language_model).__name__ == 'LlamaForCausalLM'
    m.load_state_dict(from_hf(hf.state_dict())[0], strict=True)
    x = torch.randn(2, 3, IMG, IMG)
    instructions = ['what shape is in the image ?', 'what is red ?']
    qtext = m.tokenize(instructions, 128, padding='longest', truncation_side='left')
    ids, mask = torch.tensor([[1, 8, 4, 5], [1, 8, 6, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        ref = hf(pixel_values=x, qformer_input_ids=qtext['input_ids'],
                 qformer_attention_mask=qtext['attention_mask'], input_ids=ids, attention_mask=mask)
        q = m.query_outputs(m.image_embeds(x), instructions)
        logits = m.llm(m.llm_proj(q), ids, mask).logits
    assert q.shape == (2, Q, C)
    assert (q - ref.qformer_outputs.last_hidden_state[:, :Q]).abs().max() <= 1e-5
    assert (logits - ref.logits).abs().max() <= 1e-5
    back = to_hf(m.state_dict(), instruct=True)
    assert set(back) == set(hf.state_dict())
    assert all(torch.equal(back[k], v) for k, v in hf.state_dict().items())


@pytest.fixture(scope='module')
def stage1(bert_vocab):
    torch.manual_seed(0)
    return BLIP2(visual_encoder=vit_cfg(), qformer=qformer_cfg(), tokenizer=bert_vocab,
                 embed_dim=16, vit_precision='fp32', ln_vision_eps=1e-6)


def test_stage1_features_match_hf_retrieval(stage1):
    """ITC (unimodal pass: queries and text apart) and ITM (bidirectional) against HF's
    Blip2ForImageTextRetrieval, which runs the query and text passes separately."""
    from transformers import Blip2Config, Blip2ForImageTextRetrieval
    qf = dict(QF, vocab_size=stage1.qformer.config.vocab_size, use_qformer_text_input=True)
    hf = Blip2ForImageTextRetrieval(Blip2Config(vision_config=VIS, qformer_config=qf,
                                                num_query_tokens=Q, image_text_hidden_size=16))
    randomize(hf)
    sd, _ = from_hf(hf.state_dict())
    m = stage1.eval()
    missing = set(m.state_dict()) - set(sd)
    assert missing == {'temp', 'qformer.cls.predictions.bias', 'qformer.cls.predictions.decoder.weight',
                       'qformer.cls.predictions.decoder.bias',
                       'qformer.cls.predictions.transform.dense.weight',
                       'qformer.cls.predictions.transform.dense.bias',
                       'qformer.cls.predictions.transform.LayerNorm.weight',
                       'qformer.cls.predictions.transform.LayerNorm.bias'}
    cls_decoder = m.qformer.cls.predictions.decoder.weight.clone()
    m.load_state_dict(sd, strict=False)
    x = torch.randn(2, 3, IMG, IMG)
    text = m.tokenize(['a red ring', 'what shape is in the image ?'], 12)
    with torch.no_grad():
        image_feats, text_feat = m.stage1_features(m.image_embeds(x), text)
        ref_itc = hf(pixel_values=x, input_ids=text['input_ids'],
                     attention_mask=text['attention_mask'], use_image_text_matching_head=False)
        hidden = m.qformer(m.image_embeds(x), text['input_ids'], text['attention_mask'])
        itm = m.itm_head(hidden[:, :Q]).mean(1)
        ref_itm = hf(pixel_values=x, input_ids=text['input_ids'],
                     attention_mask=text['attention_mask'], use_image_text_matching_head=True)
    assert (image_feats - ref_itc.image_embeds).abs().max() <= 1e-5
    assert (text_feat - ref_itc.text_embeds).abs().max() <= 1e-5
    assert (itm - ref_itm.logits_per_image).abs().max() <= 1e-5
    # the ITG head stays tied to the word embeddings after loading
    assert m.qformer.cls.predictions.decoder.weight is m.qformer.embeddings.word_embeddings.weight
    assert not torch.equal(cls_decoder, m.qformer.embeddings.word_embeddings.weight)


def test_stage1_losses_follow_lavis(stage1):
    """ITC as LAVIS writes it (max over queries, /temp, label smoothing 0.1), ITG with [DEC]
    first and label smoothing 0.1; the frozen tower gets no gradient, ln_vision does."""
    m = stage1.train()
    torch.manual_seed(1)
    x = torch.randn(3, 3, IMG, IMG)
    texts = ['a red ring', 'a blue disc', 'what shape is in the image ?']
    samples = [dict(text=t) for t in texts]
    losses = m.loss(x, samples)
    assert set(losses) == {'loss_itc', 'loss_itm', 'loss_itg'}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in m.visual_encoder.parameters())
    assert m.ln_vision.weight.grad is not None and m.temp.grad is not None
    assert not m.visual_encoder.training and m.training
    m.zero_grad()
    m.eval()  # no dropout: recompute with the formula written out
    with torch.no_grad():
        emb = m.image_embeds(x)
        text = m.tokenize(texts, m.max_txt_len)
        image_feats, text_feat = m.stage1_features(emb, text)
        sim = torch.stack([torch.stack([max(image_feats[i, q] @ text_feat[j] for q in range(Q))
                                        for j in range(3)]) for i in range(3)]) / m.temp
        t = torch.arange(3)
        ref = (F.cross_entropy(sim, t, label_smoothing=0.1) +
               F.cross_entropy(sim.t(), t, label_smoothing=0.1)) / 2
        assert torch.allclose(m.itc_loss(image_feats, text_feat)[0], ref, atol=1e-6)
        ids = text['input_ids'].clone()
        ids[:, 0] = m.tokenizer.convert_tokens_to_ids('[DEC]')
        hidden = m.qformer(emb, ids, text['attention_mask'], mode='causal')
        logits = m.qformer.cls(hidden[:, Q:])
        labels = ids.masked_fill(text['attention_mask'] == 0, -100)
        ref_itg = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                  label_smoothing=0.1)
        assert torch.allclose(m.itg_loss(emb, text), ref_itg, atol=1e-6)


def test_stage2_trains_only_qformer_and_projection(llm_tokenizer):
    m = ours('opt', llm_tokenizer, prompt='question').train()
    assert not m.llm.model.training and not m.visual_encoder.training
    loss = m.loss(torch.randn(2, 3, IMG, IMG), [dict(text='a red ring'), dict(text='blue disc')])
    loss['loss_lm'].backward()
    assert all(p.grad is None for p in m.llm.parameters())
    assert m.llm_proj.weight.grad is not None and m.qformer.query_tokens.grad is not None
    assert m.qformer.embeddings is None  # LAVIS drops the text side in stage 2
    # decoder-only targets: prompt and padding masked, the output and its end token kept
    m.llm.output_end = ' answer'  # the word-level test vocabulary has no newline token
    t = m.llm.lm_inputs(['question', 'question answer'], ['red ring', 'disc'], 32, 32)
    assert t['input_ids'].tolist() == [[8, 4, 5, 9], [8, 9, 6, 9]]
    assert t['targets'].tolist() == [[-100, 4, 5, 9], [-100, -100, 6, 9]]
    t = m.llm.lm_inputs(['question'], ['red'], 32, 32)
    assert t['attention_mask'].tolist() == [[1, 1, 1]]


def test_eva_g_arch():
    """EVA ViT-g/14 as LAVIS runs it: 1408 wide, 16 heads, MLP 6144, q / v bias, 39 blocks."""
    from mmmim.models.backbones.vit import ARCHS, ViT
    assert ARCHS['eva-g']['depth'] == 39
    vit = ViT(arch=dict(ARCHS['eva-g'], depth=1), img_size=224, patch_size=14, qkv_bias=False,
              qv_bias=True, final_norm=False, out_type='raw')  # one block of it (CPU memory)
    assert vit.embed_dim == 1408 and vit.num_heads == 16
    assert vit.blocks[0].mlp.fc1.out_features == 6144
    assert vit.blocks[0].attn.q_bias is not None and vit.blocks[0].attn.qkv.bias is None
    assert vit.norm is None and vit.pos_embed.shape == (1, 257, 1408)


def test_clip_l_arch():
    """CLIP ViT-L/14 as LAVIS's create_clip_vit_L builds it: 1024 wide, 16 heads, MLP 4096,
    21 blocks, ln_pre, QuickGELU, fused qkv bias, no patch bias, no final norm."""
    from mmmim.models.backbones.vit import ARCHS, ViT
    from mmmim.models.layers.attention import QuickGELU
    assert ARCHS['clip-l']['depth'] == 21
    vit = ViT(arch=dict(ARCHS['clip-l'], depth=1), img_size=224, patch_size=14, patch_bias=False,
              pre_norm=True, act_layer='quick_gelu', norm_eps=1e-5, final_norm=False,
              out_type='raw')  # one block of it (CPU memory)
    assert vit.embed_dim == 1024 and vit.num_heads == 16
    assert vit.blocks[0].mlp.fc1.out_features == 4096
    assert isinstance(vit.blocks[0].mlp.act, QuickGELU)
    assert vit.blocks[0].attn.qkv.bias is not None and vit.patch_embed.proj.bias is None
    assert vit.norm is None and vit.norm_pre is not None and vit.pos_embed.shape == (1, 257, 1024)
    x = torch.linspace(-4, 4, 9)
    assert torch.allclose(QuickGELU()(x), x / (1 + torch.exp(-1.702 * x)))


def test_clip_l_stage1_config_is_lavis_pretrain_vitl():
    """blip2_pretrain_vitL.yaml's tower (clip_L, 224 px, fp16, frozen) with stage 1's recipe."""
    import os.path as osp
    from mmengine.config import Config
    from mmmim.models.backbones.vit import ViT
    from mmmim.models.layers.attention import QuickGELU
    from ..conftest import REPO
    c = Config.fromfile(osp.join(REPO, 'configs/blip2/blip2-stage1_clip-l-p14_16xb100-amp-coslr-'
                                       '10e_coco-vg-224.py'))
    m = c.model
    assert m.type == 'BLIP2' and m.vit_precision == 'fp16' and m.get('freeze_vit', True)
    assert m.vit_checkpoint.endswith('clip_vit_L.pth') and m.qformer.num_query_tokens == 32
    assert c.train_dataloader.batch_size == 100 and c.optim_wrapper.optimizer.lr == 1e-4
    vis = dict(m.visual_encoder)
    assert vis.pop('type') == 'ViT' and vis['arch'] == 'clip-l' and vis['img_size'] == 224
    vit = ViT(**dict(vis, arch=dict(embed_dim=1024, depth=1, num_heads=16)))  # one block
    assert vit.norm_pre is not None and vit.norm is None and vit.out_type == 'raw'
    assert isinstance(vit.blocks[0].mlp.act, QuickGELU) and vit.patch_embed.proj.bias is None
    assert vit.blocks[0].attn.qkv.bias is not None and vit.blocks[0].attn.q_bias is None
    assert vit.norm_pre.eps == 1e-5 and vit.patch_size == 14


def test_qformer_bert_init_as_lavis(tmp_path):
    """init_Qformer: BERT's embeddings, self-attention, FFN (copied into the query FFN) and MLM
    head; cross-attention random; rows past BERT's vocabulary ([DEC]) random."""
    from transformers import BertConfig, BertForMaskedLM

    from mmmim.models import QFormer
    bert = BertForMaskedLM(BertConfig(vocab_size=30, hidden_size=C, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=37,
                                      max_position_embeddings=64)).eval()
    bert.save_pretrained(tmp_path)
    qf = QFormer(num_query_tokens=Q, vision_width=C, lm_head=True,
                 bert=dict(vocab_size=31, hidden_size=C, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=37, max_position_embeddings=64),
                 pretrained=str(tmp_path))
    cross = qf.bert.encoder.layer[0].crossattention.attention.key.weight.clone()
    report = qf.load_bert(str(tmp_path))
    sd = bert.state_dict()
    layer = qf.bert.encoder.layer[1]
    for mine in (layer.intermediate.dense.weight, layer.intermediate_query.dense.weight):
        assert torch.equal(mine, sd['bert.encoder.layer.1.intermediate.dense.weight'])
    assert torch.equal(layer.output_query.LayerNorm.bias, sd['bert.encoder.layer.1.output.LayerNorm.bias'])
    assert torch.equal(layer.attention.attention.value.weight,
                       sd['bert.encoder.layer.1.attention.self.value.weight'])
    assert torch.equal(qf.bert.layernorm.weight, sd['bert.embeddings.LayerNorm.weight'])
    words = qf.embeddings.word_embeddings.weight
    assert torch.equal(words[:30], sd['bert.embeddings.word_embeddings.weight'])
    assert qf.cls.predictions.decoder.weight is words  # tied
    assert torch.equal(qf.cls.predictions.transform.dense.weight,
                       sd['cls.predictions.transform.dense.weight'])
    assert torch.equal(qf.bert.encoder.layer[0].crossattention.attention.key.weight, cross)
    assert 'bert.encoder.layer.0.crossattention.*' in report['random']
