"""``edgebench agent``: the long-running service on a board (``agent``) and its
periodic board telemetry (``telemetry``). It runs configured and remote jobs through
agent/measure and publishes through agent/publish; a new remote command is a name in
``wire.protocol.COMMANDS`` and a handler in ``agent.AgentService``.
"""
