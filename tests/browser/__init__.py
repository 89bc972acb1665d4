"""Browser tests of the chat widget, and the small server harness they share."""
