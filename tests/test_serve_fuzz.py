"""Property-based fuzz of the embedded server's HTTP API (swiftnb.serve) with schemathesis.

The schema is the server's own (`/openapi.json`: the part of OpenAI's API it implements). schemathesis generates requests
from it -- valid ones and, in negative mode, ones that break it -- and each must be answered 2xx or 4xx, never 5xx, with
the server still answering afterwards. Runs on the tiny text model, on CPU, in about a minute on 2 cores.

    python -m pytest -q tests/test_serve_fuzz.py
"""
import os, pytest, httpx
schemathesis = pytest.importorskip('schemathesis')   # the dev extra has it
from hypothesis import given, settings, HealthCheck
from schemathesis import GenerationMode

MODEL = 'tiny-text'

@pytest.fixture(scope='module')
def server():
    from swiftnb.serve import serve, Limits
    s = serve(MODEL, port=0, limits=Limits(allow_urls=False))   # never download what the fuzzer makes up
    yield s
    s.stop()

def own_schema(server):
    "The server's own description of its API (`/openapi.json`), read from it; generation kept short (tokens, turns)."
    d = httpx.get(server.url + '/openapi.json', timeout=30).json()
    chat = d['paths']['/v1/chat/completions']['post']['requestBody']['content']['application/json']['schema']
    chat['properties']['max_tokens']['maximum'] = 8
    chat['properties']['messages']['maxItems'] = 4
    chat['properties']['model']['enum'].append('other')   # a name the server does not serve: a 404, not a 5xx
    return schemathesis.openapi.from_dict(d)

N = int(os.environ.get('SWIFTNB_FUZZ_EXAMPLES', 60))

@pytest.mark.parametrize('mode', [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_never_5xx(server, mode):
    # each operation's requests drawn by hypothesis from the schema (valid ones, and in negative mode ones breaking it);
    # schemathesis' pytest plugin cannot take a schema from a running server's fixture with this pytest, so the
    # strategies are drawn here
    ops = [r.ok() for r in own_schema(server).get_all_operations()]
    assert len(ops) == 4, ops
    for op in ops:
        if mode == GenerationMode.NEGATIVE and op.method.upper() != 'POST': continue   # a path string cannot be made 'not a string'
        @settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case):
            r = case.call(base_url=server.url, timeout=60)
            assert r.status_code < 500, (case.method, case.path, case.body, r.status_code, r.text[:500])
            assert httpx.get(server.url + '/health', timeout=10).status_code == 200
        check()

def test_still_answers(server):
    r = httpx.post(server.url + '/v1/chat/completions', timeout=60,
                   json={'model': MODEL, 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 3})
    assert r.status_code == 200 and isinstance(r.json()['choices'][0]['message']['content'], str), r.text
