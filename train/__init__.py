"""GenTool training pipeline (installed as ``gentool_router_train``; the ``train`` extra).

``simulate``: the GenTool data simulation (zero-to-one pairs, weak-to-strong variants, four held-out
scenarios) over the vendored Seal-Tools and MetaTool corpora.
"""
