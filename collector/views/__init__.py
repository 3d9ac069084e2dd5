"""Views: what people and tools read from the store.

``report`` (terminal tables, JSON, CSV), ``export`` (CSV, Parquet), ``web`` (the
dashboard pages and JSON API), ``charts`` (inline SVG), ``metrics`` (Prometheus).
A new page is a route in ``web`` with its data shaped from collector/aggregate.
"""
