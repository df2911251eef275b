"""Referral-spike detector: its parameters, the generated Prometheus rules, and
the alert-quality evaluation that runs those rules over simulated years.

``python -m alerts_eval generate-rules`` writes the referral rule files;
``python -m alerts_eval run`` measures false alerts and detection (see
``docs/alerts.md`` and ``docs/alert-quality.md``).
"""
