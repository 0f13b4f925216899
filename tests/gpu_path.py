"""The paper's GPU training configuration taken by the CPU (HAT_NB_CPU_AS_CUDA=1): fp16 autocast, GradScaler, fused Adam,
compiled towers, through `train` and `train_step`.

    python tests/gpu_path.py DATA OUT EPOCHS [fixed-batch]
"""
import json, sys
from dataclasses import asdict
import torch
from hat_nb.config import recipe, tiny_config

def paper_tiny(data, epochs):
    "The paper recipe (fp16, Adam, compile 'auto', StepLR) on the tiny towers, both trained from the first step."
    return recipe('paper_f30k', data_dir=str(data), epochs=epochs, batch_size=6, lr=1e-4, freeze_img_epochs=0,
                  freeze_txt_epochs=0, max_steps_per_epoch=3, num_workers=0, log_every=1,
                  **{f'model.{k}': v for k, v in asdict(tiny_config()).items()})

def capture_only():
    """`nn.Module.compile` with the backend 'aot_eager': dynamo's graph capture and AOTAutograd's forward and backward
    graphs, which inductor would receive on a GPU, without inductor's C++ code for this CPU (minutes on 2 cores; a GPU
    runs Triton code instead)."""
    compile, aot_eager = torch.nn.Module.compile, torch._dynamo.lookup_backend('aot_eager')
    def backend(gm, inputs):                    # counts the graphs dynamo captures, then hands them to AOTAutograd
        GRAPHS.append(type(gm).__name__)
        return aot_eager(gm, inputs)
    def compiled(self, *a, **kw):
        COMPILED.append(type(self).__name__)
        return compile(self, *a, **{**kw, 'backend': backend})
    torch.nn.Module.compile = compiled

COMPILED, GRAPHS = [], []

if __name__ == '__main__':
    from hat_nb.distributed import amp_dtype
    capture_only()
    from hat_nb.train import train
    data, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mc, tc = paper_tiny(data, epochs)
    train(mc, tc, out, progress=False)
    res = dict(amp=str(amp_dtype('cpu', tc.amp)), compiled=COMPILED, graphs=len(GRAPHS))
    if sys.argv[4:] == ['fixed-batch']:        # the trainer's step on one batch: the loss of a model that learns it falls
        from hat_nb.data import CaptionDataset, Collate, eval_transform, find_karpathy_json, read_karpathy
        from hat_nb.model import HATModel, load_tokenizer
        from hat_nb.train import compile_towers, make_optimizer, train_step
        torch.manual_seed(0)
        m = HATModel(mc)
        compile_towers(m, tc, 'cpu')
        opt, _ = make_optimizer(m, tc, 1)
        scaler = torch.amp.GradScaler('cpu', enabled=True)
        ds = CaptionDataset(read_karpathy(find_karpathy_json(data)), eval_transform(mc.img_size))
        batch = Collate(load_tokenizer(mc), mc.max_len)([ds[i] for i in range(6)])
        res['fixed_batch'] = [train_step(m, m, opt, scaler, batch, tc, 'cpu', amp_dtype('cpu', tc.amp)).item() for _ in range(12)]
        res['scale'] = scaler.get_scale()
    print(json.dumps(res))
