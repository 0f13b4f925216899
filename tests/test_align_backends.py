"Scoring backends: the Triton kernels in the CPU interpreter (and on a GPU when there is one), the compiled chunk function."
import os, subprocess, sys, textwrap
import pytest, torch
from hat_nb.align import scan_scores

CHECK = textwrap.dedent('''
    import torch
    from hat_nb.align import scan_scores
    g = torch.Generator().manual_seed(0)
    dev = '{dev}'
    for R, L, d in ((7, 9, 16), (45, 13, 48), (33, 64, 32)):          # R not a multiple of the 32-patch tile; L up to 64
        img, txt = torch.randn(3, R, d, generator=g), torch.randn(5, L, d, generator=g)
        mask = torch.arange(L)[None] < torch.tensor([L, 1, 3, L - 2, 5])[:, None]
        for direction in ('i2t', 't2i'):
            ref = scan_scores(img.double(), txt.double(), mask, direction, backend='torch')
            got = scan_scores(img.to(dev), txt.to(dev), mask.to(dev), direction, backend='triton').cpu()
            err = (got.double() - ref).abs().max().item()
            assert err < {tol32}, (R, L, d, direction, err)
            b = lambda x: x.bfloat16().to(dev)
            gb = scan_scores(b(img), b(txt), mask.to(dev), direction, backend='triton').cpu()
            rb = scan_scores(img.bfloat16().double(), txt.bfloat16().double(), mask, direction, backend='torch')
            errb = (gb.double() - rb).abs().max().item()
            assert errb < 3e-3, (R, L, d, direction, 'bf16', errb)
            pad = torch.cat([txt, 50 * torch.randn(5, 3, d, generator=g)], 1)          # extra padding of garbage changes nothing
            pmask = torch.cat([mask, torch.zeros(5, 3, dtype=torch.bool)], 1)
            if L + 3 <= 64:
                gp = scan_scores(img.to(dev), pad.to(dev), pmask.to(dev), direction, backend='triton').cpu()
                assert (gp - got).abs().max() < 1e-6
    print('ok')
''')

def test_triton_kernels_in_interpreter():
    "Both kernels against the float64 torch path on CPU tensors, in Triton's interpreter (fp32: 1e-5; bf16 inputs: 3e-3 against the same bf16 values)."
    r = subprocess.run([sys.executable, '-c', CHECK.format(dev='cpu', tol32=1e-5)], capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TRITON_INTERPRET='1'))
    assert r.returncode == 0 and r.stdout.strip().endswith('ok'), r.stderr[-3000:]

@pytest.mark.gpu
def test_triton_kernels_on_gpu():
    "The same checks, compiled for the GPU (tf32 is not used for fp32 inputs: 1e-4 allows for fp32 accumulation order)."
    r = subprocess.run([sys.executable, '-c', CHECK.format(dev='cuda', tol32=1e-4)], capture_output=True, text=True, timeout=600,
                       env={k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'})
    assert r.returncode == 0 and r.stdout.strip().endswith('ok'), r.stderr[-3000:]

def test_triton_needs_cuda_or_interpreter():
    if os.environ.get('TRITON_INTERPRET') == '1' or torch.cuda.is_available(): pytest.skip('kernels can run here')
    x, t = torch.randn(2, 4, 16), torch.randn(3, 5, 16)
    with pytest.raises(ValueError, match="backend='triton' needs CUDA tensors"): scan_scores(x, t, torch.ones(3, 5, dtype=torch.bool), backend='triton')

def test_compile_backend_equal_and_one_graph():
    "`compile`: the torch chunk function under torch.compile; the last, shorter chunk is padded, so one call compiles one graph."
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(7, 40, 32, generator=g), torch.randn(9, 11, 32, generator=g)
    mask = torch.arange(11)[None] < torch.randint(1, 12, (9,), generator=g)[:, None]
    before = counters['stats']['unique_graphs']
    got = scan_scores(img, txt, mask, 'i2t', backend='compile', max_elems=40 * 11 * 4 * 3)     # chunks of 4 captions x 3 images
    assert counters['stats']['unique_graphs'] - before == 1
    torch.testing.assert_close(got, scan_scores(img, txt, mask, 'i2t', backend='torch'), rtol=0, atol=1e-6)
