"""Grafana dashboards for opsmetrics, generated in code (grafana-foundation-sdk 11.6).

``python -m dashboards`` writes ``grafana/dashboards/*.json``; ``--check`` fails
when the committed JSON differs. :func:`dashboards.queries.grafana_panel_queries`
lists every panel query with its variables substituted, for end-to-end tests.
"""
