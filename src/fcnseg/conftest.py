"""Doctest collection for the package: ``python -m fcnseg`` would run the CLI on import."""

collect_ignore = ["__main__.py"]
