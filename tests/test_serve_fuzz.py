"""Property-based fuzz of the embedded server's HTTP API (swiftnb.serve) with schemathesis.

The schema below is the part of OpenAI's API the server implements (requests only). schemathesis generates requests
from it -- valid ones and, in negative mode, ones that break it -- and each must be answered 2xx or 4xx, never 5xx, with
the server still answering afterwards. Runs on the tiny text model, on CPU, in about a minute on 2 cores.

    python -m pytest -q tests/test_serve_fuzz.py
"""
import os, pytest, httpx
schemathesis = pytest.importorskip('schemathesis')   # the dev extra has it
from hypothesis import settings, HealthCheck
from schemathesis import GenerationMode

MODEL = 'tiny-text'
_part = {'oneOf': [
    {'type': 'object', 'required': ['type', 'text'], 'properties': {'type': {'enum': ['text']}, 'text': {'type': 'string'}}},
    {'type': 'object', 'required': ['type', 'image_url'], 'properties': {'type': {'enum': ['image_url']},
        'image_url': {'type': 'object', 'required': ['url'], 'properties': {'url': {'type': 'string'}}}}},
    {'type': 'object', 'required': ['type', 'input_audio'], 'properties': {'type': {'enum': ['input_audio']},
        'input_audio': {'type': 'object', 'properties': {'data': {'type': 'string'}, 'format': {'type': 'string'}}}}}]}
_msg = {'type': 'object', 'required': ['role'], 'properties': {
    'role': {'enum': ['system', 'user', 'assistant', 'tool']},
    'content': {'oneOf': [{'type': 'string'}, {'type': 'array', 'items': _part}], 'nullable': True},
    'tool_calls': {'type': 'array', 'items': {'type': 'object', 'properties': {'id': {'type': 'string'}, 'type': {'enum': ['function']},
        'function': {'type': 'object', 'properties': {'name': {'type': 'string'}, 'arguments': {'type': 'string'}}}}}},
    'tool_call_id': {'type': 'string'}}}
_chat = {'type': 'object', 'required': ['model', 'messages'], 'properties': {
    'model': {'type': 'string', 'enum': [MODEL, 'other']},
    'messages': {'type': 'array', 'minItems': 1, 'maxItems': 4, 'items': _msg},
    'max_tokens': {'type': 'integer', 'minimum': 1, 'maximum': 8},
    'temperature': {'type': 'number', 'minimum': 0, 'maximum': 2},
    'top_p': {'type': 'number', 'minimum': 0, 'maximum': 1},
    'seed': {'type': 'integer'},
    'n': {'type': 'integer', 'minimum': 1, 'maximum': 1},
    'stream': {'type': 'boolean'},
    'stop': {'oneOf': [{'type': 'string'}, {'type': 'array', 'items': {'type': 'string'}, 'maxItems': 4}]},
    'tools': {'type': 'array', 'items': {'type': 'object'}}}}
_ok = {'200': {'description': 'ok'}, '400': {'description': 'bad request'}, '404': {'description': 'not found'}}
SCHEMA = {'openapi': '3.0.3', 'info': {'title': 'swiftnb embedded server', 'version': '1'}, 'paths': {
    '/health': {'get': {'responses': _ok}},
    '/v1/models': {'get': {'responses': _ok}},
    '/v1/models/{model_id}': {'get': {'parameters': [{'name': 'model_id', 'in': 'path', 'required': True, 'schema': {'type': 'string'}}],
                                      'responses': _ok}},
    '/v1/chat/completions': {'post': {'requestBody': {'required': True, 'content': {'application/json': {'schema': _chat}}},
                                      'responses': _ok}}}}

schema = schemathesis.openapi.from_dict(SCHEMA)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                max_examples=int(os.environ.get('SWIFTNB_FUZZ_EXAMPLES', 60)))

@pytest.fixture(scope='module')
def server():
    from swiftnb.serve import serve, Limits
    s = serve(MODEL, port=0, limits=Limits(allow_urls=False))   # never download what the fuzzer makes up
    yield s
    s.stop()

@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_never_5xx(case, server):
    r = case.call(base_url=server.url, timeout=60)
    assert r.status_code < 500, (case.method, case.path, case.body, r.status_code, r.text[:500])
    assert httpx.get(server.url + '/health', timeout=10).status_code == 200

def test_still_answers(server):
    r = httpx.post(server.url + '/v1/chat/completions', timeout=60,
                   json={'model': MODEL, 'messages': [{'role': 'user', 'content': 'Hi'}], 'max_tokens': 3})
    assert r.status_code == 200 and isinstance(r.json()['choices'][0]['message']['content'], str), r.text
