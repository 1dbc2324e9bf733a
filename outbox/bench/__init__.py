"""Benchmark-only event types, consumer groups and handlers for ``manage.py outbox_bench``.

Installed only by ``shop.bench_settings``: the shop itself never sees these events.
"""
