"""Voice backends: every voice the engine sings with, behind one contract.

- ``contract``: ``VoiceBackend`` / ``BackendLine`` (what a voice needs ahead, its device,
  warm-up, lines that render show-sample ranges), ``VoiceInfo``, ``Ahead``, ``LiveStart``.
- ``discovery``: ``resolve_voice`` (built-in name, bank name in the voices folders, or a
  path), ``find_voices``, ``open_backend``, ``check_voice``.
- ``builtin``: the parametric voice (``SingerLine``/``Ensemble``) behind the contract.
- one subpackage per bank format: ``utau``, ``diffsinger`` (each with its ``backend``).
"""
