"""The identity agent: one unlocked member identity held by a daemon, used over a Unix socket.

``vault agent start`` unlocks an identity once and leaves a daemon (``server``) holding it; every
command of the same user then reaches it through ``client.AgentIdentity``, which unwraps age file
keys and signs through the agent and never sees the private keys. ``paths`` says where the socket
lives, ``protocol`` how the two sides talk, ``harden`` what the daemon does to its own process.
"""
