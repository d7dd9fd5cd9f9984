"""The ``otterscope`` command."""
