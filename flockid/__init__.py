"""The `flockid` command line: one entry point over datasets, training, vision, edge and api."""

__version__ = "0.1.0"
