"""agent.runtime"""
