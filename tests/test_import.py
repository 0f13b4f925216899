"Importing the authors' released checkpoints: a fabricated Lightning-1.3 checkpoint of a tiny model, features checked by an independent path."
import json, os, subprocess, sys
from dataclasses import asdict
from pathlib import Path
import pytest, timm, torch
import torch.nn.functional as F
from timm.models.swin_transformer import checkpoint_filter_fn
from transformers import BertConfig, BertModel
from hat_nb.config import tiny_config
from hat_nb.model import from_pretrained, load_tokenizer
from hat_nb.checkpoints import Inert, read_checkpoint_file
from hat_nb.official import LIGHTNING_STAND_INS, import_official, load_checkpoint_safely
sys.path.insert(0, str(Path(__file__).parent))
from official_ckpt import official_state_dict, save_lightning_checkpoint
from conftest import cli, run

HAT_NB = Path(sys.executable).parent/'hat-nb'      # the environment's own, activated or not

CFG = tiny_config(txt_levels=(1, 2, 3))

def reference_features(sd, cfg, images, ids, mask):
    "Per-level features straight from the checkpoint's tensors, the reference's way: stage outputs -> norm_1, norm_2, norm -> transforms _1, _2, ''."
    swin = timm.create_model(cfg.img_model, num_classes=0, **cfg.img_kwargs).eval()
    body = {k[len('vit_model.'):]: v for k, v in sd.items() if k.startswith('vit_model.') and not k.startswith(('vit_model.norm', 'vit_model.head'))}
    swin.load_state_dict(checkpoint_filter_fn(body, swin), strict=False)
    stages = swin.forward_intermediates(images, indices=[s - 1 for s in cfg.img_levels], intermediates_only=True, norm=False)
    img = []
    for f, norm, proj in zip(stages, ('norm_1', 'norm_2', 'norm'), ('_1', '_2', '')):
        t = f.flatten(2).transpose(1, 2)
        t = F.layer_norm(t, t.shape[-1:], sd[f'vit_model.{norm}.weight'], sd[f'vit_model.{norm}.bias'], eps=1e-5)
        img.append(F.linear(t, sd[f'cross_modal_image_transform{proj}.weight'], sd[f'cross_modal_image_transform{proj}.bias']))
    bert = BertModel(BertConfig(**cfg.txt_config), add_pooling_layer=True).eval()
    bert.load_state_dict({k[len('text_transformer.'):]: v for k, v in sd.items() if k.startswith('text_transformer.')})
    hs = bert(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True).hidden_states
    txt = [F.linear(hs[l], sd[f'cross_modal_text_transform{p}.weight'], sd[f'cross_modal_text_transform{p}.bias']) for l, p in zip(cfg.txt_levels, ('_1', '_2', ''))]
    return img, txt

@torch.no_grad()
def test_fabricated_official_checkpoint_imports_every_key_and_gives_the_reference_features(tmp_path):
    sd = official_state_dict(CFG)
    ckpt = save_lightning_checkpoint(sd, tmp_path/'hat_tiny.ckpt')
    out = import_official(ckpt, tmp_path/'imported', cfg=CFG)
    src = json.loads((out/'imported_from.json').read_text())
    unused = src['tensors_unused']
    assert src['tensors_used'] + len(unused) == len(sd)                                   # every official tensor accounted for
    assert set(unused) == {k for k in sd if k.startswith(('text_transformer.pooler.', 'vit_model.head.', 'vit_model.norm_0.')) or k.endswith('relative_position_index')}
    assert (src['epoch'], src['global_step'], src['checkpoint']) == (9, 2270, 'hat_tiny.ckpt')
    m = from_pretrained(out)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    t = load_tokenizer(CFG)(['a red car on the road', 'two dogs'], padding=True, return_tensors='pt')
    ids, mask = t['input_ids'], t['attention_mask'].bool()
    want_img, want_txt = reference_features(sd, CFG, x, ids, mask)
    got_img, (got_txt, got_mask) = m.encode_images(x), m.encode_texts(ids, mask)
    for g, w in zip(got_img, want_img): torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)
    for g, w in zip(got_txt, want_txt): torch.testing.assert_close(g[mask], w[mask], rtol=1e-5, atol=1e-5)   # real tokens (padding is never scored)

def test_lightning_checkpoint_reads_through_torch_weights_only_without_lightning(tmp_path):
    "Lightning 1.3's own objects come back as their stand-ins from torch's weights_only unpickler, with no fallback."
    path = save_lightning_checkpoint(official_state_dict(CFG), tmp_path/'a.ckpt', config={'image_size': 224})
    ck = load_checkpoint_safely(path)
    hp = ck['hyper_parameters']
    assert type(hp) is dict and type(hp['config']) is dict and hp['config']['image_size'] == 224
    assert read_checkpoint_file(path, LIGHTNING_STAND_INS)['epoch'] == 9          # inert_fallback off: torch alone read it
    (cls,) = ck['callbacks']
    assert issubclass(cls, Inert) and cls.qualname == 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'

@pytest.mark.slow
def test_crafted_checkpoint_runs_no_code(tmp_path):
    "A file whose unpickling would run a shell command: plain torch.load runs it (the file is live), import-official does not."
    marker = tmp_path/'ran'
    script = ("import os, torch, sys; sys.path.insert(0, sys.argv[2]); from official_ckpt import *; from hat_nb.config import tiny_config\n"
              "class P:\n    def __reduce__(self): return (os.system, ('touch ' + sys.argv[3],))\n"
              "torch.save({'state_dict': official_state_dict(tiny_config(txt_levels=(1, 2, 3))), 'hyper_parameters': P()}, sys.argv[1])")
    run(sys.executable, '-c', script, tmp_path/'evil.ckpt', Path(__file__).parent, marker)
    run(sys.executable, '-c', 'import torch, sys; torch.load(sys.argv[1], weights_only=False)', tmp_path/'evil.ckpt')
    assert marker.exists(); marker.unlink()                                                # the payload is real
    (tmp_path/'cfg.json').write_text(json.dumps(asdict(tiny_config(txt_levels=(1, 2, 3)))))
    r = cli('import-official', tmp_path/'evil.ckpt', '--out', tmp_path/'m', '--config', tmp_path/'cfg.json')
    assert not marker.exists(), r.stderr
    assert r.returncode == 0, r.stderr

def test_import_official_cli_errors(tmp_path):
    r = run(HAT_NB, 'import-official', tmp_path/'none.ckpt', '--out', tmp_path/'m', check=False)
    assert r.returncode == 2 and r.stderr.strip() == f"hat-nb import-official: error: {tmp_path/'none.ckpt'}: no such checkpoint file", r.stderr
    sd = official_state_dict(CFG); sd['extra.weight'] = torch.zeros(2)
    save_lightning_checkpoint(sd, tmp_path/'x.ckpt')
    (tmp_path/'cfg.json').write_text(json.dumps(asdict(CFG)))
    r = cli('import-official', tmp_path/'x.ckpt', '--out', tmp_path/'m', '--config', tmp_path/'cfg.json')
    assert r.returncode == 2 and "1 official tensor(s) with no place in hat_nb: ['extra.weight']" in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'m').exists()
