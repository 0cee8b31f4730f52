"""The instrument port: the protocol instruments implement, its value objects, typed errors, plausibility checks, polling.

Adapters (``nanoloop.adapters``) implement :class:`~nanoloop.loop.lab.instruments.Instrument`;
the campaign is given its instruments and never imports an adapter. Imports only
the errors: the port must not change when the core does.
"""
