"""The embeddable web chat widget channel (``bot.channels.widget.WidgetInput`` in credentials.yml).

- ``channel.py``: the Rasa input channel (routes, request checks, CORS).
- ``static/``: widget.js, widget.css and the demo page it serves.
"""

from bot.channels.widget.channel import WidgetInput

__all__ = ["WidgetInput"]
