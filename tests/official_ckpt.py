"""A fabricated checkpoint in the layout of the authors' released `.ckpt` files (their METER module saved by PyTorch
Lightning 1.3), for a tiny configuration: the official key names, Microsoft's Swin layout, random values everywhere."""
import re, sys, types
import timm, torch
from transformers import BertConfig, BertModel

def _fake_lightning_module(name, **classes):
    "Lightning's classes under their real module names, so that the file pickles them as Lightning does (Lightning is not installed)."
    mods = {}
    parts = name.split('.')
    for i in range(1, len(parts) + 1): mods['.'.join(parts[:i])] = types.ModuleType('.'.join(parts[:i]))
    for cname, base in classes.items():
        cls = type(cname, (base,), dict(__module__=name)); setattr(mods[name], cname, cls)
    return mods

def official_state_dict(cfg, seed=0) -> dict:
    "Random tensors under the reference's names and shapes for the model `cfg` (Swin with 4 stages, BERT, three levels)."
    g = torch.Generator().manual_seed(seed)
    swin = timm.create_model(cfg.img_model, num_classes=7, **cfg.img_kwargs)            # head kept: the reference saves its classifier
    bert = BertModel(BertConfig(**cfg.txt_config), add_pooling_layer=True)
    sd = {}
    for k, v in swin.state_dict().items():                                                  # timm -> Microsoft: downsample ends the stage before
        k = re.sub(r'^layers\.(\d+)\.downsample', lambda m: f'layers.{int(m.group(1)) - 1}.downsample', k).replace('head.fc.', 'head.')
        sd['vit_model.' + k] = v
    for blk in range(len(swin.layers)):                                                     # buffers Microsoft's Swin saves
        sd[f'vit_model.layers.{blk}.blocks.0.attn.relative_position_index'] = torch.zeros(4, 4, dtype=torch.long)
    dims = [swin.feature_info[i]['num_chs'] for i in range(4)]
    for i in range(3): sd[f'vit_model.norm_{i}.weight'], sd[f'vit_model.norm_{i}.bias'] = torch.ones(dims[i]), torch.zeros(dims[i])
    sd |= {'text_transformer.' + k: v for k, v in bert.state_dict().items()}
    D, H = cfg.embed_dim, bert.config.hidden_size
    for suffix, c in zip(('_1', '_2', ''), [dims[l - 1] for l in cfg.img_levels]):
        sd[f'cross_modal_image_transform{suffix}.weight'], sd[f'cross_modal_image_transform{suffix}.bias'] = torch.empty(D, c), torch.empty(D)
        sd[f'cross_modal_text_transform{suffix}.weight'], sd[f'cross_modal_text_transform{suffix}.bias'] = torch.empty(D, H), torch.empty(D)
    for k, v in sd.items():                                                                 # random values: no mix-up can hide behind ones/zeros
        if v.is_floating_point(): sd[k] = (1 + 0.1 * torch.randn(v.shape, generator=g)) if 'norm' in k.lower() and k.endswith('weight') else 0.1 * torch.randn(v.shape, generator=g)
    return sd

def save_lightning_checkpoint(sd, path, config=None):
    "Save `sd` the way Lightning 1.3 saves a checkpoint: Lightning's own objects (AttributeDict, a callback class as key) pickled beside it."
    mods = {**_fake_lightning_module('pytorch_lightning.utilities.parsing', AttributeDict=dict),
            **_fake_lightning_module('pytorch_lightning.callbacks.model_checkpoint', ModelCheckpoint=object)}
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        P = sys.modules['pytorch_lightning.utilities.parsing']; C = sys.modules['pytorch_lightning.callbacks.model_checkpoint']
        ck = {'epoch': 9, 'global_step': 2270, 'pytorch-lightning_version': '1.3.2', 'state_dict': dict(sd),
              'callbacks': {C.ModelCheckpoint: {'monitor': 'val/the_metric', 'best_model_score': torch.tensor(523.4)}},
              'optimizer_states': [{'state': {}, 'param_groups': [{'lr': 1e-4}]}], 'lr_schedulers': [],
              'hparams_name': 'config', 'hyper_parameters': P.AttributeDict(config=P.AttributeDict(config or {'vit': 'swin_base_patch4_window7_224_in22k'}))}
        torch.save(ck, path)
    finally:
        for k, v in saved.items():
            if v is None: sys.modules.pop(k, None)
            else: sys.modules[k] = v
    return path
