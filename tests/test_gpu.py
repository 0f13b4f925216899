"""GPU paths (skipped without CUDA): each compared with an independent float64 CPU computation, so a wrong kernel, a lost
precision or a launch on the wrong GPU fails."""
import pytest, torch
from hat_nb.align import scan_scores, scan_scores_loop

pytestmark = pytest.mark.gpu

def _features(seed=0, n_img=24, R=49, n_txt=40, L=32, d=768, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    img, txt = torch.randn(n_img, R, d, generator=g) * scale, torch.randn(n_txt, L, d, generator=g) * scale
    mask = torch.arange(L)[None] < torch.randint(4, L + 1, (n_txt,), generator=g)[:, None]
    return img, txt, mask

@pytest.mark.parametrize('scoring', ['i2t', 't2i'])
@pytest.mark.parametrize('dtype,tol', [(torch.float32, 1e-4), (torch.bfloat16, 3e-2), (torch.float16, 5e-3)])
def test_scores_on_gpu_match_float64_on_cpu(scoring, dtype, tol):
    "The scores `evaluate` computes on a GPU (Triton where it applies) against the per-caption loop in float64 on the CPU."
    img, txt, mask = _features()
    ref = scan_scores_loop(img.double(), txt.double(), mask, scoring)
    got = scan_scores(img.to('cuda', dtype), txt.to('cuda', dtype), mask.cuda(), scoring).double().cpu()
    assert got.shape == ref.shape and (got - ref).abs().max() < tol

def test_fp16_training_scores_do_not_overflow_on_gpu():
    "fp16 autocast with tokens whose products exceed 65,504: finite scores equal to fp32's, finite gradients."
    img, txt, mask = _features(n_img=6, n_txt=8, scale=20.0)         # |t.v| ~ 400 * 768 ** 0.5 ~ 1e4 .. 1e5
    ref = scan_scores(img.cuda(), txt.cuda(), mask.cuda(), 'i2t')
    v, t = img.cuda().half().requires_grad_(), txt.cuda().half().requires_grad_()
    with torch.autocast('cuda', dtype=torch.float16):
        got = scan_scores(v, t, mask.cuda(), 'i2t')
    got.sum().backward()
    assert (got - ref).abs().max() < 1e-2 and torch.isfinite(v.grad).all() and torch.isfinite(t.grad).all()

def test_kernels_launch_on_the_tensors_gpu():
    "Scores of tensors on the last GPU while the first is current: equal to the first GPU's (a launch on the wrong device reads another GPU's memory)."
    if torch.cuda.device_count() < 2: pytest.skip('needs two GPUs')
    img, txt, mask = _features()
    last = f'cuda:{torch.cuda.device_count() - 1}'
    torch.cuda.set_device(0)
    a = scan_scores(img.to(last), txt.to(last), mask.to(last), 'i2t', backend='triton')
    b = scan_scores(img.cuda(0), txt.cuda(0), mask.cuda(0), 'i2t', backend='triton')
    assert a.device == torch.device(last) and torch.equal(a.cpu(), b.cpu())

def test_paper_fp16_training_step_on_gpu():
    "The trainer's step in the paper's precision (fp16 autocast, GradScaler, fused Adam): finite loss, the parameters move."
    from hat_nb.config import recipe, tiny_config
    from hat_nb.model import HATModel
    from hat_nb.train import make_optimizer, train_step
    _, tc = recipe('paper_f30k', batch_size=8)
    torch.manual_seed(0)
    m = HATModel(tiny_config()).cuda()
    opt, _ = make_optimizer(m, tc, 1, 'cuda')
    scaler = torch.amp.GradScaler('cuda', init_scale=2.0**10)
    batch = dict(images=torch.randn(8, 3, 32, 32), input_ids=torch.randint(1000, 2000, (8, 16)),
                 attention_mask=torch.ones(8, 16, dtype=torch.bool), img_idx=torch.arange(8))
    before = m.img_proj[0].weight.detach().clone()
    losses = [train_step(m, m, opt, scaler, batch, tc, 'cuda', torch.float16).item() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses))) and not torch.equal(before, m.img_proj[0].weight.detach())
