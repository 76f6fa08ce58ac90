"""The ``wflow`` command-line application (the library never imports this package).

- :mod:`wflow.app.cli` — argument parsing, exit codes, signals (``wflow = wflow.app.cli:main``);
- :mod:`wflow.app.config` — the TOML run-configuration schema and the builders;
- :mod:`wflow.app.run` — ``wflow run``: simulate a configuration, check it, write its outputs;
- :mod:`wflow.app.demo` — ``wflow demo``;
- :mod:`wflow.app.reports` — report.json / report.md;
- :mod:`wflow.app.figures` — figure helpers (matplotlib).
"""
