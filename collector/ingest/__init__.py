"""collector.ingest"""
