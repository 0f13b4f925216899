"""A headless Chromium driven through the DevTools protocol: load a page, run script in it, wait, take a screenshot, and
collect what its console reported (errors, failed loads)."""
import base64, json, shutil, subprocess, time, urllib.request
from pathlib import Path
import websocket

CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')

class Browser:
    def __init__(self, profile: Path, width=1280, height=900):
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars',
                                      '--remote-debugging-address=127.0.0.1', '--remote-debugging-port=0', f'--user-data-dir={profile}',
                                      f'--window-size={width},{height}', 'about:blank'],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        f, t0 = profile/'DevToolsActivePort', time.time()
        while not (f.is_file() and len(f.read_text().split()) >= 2):
            if time.time() - t0 > 60 or self.proc.poll() is not None: self.close(); raise RuntimeError('chromium did not start its DevTools server')
            time.sleep(0.1)
        port = int(f.read_text().split()[0])
        pages = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/json/list', timeout=30))
        page = next(p for p in pages if p['type'] == 'page')
        self.ws = websocket.create_connection(page['webSocketDebuggerUrl'], timeout=60, suppress_origin=True)
        self.n, self.events = 0, []
        for domain in ('Runtime', 'Log', 'Page'): self.call(f'{domain}.enable')

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps(dict(id=self.n, method=method, params=params)))
        while True:
            m = json.loads(self.ws.recv())
            if m.get('id') == self.n:
                if 'error' in m: raise RuntimeError(f"{method}: {m['error']}")
                return m.get('result', {})
            self.events.append(m)

    def js(self, expr):
        r = self.call('Runtime.evaluate', expression=expr, awaitPromise=True, returnByValue=True)
        if 'exceptionDetails' in r: raise RuntimeError(f"{expr[:80]}: {r['exceptionDetails']}")
        return r['result'].get('value')

    def wait(self, expr, timeout=60):
        "Until `expr` is true in the page (an error while the page loads counts as not yet)."
        t0 = time.time()
        while True:
            try:
                if self.js(expr): return
            except RuntimeError:
                pass
            if time.time() - t0 > timeout: raise TimeoutError(f'waited {timeout} s for: {expr}')
            time.sleep(0.1)

    def screenshot(self, path):
        Path(path).write_bytes(base64.b64decode(self.call('Page.captureScreenshot', format='png', captureBeyondViewport=True)['data']))

    def errors(self) -> list:
        "Exceptions, console.error calls and error log entries (failed loads, refused content) seen so far."
        self.js('0')   # collect the events queued until now
        out = []
        for e in self.events:
            m, p = e.get('method'), e.get('params', {})
            if m == 'Runtime.exceptionThrown': out.append(p['exceptionDetails'].get('text'))
            elif m == 'Runtime.consoleAPICalled' and p.get('type') == 'error': out.append(str(p.get('args')))
            elif m == 'Log.entryAdded' and p['entry'].get('level') == 'error': out.append(p['entry'].get('text') + ' ' + p['entry'].get('url', ''))
        return out

    def close(self):
        try: self.ws.close()
        except Exception: pass
        self.proc.kill(); self.proc.wait()
