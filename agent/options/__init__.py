"""Options: how a user's flags and config file become validated settings.

``config`` reads and validates the YAML config (every section, one-line errors);
``values`` parses bounded numbers and KEY=VALUE pairs from the command line.
"""
