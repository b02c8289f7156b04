"""pytest plugin (entry point ``pytest11``): collects the ``test`` blocks of ``.avg`` files.

Kept light: the engine is imported only when an ``.avg`` file is collected.
"""
