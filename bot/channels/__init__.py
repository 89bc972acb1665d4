"""Custom Rasa input channels for the Trust's assistant.

Each channel is referenced from ``credentials.yml`` by its module path:

- ``bot.channels.widget.WidgetInput``: the embeddable web chat widget.
- ``bot.channels.socketio.SocketIOInput``: Rasa's socket.io channel with the
  ``session_persistence`` fix for python-socketio >= 5.10.

Nothing is imported here, so importing ``bot.channels`` does no work.
"""
