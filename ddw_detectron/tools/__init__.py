"""The project's tooling, built on the library and never imported by it: the demo pipeline and
its report (``make demo``), the comparison (``make compare``), the benchmark (``make bench``) and
the GPU device check (``make device-check``). ``scripts/`` holds their command lines."""
