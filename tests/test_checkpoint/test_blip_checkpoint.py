"""BLIP checkpoints: HF transformers' BLIP classes as the reference; official and mmpretrain layouts.

The HF models (tiny random configs) and mmmim's BLIP given the same weights
must give the same ITM logits, ITC similarities and LM logits; the official
file layout is written out here key by key (models/med.py and models/vit.py
of salesforce/BLIP) and filled from the HF reference's tensors.
"""
import copy
import re

import pytest
import torch

from mmmim.checkpoint.blip import (blip_to_hf, blip_to_official, detect_blip_layout, load_blip,
                                   to_blip_mmmim)
from mmmim.registry import MODELS

V_WIDTH, V_DEPTH, V_HEADS, IMG, PATCH = 32, 2, 2, 32, 8
T_WIDTH, T_DEPTH, T_HEADS, T_INTER = 64, 2, 2, 128
EMBED = 16


def blip_cfg(vocab, task, **kw):
    return dict(type='BLIP', task=task, tokenizer=vocab, embed_dim=EMBED, queue_size=8,
                vision_encoder=dict(type='ViT', arch=dict(embed_dim=V_WIDTH, depth=V_DEPTH,
                                                          num_heads=V_HEADS),
                                    img_size=IMG, patch_size=PATCH, out_type='raw'),
                med=dict(arch=dict(hidden_size=T_WIDTH, num_hidden_layers=T_DEPTH,
                                    num_attention_heads=T_HEADS, intermediate_size=T_INTER)), **kw)


def hf_config(tokenizer):
    from transformers import BlipConfig
    return BlipConfig(
        vision_config=dict(hidden_size=V_WIDTH, intermediate_size=4 * V_WIDTH,
                           num_hidden_layers=V_DEPTH, num_attention_heads=V_HEADS, image_size=IMG,
                           patch_size=PATCH, layer_norm_eps=1e-6),
        text_config=dict(vocab_size=len(tokenizer), hidden_size=T_WIDTH,
                         encoder_hidden_size=V_WIDTH, intermediate_size=T_INTER,
                         num_hidden_layers=T_DEPTH, num_attention_heads=T_HEADS,
                         bos_token_id=tokenizer.bos_token_id, sep_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id),
        image_text_hidden_size=EMBED)


def randomise(model, seed):
    """Non-trivial values for every tensor (HF initialises some to 0 / 1 or tiny)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model.eval()


@pytest.fixture(scope='module')
def reference(demo_wordpiece_vocab):
    from transformers import BlipForConditionalGeneration, BlipForImageTextRetrieval
    from mmmim.models.tokenizers.text import build_bert_tokenizer
    tok = build_bert_tokenizer(demo_wordpiece_vocab)
    cfg = hf_config(tok)
    retrieval = randomise(BlipForImageTextRetrieval(cfg), 0)
    caption = randomise(BlipForConditionalGeneration(cfg), 1)
    with torch.no_grad():  # BLIP's LM head is tied to the word embeddings (equal in HF's files)
        caption.text_decoder.cls.predictions.decoder.weight.copy_(
            caption.text_decoder.bert.embeddings.word_embeddings.weight)
    text = tok(['a red disc in the upper left', 'a blue ring on a black to gray gradient'],
               padding='longest', return_tensors='pt')
    images = torch.randn(2, 3, IMG, IMG, generator=torch.Generator().manual_seed(2))
    return dict(tok=tok, retrieval=retrieval, caption=caption, ids=text.input_ids,
                mask=text.attention_mask, images=images, vocab=demo_wordpiece_vocab)


def first_token(ids, token_id):
    ids = ids.clone()
    ids[:, 0] = token_id
    return ids


def check_retrieval(model, ref):
    hf, tok = ref['retrieval'], ref['tok']
    ids, mask, images = ref['ids'], ref['mask'], ref['images']
    with torch.no_grad():
        # HF feeds the ids as given: [ENC] first is BLIP's ITM input.
        itm_ref = hf(input_ids=first_token(ids, tok.enc_token_id), pixel_values=images,
                     attention_mask=mask, use_itm_head=True).itm_score
        itc_ref = hf(input_ids=ids, pixel_values=images, attention_mask=mask,
                     use_itm_head=False).itm_score
        embeds = model.image_embeds(images)
        itm = model.itm_logits(embeds, ids, mask)
        itc = model.image_feat(embeds) @ model.text_feat(dict(input_ids=ids, attention_mask=mask)).t()
    torch.testing.assert_close(itm, itm_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(itc, itc_ref, atol=1e-5, rtol=0)


def check_caption(model, ref):
    hf, tok = ref['caption'], ref['tok']
    ids, mask, images = ref['ids'], ref['mask'], ref['images']
    with torch.no_grad():
        lm_ref = hf(pixel_values=images, input_ids=first_token(ids, tok.bos_token_id),
                    attention_mask=mask).logits
        lm = model.lm_logits(model.image_embeds(images), ids, mask)
    torch.testing.assert_close(lm, lm_ref, atol=1e-5, rtol=0)


def test_hf_retrieval_import_matches_transformers(reference):
    model = MODELS.build(blip_cfg(reference['vocab'], 'retrieval')).eval()
    sd = reference['retrieval'].state_dict()
    assert detect_blip_layout(sd) == 'hf'
    report = load_blip(model, 'hf-retrieval', contents=sd)
    assert 'visual_encoder_m.cls_token' in report['missing']  # momentum: copied from online
    torch.testing.assert_close(model.visual_encoder_m.pos_embed, model.visual_encoder.pos_embed)
    check_retrieval(model, reference)


def test_hf_caption_import_matches_transformers(reference):
    model = MODELS.build(blip_cfg(reference['vocab'], 'caption')).eval()
    load_blip(model, 'hf-caption', contents=reference['caption'].state_dict())
    check_caption(model, reference)


def test_hf_export_round_trip(reference):
    from transformers import BlipConfig, BlipForConditionalGeneration, BlipForImageTextRetrieval
    tok = reference['tok']
    for task, fmt, cls, key in (('retrieval', 'hf-blip-retrieval', BlipForImageTextRetrieval,
                                 'retrieval'),
                                ('caption', 'hf-blip-caption', BlipForConditionalGeneration,
                                 'caption')):
        model = MODELS.build(blip_cfg(reference['vocab'], task)).eval()
        load_blip(model, key, contents=reference[key].state_dict())
        config, sd, dropped = blip_to_hf(model.state_dict(), fmt, V_HEADS, T_HEADS,
                                         tok.bos_token_id, tok.sep_token_id)
        assert config['architectures'] == [cls.__name__]
        cfg = {k: v for k, v in config.items() if k not in ('model_type', 'architectures')}
        hf = cls(BlipConfig(**cfg)).eval()
        missing, unexpected = hf.load_state_dict(sd, strict=False)
        assert not unexpected and all('position_ids' in k for k in missing), (missing, unexpected)
        ref_sd = reference[key].state_dict()
        for k, v in hf.state_dict().items():
            torch.testing.assert_close(v, ref_sd[k], atol=0, rtol=0, msg=k)
        if task == 'retrieval':
            assert {k.split('.')[0] for k, _ in dropped} >= {'visual_encoder_m', 'image_queue',
                                                            'temp'}


# ------------------------------------------------------------ official layout, written out
def official_vit_keys(prefix, depth):
    keys = [f'{prefix}.{k}' for k in ('cls_token', 'pos_embed', 'patch_embed.proj.weight',
                                      'patch_embed.proj.bias', 'norm.weight', 'norm.bias')]
    for i in range(depth):
        for m in ('norm1', 'attn.qkv', 'attn.proj', 'norm2', 'mlp.fc1', 'mlp.fc2'):
            keys += [f'{prefix}.blocks.{i}.{m}.weight', f'{prefix}.blocks.{i}.{m}.bias']
    return keys


def official_bert_keys(prefix, depth):
    """models/med.py BertModel(add_pooling_layer=False): no token-type embedding."""
    keys = [f'{prefix}.embeddings.position_ids', f'{prefix}.embeddings.word_embeddings.weight',
            f'{prefix}.embeddings.position_embeddings.weight',
            f'{prefix}.embeddings.LayerNorm.weight', f'{prefix}.embeddings.LayerNorm.bias']
    for i in range(depth):
        layer = f'{prefix}.encoder.layer.{i}'
        for attn in ('attention', 'crossattention'):
            for m in ('self.query', 'self.key', 'self.value', 'output.dense', 'output.LayerNorm'):
                keys += [f'{layer}.{attn}.{m}.weight', f'{layer}.{attn}.{m}.bias']
        for m in ('intermediate.dense', 'output.dense', 'output.LayerNorm'):
            keys += [f'{layer}.{m}.weight', f'{layer}.{m}.bias']
    return keys


LM_HEAD = ['text_decoder.cls.predictions.bias', 'text_decoder.cls.predictions.transform.dense.weight',
           'text_decoder.cls.predictions.transform.dense.bias',
           'text_decoder.cls.predictions.transform.LayerNorm.weight',
           'text_decoder.cls.predictions.transform.LayerNorm.bias',
           'text_decoder.cls.predictions.decoder.weight', 'text_decoder.cls.predictions.decoder.bias']
LINEARS = [f'{m}.{p}' for m in ('vision_proj', 'text_proj', 'itm_head') for p in ('weight', 'bias')]


def official_layout(kind):
    """The key list of an official BLIP file (BLIP_Pretrain / BLIP_Retrieval / BLIP_Decoder)."""
    if kind == 'caption':  # model_base_caption_capfilt_large.pth
        return official_vit_keys('visual_encoder', V_DEPTH) + official_bert_keys(
            'text_decoder.bert', T_DEPTH) + LM_HEAD
    keys = official_vit_keys('visual_encoder', V_DEPTH) + official_vit_keys('visual_encoder_m', V_DEPTH)
    keys += official_bert_keys('text_encoder', T_DEPTH) + official_bert_keys('text_encoder_m', T_DEPTH)
    keys += LINEARS + [k.replace('_proj.', '_proj_m.') for k in LINEARS if '_proj.' in k]
    keys += ['temp', 'image_queue', 'text_queue']
    if kind == 'retrieval':  # model_base_retrieval_coco.pth
        return keys + ['idx_queue', 'ptr_queue']
    return keys + ['queue_ptr'] + official_bert_keys('text_decoder.bert', T_DEPTH) + LM_HEAD


def hf_name(key):
    """Where the HF reference holds the tensor of an official key (momentum: the online one)."""
    key = re.sub(r'_m\.', '.', key.replace('visual_encoder_m.', 'visual_encoder.'))
    vit = [('cls_token', 'embeddings.class_embedding'), ('pos_embed', 'embeddings.position_embedding'),
           ('patch_embed.proj.', 'embeddings.patch_embedding.'), ('norm.', 'post_layernorm.'),
           ('attn.qkv.', 'self_attn.qkv.'), ('attn.proj.', 'self_attn.projection.'),
           ('norm1.', 'layer_norm1.'), ('norm2.', 'layer_norm2.')]
    if key.startswith('visual_encoder.'):
        name = key[len('visual_encoder.'):].replace('blocks.', 'encoder.layers.')
        for a, b in vit:
            if name.startswith(a) or f'.{a}' in name:
                name = name.replace(a, b, 1) if name.startswith(a) else name.replace(f'.{a}', f'.{b}')
                break
        return 'vision_model.' + name
    return key


def official_file(reference, kind):
    g = torch.Generator().manual_seed(3)
    ret, cap = reference['retrieval'].state_dict(), reference['caption'].state_dict()
    sd = {}
    for k in official_layout(kind):
        if k.endswith('position_ids'):
            sd[k] = torch.arange(512).unsqueeze(0)
        elif k in ('image_queue', 'text_queue'):
            sd[k] = torch.nn.functional.normalize(torch.randn(EMBED, 8, generator=g), dim=0)
        elif k == 'idx_queue':
            sd[k] = torch.full((1, 8), -100)
        elif k in ('queue_ptr', 'ptr_queue'):
            sd[k] = torch.tensor([4])
        elif k == 'temp':
            sd[k] = torch.tensor(0.05)
        elif k.startswith('text_decoder.'):
            sd[k] = cap[k]
        else:
            src = cap if kind == 'caption' else ret
            sd[k] = src[hf_name(k)]
    return {'model': sd}


@pytest.mark.parametrize('kind', ['retrieval', 'caption'])
def test_official_layout_loads_strictly_and_matches(reference, kind, tmp_path):
    path = str(tmp_path / f'model_{kind}.pth')
    torch.save(official_file(reference, kind), path)
    model = MODELS.build(blip_cfg(reference['vocab'], kind)).eval()
    report = load_blip(model, path)
    assert report['missing'] == [] and report['unexpected'] == []
    assert any(k.endswith('position_ids') for k in report['dropped'])
    if kind == 'retrieval':
        assert int(model.queue_ptr) == 4 and float(model.temp.detach()) == pytest.approx(0.05)
        check_retrieval(model, reference)
        # round trip to the official names
        back = blip_to_official(model.state_dict())
        assert set(back) == {k for k in official_layout(kind) if not k.endswith('position_ids')}
    else:
        check_caption(model, reference)


def test_official_pretrain_file_fits_every_task(reference, tmp_path, capsys):
    """model_base.pth: all parts load into a pretraining model; fine-tuning tasks take theirs."""
    ckpt = official_file(reference, 'pretrain')
    # In the official pretraining model the decoder shares all but self-attention with the encoder.
    sd = ckpt['model']
    for k in list(sd):
        if k.startswith('text_decoder.bert.') and '.attention.' not in k and 'position_ids' not in k:
            enc = 'text_encoder.' + k[len('text_decoder.bert.'):]
            sd[enc] = sd[k]
    path = str(tmp_path / 'model_base.pth')
    torch.save(ckpt, path)
    pre = MODELS.build(blip_cfg(reference['vocab'], 'pretrain')).eval()
    report = load_blip(pre, path)
    assert report['missing'] == [] and report['unexpected'] == []
    assert sorted(blip_to_official(pre.state_dict())) == sorted(
        k for k in official_layout('pretrain') if not k.endswith('position_ids'))
    # LM logits against an HF captioner holding the file's image tower (the retrieval reference's).
    captioner = copy.deepcopy(reference['caption'])
    captioner.vision_model.load_state_dict(reference['retrieval'].vision_model.state_dict())
    check_caption(pre, dict(reference, caption=captioner))
    ret = MODELS.build(blip_cfg(reference['vocab'], 'retrieval')).eval()
    report = load_blip(ret, path)
    assert 'text_decoder.cls.predictions.bias' in report['unexpected']
    assert 'idx_queue' in report['missing']


def test_official_layout_errors_are_loud(reference, tmp_path):
    ckpt = official_file(reference, 'retrieval')
    del ckpt['model']['text_encoder.encoder.layer.1.crossattention.self.key.weight']
    ckpt['model']['text_encoder.pooler.dense.weight'] = torch.zeros(T_WIDTH, T_WIDTH)
    path = str(tmp_path / 'broken.pth')
    torch.save(ckpt, path)
    model = MODELS.build(blip_cfg(reference['vocab'], 'retrieval'))
    before = model.itm_head.weight.clone()
    with pytest.raises(KeyError, match=r'crossattention\.self\.key\.weight.*pooler'):
        load_blip(model, path)
    torch.testing.assert_close(model.itm_head.weight, before)  # nothing loaded
    wrong = official_file(reference, 'caption')
    wrong['model']['text_decoder.cls.predictions.bias'] = torch.zeros(7)
    torch.save(wrong, path)
    with pytest.raises(KeyError, match='wrong shapes.*predictions.bias'):
        load_blip(MODELS.build(blip_cfg(reference['vocab'], 'caption')), path)
    with pytest.raises(ValueError, match='not a BLIP checkpoint'):
        to_blip_mmmim({'model': {'foo.weight': torch.zeros(1)}})


def test_mmpretrain_layout(reference):
    """mmpretrain BlipRetrieval names (vision_backbone in mmpretrain ViT names, *_neck, heads)."""
    sd = to_blip_mmmim(official_file(reference, 'retrieval')).state_dict
    mm = {}
    for k, v in sd.items():
        if k.endswith('token_type_embeddings.weight'):
            continue
        for a, b in (('visual_encoder_m.', 'vision_backbone_m.'), ('visual_encoder.', 'vision_backbone.'),
                     ('text_encoder_m.', 'text_backbone_m.'), ('text_encoder.', 'text_backbone.'),
                     ('vision_proj_m.', 'vision_neck_m.'), ('vision_proj.', 'vision_neck.'),
                     ('text_proj_m.', 'text_neck_m.'), ('text_proj.', 'text_neck.'),
                     ('itm_head.', 'multimodal_head.fc.'), ('image_queue', 'head.image_queue'),
                     ('text_queue', 'head.text_queue'), ('idx_queue', 'head.idx_queue'),
                     ('queue_ptr', 'head.queue_ptr')):
            if k.startswith(a):
                k = b + k[len(a):]
                break
        if k.startswith('vision_backbone'):
            k = k.replace('.blocks.', '.layers.').replace('.norm1.', '.ln1.').replace(
                '.norm2.', '.ln2.').replace('.mlp.fc1.', '.ffn.layers.0.0.').replace(
                    '.mlp.fc2.', '.ffn.layers.1.').replace('patch_embed.proj.', 'patch_embed.projection.')
            k = re.sub(r'^(vision_backbone(_m)?)\.norm\.', r'\1.ln1.', k)
        mm[k] = v
    assert detect_blip_layout(mm) == 'mmpretrain'
    model = MODELS.build(blip_cfg(reference['vocab'], 'retrieval')).eval()
    load_blip(model, 'mmpretrain', contents={'state_dict': mm})
    check_retrieval(model, reference)


def test_converter_tool_round_trips_through_hf_and_official(reference, tmp_path):
    """tools/model_converters/convert.py: official file -> HF folder -> mmmim -> official."""
    import importlib.util
    from transformers import BlipForImageTextRetrieval
    from mmengine.config import Config
    from ..conftest import REPO
    spec = importlib.util.spec_from_file_location(
        'convert', f'{REPO}/tools/model_converters/convert.py')
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    official = str(tmp_path / 'model_base_retrieval_coco.pth')
    torch.save(official_file(reference, 'retrieval'), official)
    config = str(tmp_path / 'blip.py')
    Config(dict(model=blip_cfg(reference['vocab'], 'retrieval'))).dump(config)
    hf_dir = str(tmp_path / 'hf')
    convert.convert(official, hf_dir, dst_format='hf-blip-retrieval', config=config)
    hf = BlipForImageTextRetrieval.from_pretrained(hf_dir).eval()
    for k, v in reference['retrieval'].state_dict().items():
        torch.testing.assert_close(hf.state_dict()[k], v, atol=0, rtol=0, msg=k)
    mmmim_file, back = str(tmp_path / 'mmmim.pth'), str(tmp_path / 'official.pth')
    convert.convert(hf_dir, mmmim_file)  # HF folder in; momentum / queues are not in HF files
    model = MODELS.build(blip_cfg(reference['vocab'], 'retrieval')).eval()
    load_blip(model, mmmim_file)
    check_retrieval(model, reference)
    convert.convert(official, back, dst_format='blip-official')
    sd = torch.load(back, weights_only=True)['model']
    assert 'ptr_queue' in sd and not any('token_type' in k for k in sd)
    with pytest.raises(SystemExit, match='exists'):
        convert.convert(official, back, dst_format='blip-official')


def test_med_initialised_from_bert(reference, tmp_path):
    """med.pretrained: bert-base-uncased style weights (BertForPreTraining) fill the MED."""
    from transformers import BertConfig, BertForPreTraining
    tok = reference['tok']
    bert = randomise(BertForPreTraining(BertConfig(
        vocab_size=len(tok) - 2, hidden_size=T_WIDTH, num_hidden_layers=T_DEPTH,
        num_attention_heads=T_HEADS, intermediate_size=T_INTER)), 4)
    bert.save_pretrained(str(tmp_path / 'bert'))
    cfg = blip_cfg(reference['vocab'], 'pretrain')
    cfg['med']['pretrained'] = str(tmp_path / 'bert')
    model = MODELS.build(cfg)
    cross = model.text_encoder.encoder.layer[0].crossattention.self.key.weight.clone()
    model.init_weights()
    sd = bert.state_dict()
    for name in ('encoder.layer.1.attention.self.query.weight', 'encoder.layer.0.output.dense.bias',
                 'embeddings.position_embeddings.weight'):
        torch.testing.assert_close(model.text_encoder.state_dict()[name], sd['bert.' + name])
        torch.testing.assert_close(model.text_decoder.bert.state_dict()[name], sd['bert.' + name])
        torch.testing.assert_close(model.text_encoder_m.state_dict()[name], sd['bert.' + name])
    words = model.text_encoder.embeddings.word_embeddings.weight
    torch.testing.assert_close(words[:len(tok) - 2], sd['bert.embeddings.word_embeddings.weight'])
    torch.testing.assert_close(model.text_decoder.cls.predictions.transform.dense.weight,
                               sd['cls.predictions.transform.dense.weight'])
    torch.testing.assert_close(model.text_encoder.encoder.layer[0].crossattention.self.key.weight,
                               cross)  # no BERT weights for cross-attention
    assert not model.text_encoder.embeddings.token_type_embeddings.weight.any()
