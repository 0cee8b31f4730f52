"""Reading lab sheets (CSV and Excel): the front door that the release-curve reader and the import share.

The lowest layer but the errors: it knows tables, decimal marks, column roles and
units, and nothing of release laws, design spaces or ledgers, so
:mod:`nanoloop.loop.kinetics.reading` and :mod:`nanoloop.loop.store.experiments`
read files the same way.
"""
