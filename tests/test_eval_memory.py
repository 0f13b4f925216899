"Peak host memory of a reference evaluation (float64 features) at a scaled size, against the bound `plan_memory` states."
import json, subprocess, sys, textwrap
import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent('''
    import json, sys, torch
    from pathlib import Path
    from hat_nb.config import tiny_config
    from hat_nb.data import make_fixture, read_karpathy
    from hat_nb.evaluate import evaluate, image_tokens, plan_memory
    from hat_nb.model import HATModel, load_tokenizer
    torch.manual_seed(0)
    cfg = tiny_config(embed_dim=2048)   # wide tokens: the features, not the model, dominate the memory
    model, tok = HATModel(cfg).eval(), load_tokenizer(cfg)
    recs = read_karpathy(make_fixture(Path(sys.argv[1]), 'flickr', n=int(sys.argv[2])) / 'dataset_flickr.json',
                         captions_per_image=1)
    status = lambda key: int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) * 1024
    evaluate(model, recs[:2], tok, reference=True, progress=False, verbose=False)   # warm: lazy imports, allocator
    open('/proc/self/clear_refs', 'w').write('5')                                    # VmHWM := VmRSS
    base = status('VmRSS')
    evaluate(model, recs, tok, reference=True, progress=False, verbose=False)
    L = int(tok([r.captions[0] for r in recs], padding=True, return_tensors='pt')['input_ids'].shape[1])
    plan = plan_memory(len(recs), len(recs), image_tokens(model, 'cpu'), L, cfg.embed_dim, 8, 2**19, 1)
    print(json.dumps(dict(peak=status('VmHWM') - base, planned=plan['device_GiB'] * 2**30,
                          features=plan['features_GiB'] * 2**30)))
''')

def test_reference_evaluation_peak_within_plan(tmp_path):
    """Features written into buffers allocated once: the peak of a float64 evaluation stays within the plan (features,
    scores, one chunk) plus a fixed allowance for the encoders' activations and decoding — not twice the features, as
    encoding into per-batch pieces and concatenating them would take."""
    r = subprocess.run([sys.executable, '-c', SCRIPT, str(tmp_path), '600'], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m['features'] > 450e6, m                      # a second copy would add as much
    assert m['peak'] <= m['planned'] + 200e6, {k: round(v / 2**20) for k, v in m.items()}
