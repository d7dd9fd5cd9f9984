"""The web UI's built bundle (``dist/``), written by ``cd ui && npm run build``.

Only data lives here: the files are served by :mod:`otterscope.api.ui`. The TypeScript
source is in the repository's ``ui/`` folder; ``.ci/run`` rebuilds the bundle from the
lockfile and fails when the committed bytes differ.
"""
