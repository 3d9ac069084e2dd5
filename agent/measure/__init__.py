"""agent.measure"""
