"""collector.views"""
