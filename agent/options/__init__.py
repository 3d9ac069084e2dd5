"""agent.options"""
