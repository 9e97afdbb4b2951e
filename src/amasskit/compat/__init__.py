"""Drop-in replacements for the loaders people already use (``amasskit.compat.llamass``), with their bugs fixed."""
