"""tools/structure.py's check for other libraries' private names outside swiftnb.core.compat (issue 31) finds them."""
import ast, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent.parent/'tools'))
import structure

SRC = '''
from transformers import Trainer
from liger_kernel.transformers import _apply_liger_kernel_to_instance
import torch
def f(cfg, model):
    a = cfg._attn_implementation
    b = getattr(model, '_supports_flex_attn', False)
    return torch._C._current_graph_task_id()
class T(Trainer):
    def _prepare_inputs(self, x): return x
class Own:
    def _mine(self): return self._x
    def g(self): self._x = self._mine()
'''

def test_finds_private_names_of_other_libraries():
    mods = {'swiftnb.fake': ast.parse(SRC),
            'swiftnb.core.compat': ast.parse('def f(c): return c._attn_implementation')}   # allowed there
    got = sorted(h.split(' ', 1)[1] for h in structure.foreign_private(mods))
    assert got == ["'_supports_flex_attn'", 'T._prepare_inputs', '_C', '_attn_implementation', '_current_graph_task_id',
                   'liger_kernel.transformers._apply_liger_kernel_to_instance'], got

def test_the_package_has_none():
    assert structure.foreign_private(structure.modules()) == []
