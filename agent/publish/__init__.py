"""agent.publish"""
