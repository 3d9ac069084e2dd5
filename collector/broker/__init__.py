"""collector.broker"""
