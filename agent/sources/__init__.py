"""agent.sources"""
