"Scoring backends: the Triton kernels in the CPU interpreter (and on a GPU when there is one), compiled for A100/H100 targets, the compiled chunk function."
import os, subprocess, sys, textwrap
import pytest, torch
from hat_nb.align import scan_scores

CHECK = textwrap.dedent('''
    import torch
    from hat_nb.align import scan_scores
    g = torch.Generator().manual_seed(0)
    dev = '{dev}'
    for R, L, d in ((7, 9, 16), (45, 13, 48), (33, 64, 32), (21, 9, 128), (9, 12, 384)):   # R not a multiple of the tiles; L up to 64; one-pass widths
        img, txt = torch.randn(3, R, d, generator=g) / d**0.25, torch.randn(5, L, d, generator=g) / d**0.25
        mask = torch.arange(L)[None] < torch.tensor([L, 1, 3, L - 2, 5])[:, None]
        for scoring in ('i2t', 't2i'):
            ref = scan_scores(img.double(), txt.double(), mask, scoring, backend='torch')
            got = scan_scores(img.to(dev), txt.to(dev), mask.to(dev), scoring, backend='triton').cpu()
            err = (got.double() - ref).abs().max().item()
            assert err < {tol32}, (R, L, d, scoring, err)
            b = lambda x: x.bfloat16().to(dev)
            gb = scan_scores(b(img), b(txt), mask.to(dev), scoring, backend='triton').cpu()
            rb = scan_scores(img.bfloat16().double(), txt.bfloat16().double(), mask, scoring, backend='torch')
            errb = (gb.double() - rb).abs().max().item()
            assert errb < 3e-3, (R, L, d, scoring, 'bf16', errb)
            pad = torch.cat([txt, 50 * torch.randn(5, 3, d, generator=g)], 1)          # extra padding of garbage changes nothing
            pmask = torch.cat([mask, torch.zeros(5, 3, dtype=torch.bool)], 1)
            if L + 3 <= 64:
                gp = scan_scores(img.to(dev), pad.to(dev), pmask.to(dev), scoring, backend='triton').cpu()
                assert (gp - got).abs().max() < 1e-6
    print('ok')
''')

@pytest.mark.slow
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

@pytest.mark.slow
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

@pytest.mark.slow
def test_kernels_fit_the_gpus():
    "Every launch scan_scores makes at KERNEL_SHAPES, compiled for sm_80 (A100) and sm_90 (H100/H200): shared memory within the limit, no spills."
    from hat_nb.kernels import kernel_resources, GPU_TARGETS, KERNEL_SHAPES
    rows = kernel_resources()
    assert len(rows) == len(KERNEL_SHAPES) * 2 * 3 * len(GPU_TARGETS)
    bad = [r for r in rows if r['error'] or r['shared_bytes'] > GPU_TARGETS[r['target']][1] or r['spill_bytes']]
    assert not bad, '\n'.join(map(str, bad))

@pytest.mark.slow
def test_auto_only_picks_compiled_configurations():
    "On CUDA, 'auto' takes the kernels only with a launch configuration that the resource table compiled (all others: torch)."
    from types import SimpleNamespace
    from hat_nb.align import pick_backend
    from hat_nb.kernels import KERNEL_SHAPES, TRITON_DTYPES, _triton_launch, _meta_inputs, triton_plan
    compiled = set()
    for R, L, d, ni, nt in KERNEL_SHAPES.values():
        for scoring in ('i2t', 't2i'):
            for dt in TRITON_DTYPES:
                kernel, _, opts, _ = _triton_launch(*_meta_inputs(R, L, d, ni, nt, dt), scoring, 9.0, 1e-8)
                compiled.add((kernel.fn.__name__, tuple(sorted((k, v) for k, v in opts.items() if k != 'UP'))))
    cuda = lambda n, L, d, dt: SimpleNamespace(is_cuda=True, requires_grad=False, dtype=dt, shape=(n, L, d))
    picked = 0
    for scoring in ('i2t', 't2i'):
        for dt in (*TRITON_DTYPES, torch.float64):
            for L in range(1, 81):
                for d in (*range(8, 1040, 8), 1536, 2048):
                    if pick_backend('auto', cuda(4, 49, d, dt), cuda(4, L, d, dt), scoring) != 'triton': continue
                    kernel, _, opts, _ = _triton_launch(*_meta_inputs(49, L, d, 4, 4, dt), scoring, 9.0, 1e-8)
                    key = (kernel.fn.__name__, tuple(sorted((k, v) for k, v in opts.items() if k != 'UP')))
                    assert key in compiled, (scoring, dt, L, d, key)
                    picked += 1
    assert picked > 10000                                   # the kernels are the usual choice, not an exception
    with pytest.raises(ValueError, match="fp64 is scored by backend='torch'"): triton_plan('i2t', torch.float64, 32, 768)
    with pytest.raises(ValueError, match='at most|1 to 64'): triton_plan('t2i', torch.bfloat16, 65, 768)
