"""The project's lab, built on the ``ddw_detectron`` library and never imported by it: the
generated datasets (the shapes of the demo, ``ddw_mixed``, the digits), the demo pipeline and its
report (``make demo``), the comparison (``make compare``), the benchmark (``make bench``) and the
GPU device check (``make device-check``). ``scripts/`` holds their command lines.

Importing it registers the generated detection datasets ``ddw_shapes_{train,val,tiny,test}`` in
Detectron2's catalogs (generated on first use)."""

from ddw_lab.data.shapes import register_shapes

register_shapes()
