"""What a person reads locally: PNG curves of sweeps and scenarios (``plots``).

matplotlib comes from the ``plot`` extra and is imported only inside the functions
that draw; nothing else in the agent imports this package at start-up.
"""
