"""The outbox benchmark: its event type, two consumer groups, and ``manage.py bench_outbox``.

Installed only by ``shop.bench_settings``: the shop itself never sees these events.
The measuring lives in ``measuring``, the set-up and clean-up in ``workspace``, the
phases in ``phases``, the table and the JSON in ``report``; bench/README.md explains
the figures.
"""
