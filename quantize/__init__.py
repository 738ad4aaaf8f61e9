"""GGUF export of the trained GenTool selector (installed as ``gentool_router_quantize``; the ``train`` extra).

``lora``: the trained LoRA as a GGUF adapter applied over the packaged base GGUF (what ships by default).
Files are written with ``gguf.GGUFWriter`` (llama.cpp's own GGUF package) by our own code, atomically.
"""
