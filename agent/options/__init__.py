"""The agent's options: declared once (table.py), typed and ranged (kinds.py), read from the
config file (config.py), turned into the options dataclasses (classes.py) and built from the
config and the command line's values (build.py). The command line's side (argparse) is
agent/cli/flags.py; nothing here sees an argparse Namespace."""
