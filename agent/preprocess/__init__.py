"""agent.preprocess"""
