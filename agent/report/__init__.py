"""agent.report"""
