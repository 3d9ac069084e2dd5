"""agent.service"""
